/* guard.c - the API entry guard: a public call that races with ray_shutdown
 * gets RAY_ENOTINIT (or the code of the phase it saw), never freed memory.
 *
 * Every thread that enters a public call owns a record with a nesting
 * depth. Entering bumps the depth, then reads the runtime pointer; leaving
 * drops it (release). ray_shutdown unpublishes the pointer, then drains:
 * it makes sure every thread's next read of the pointer sees NULL, and
 * waits until every record's depth is 0; only then does it free. So a
 * thread either saw the pointer before the drain (and is waited for) or
 * sees NULL (and touches nothing).
 *
 * The order "store depth, load pointer" against "store NULL, load depth"
 * is Dekker's, and needs a full fence on both sides. To keep the fast path
 * at two plain stores, the shutdown side pays for both with membarrier()
 * (MEMBARRIER_CMD_PRIVATE_EXPEDITED: a fence on every running thread of the
 * process), as liburcu's membarrier flavour does. Where the kernel or a tool
 * (valgrind) refuses it, readers use a sequentially consistent
 * read-modify-write instead (ray__guard_fence).
 *
 * Records live in a push-only registry and are never freed: a thread's
 * record goes back to the pool when the thread ends (thread.c's exit hook,
 * which also forgets it on that thread: a later destructor that calls the
 * API takes a record again, never uses one another thread may own now),
 * for the next new thread. So the registry is as long as the most threads
 * ever inside the library at once, and shutdown's scan never reads freed
 * memory.
 *
 * The same wait runs twice. ray__guard_close, right after shutdown set the
 * runtime's `stopping` flag, waits for every thread but the workers: a call
 * that passed its `stopping` check just before the flag was set may still
 * queue a task or an actor call, and must do so while the queues exist
 * (before the workers are joined and the queues drained). Workers need no
 * such wait: shutdown joins them before it frees what they use.
 * ray__guard_drain, after the pointer was unpublished, waits for every
 * thread before the memory goes.
 *
 * Waiting: a thread inside a public call at shutdown is either about to
 * leave (fast paths are nanoseconds) or parked in a blocking call that the
 * shutdown has already failed; the drain yields the CPU until it leaves.
 * The published runtime pointer itself lives here (runtime.c stores and
 * clears it; every public call reads it through the guard), and so does
 * ray_is_initialized, which reads it with no guard.
 *
 * Lock order: no lock (the registry is lock-free, push-only). */
#include "guard.h"
#include "hook.h"
#include "rustyray.h" /* ray_is_initialized, exported */
#include "thread.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>

#if defined(__linux__)
#include <linux/membarrier.h>
#endif

_Atomic(struct ray__runtime_s *) ray__runtime_ptr;
_Thread_local ray__thread_rec_t *ray__guard_tls_rec RAY__TLS_FAST;
atomic_bool ray__guard_fence = true; /* until setup proves membarrier works */

static _Atomic(ray__thread_rec_t *) registry;
static uv_once_t setup_once = UV_ONCE_INIT;
static bool use_membarrier;

/* At thread exit (thread.c): the record goes back to the pool. Forgotten
 * first, so a later exit hook or destructor that calls the API on this
 * thread takes a record again (and registers again). */
static void rec_release(ray__thread_exit_t *h);
static _Thread_local ray__thread_exit_t rec_exit = {.fn = rec_release};

static void rec_release(ray__thread_exit_t *h) {
  (void)h;
  ray__thread_rec_t *rec = ray__guard_tls_rec;
  ray__guard_tls_rec = NULL;
  if (rec != NULL) atomic_store_explicit(&rec->in_use, false, memory_order_release);
}

bool ray_is_initialized(void) {
  return atomic_load_explicit(&ray__runtime_ptr, memory_order_acquire) != NULL;
}

static void setup(void) {
#if defined(__linux__) && defined(SYS_membarrier)
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0) {
    use_membarrier = true;
    atomic_store(&ray__guard_fence, false);
  }
#endif
}

void ray__guard_setup(void) {
  uv_once(&setup_once, setup);
}

ray__thread_rec_t *ray__guard_rec_slow(void) {
  ray__guard_setup();
  ray__thread_rec_t *rec;
  /* Reuse the record of a thread that has ended. */
  for (rec = atomic_load(&registry); rec != NULL; rec = rec->next) {
    bool free_one = false;
    if (atomic_compare_exchange_strong(&rec->in_use, &free_one, true)) {
      atomic_store(&rec->worker, false);
      break;
    }
  }
  if (rec == NULL) {
    /* Plain malloc: records outlive every runtime (and the allocation
     * tracking of the tests), reachable from the registry. */
    rec = calloc(1, sizeof *rec);
    if (rec == NULL) return NULL;
    atomic_init(&rec->depth, 0);
    atomic_init(&rec->in_use, true);
    atomic_init(&rec->worker, false);
    ray__thread_rec_t *head = atomic_load(&registry);
    do rec->next = head;
    while (!atomic_compare_exchange_weak(&registry, &head, rec));
  }
  ray__guard_tls_rec = rec;
  /* Returned to the pool at thread exit. Without a key (never seen on
   * glibc) it stays with the dead thread: the registry grows by one. */
  (void)ray__thread_at_exit(&rec_exit);
  return rec;
}

void ray__guard_mark_worker(void) {
  ray__thread_rec_t *rec = ray__guard_tls_rec;
  if (rec == NULL) rec = ray__guard_rec_slow();
  if (rec != NULL) atomic_store(&rec->worker, true); /* else its calls fail: nothing to wait for */
}

/* Make every thread's next read of what the caller stored current, then
 * wait until each record in the registry (but the caller's, and the
 * workers' when skip_workers) is at depth 0. */
static void wait_out(bool skip_workers) {
#if defined(__linux__) && defined(SYS_membarrier)
  /* Cannot fail once registered (it fails only for an unregistered
   * process); a fence on this side either way. */
  if (use_membarrier) (void)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
#endif
  for (ray__thread_rec_t *rec = atomic_load(&registry); rec != NULL; rec = rec->next) {
    if (rec == ray__guard_tls_rec) continue; /* the caller is not inside a call */
    if (skip_workers && atomic_load(&rec->worker)) continue;
    if (atomic_load(&rec->depth) == 0) continue; /* seq_cst: see guard.h */
    if (skip_workers) ray__hook(RAY__AT_CLOSE_WAIT, NULL);
    while (atomic_load(&rec->depth) != 0) sched_yield();
  }
}

void ray__guard_close(void) {
  wait_out(true);
}

void ray__guard_drain(void) {
  wait_out(false);
}
