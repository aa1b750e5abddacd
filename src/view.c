/* view.c - handles for pinned views, so that releasing a view twice (through
 * one ray_buf_t, or through two copies of it) is a detected no-op instead
 * of a second unpin that frees an entry still in the store.
 *
 * Why a handle: a ray_buf_t is a plain struct the caller may copy, and two
 * copies are bit-identical, so the second release can only be told apart
 * by memory that outlives the view. The entry cannot be that memory (the
 * first release may free it), so each open view owns a slot here, and the
 * buf carries (slot, generation). Opening bumps the slot's generation to an
 * odd value; closing moves it on with one compare-and-swap from exactly the
 * buf's value, which only the first release of that opening can win. A
 * stale copy compares against a later generation and fails, whatever the
 * slot is doing now (free, or open for another view).
 *
 * Invariants: slots live in pages that are never freed (a stale copy may be
 * released at any time, even after ray_shutdown, and must find its slot),
 * so the table is as large as the most views ever open at once, a few
 * dozen bytes each, and is kept for the life of the process, like the id
 * counter. Pages come from plain malloc, not ray__malloc: they are not a
 * runtime's memory and must not count as its leak. Generations are 64-bit
 * and only grow: they never wrap in practice (one slot reopened 10^9 times
 * a second would take 292 years).
 *
 * Speed: ray_get and ray_buf_release are the hot path, so free slots come
 * from the calling thread's magazine (mag.h: a thread-local list, no atomic,
 * no lock), which trades whole batches with a shared depot and goes back to
 * it when the thread exits, so threads that come and go leak nothing. The
 * depot's pages are never freed, as the slots above require. */
#include "view.h"

/* A slot is free with generation 0 until its first view. */
static void slot_init(ray__mag_node_t *item) {
  ray__view_t *v = (ray__view_t *)item;
  atomic_init(&v->gen, 0);
  v->e = NULL;
}

ray__mag_kind_t ray__view_kind = RAY__MAG_KIND(sizeof(ray__view_t), RAY__VIEW_BATCH, slot_init);
_Thread_local ray__mag_t ray__view_mag RAY__TLS_FAST;

/* At thread exit (thread.c): the thread's free slots go back to the depot. */
static void view_exit(ray__thread_exit_t *h) {
  (void)h;
  ray__mag_flush(&ray__view_kind, &ray__view_mag);
}

_Thread_local ray__thread_exit_t ray__view_exit RAY__TLS_FAST = {.fn = view_exit};
