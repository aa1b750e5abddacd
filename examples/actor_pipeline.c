/* actor_pipeline.c - a chain of actors passing ObjectRefs.
 *
 * Four Stage actors form a pipeline. For every item the host makes one
 * chain of calls, where each stage's result ref is the argument of the next
 * stage's call:
 *
 *   put(item) --ref--> Stage 0.process --ref--> Stage 1.process --ref-->
 *             Stage 2.process --ref--> Stage 3.process --ref--> result
 *
 * All chains are submitted at once, before anything has run: a call waits
 * for its argument without holding a worker, so while Stage 3 works on item
 * k, Stage 0 is already on a later item (several items in flight, as in a
 * hardware pipeline). Each stage is an actor: its state (how many items it
 * has seen, the last one, a running checksum) is plain fields, touched by
 * one call at a time, and calls from one submitter run in submission order,
 * so every stage sees the items in order.
 *
 * The host collects the results with ray_wait as they complete, checks each
 * one word by word, and asks each stage for its report.
 *
 * It checks every value and return code and exits non-zero on a mismatch,
 * so it doubles as a test (example_actor_pipeline).
 *
 * The same binary runs as an MPI job, unchanged (ctest
 * cluster_example_actor_pipeline_4_ranks):
 *   RAY_CLUSTER=mpi mpirun -np 4 ./actor_pipeline
 * The Stage class is a static descriptor, so every rank knows it, and each
 * new stage goes to the next rank (RAY_NODE_ANY: round-robin); its calls
 * still run in the order the host made them, each taking the previous
 * stage's result, sent on by the host. */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"

/* The free callback (ray_free_fn) of a malloc'd buffer handed to the store
 * without a copy; this program needs no arg. */
static void free_buffer(void *data, void *arg) {
  (void)arg;
  free(data);
}

#define NUM_STAGES 4
#define NUM_ITEMS 48
#define ITEM_WORDS 16384 /* 128 KiB per item: word 0 is the item's number */

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                \
  do {                                                                             \
    int check_rc_ = (call);                                                        \
    if (check_rc_ != RAY_OK) {                                                     \
      fprintf(stderr, "actor_pipeline:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                   \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "actor_pipeline:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

static void fail_with_chain(const char *what, ray_ref_t ref, int rc) {
  ray_error_t *err = NULL;
  char text[2048] = "(no error object)";
  if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  fprintf(stderr, "actor_pipeline: %s failed with %s:\n%s\n", what, ray_err_name(rc), text);
  exit(1);
}

/* ---- The transformation ------------------------------------------------------- */

/* The input item n: word 0 is n, then data words. */
static uint64_t input_word(uint64_t n, size_t k) {
  return n * 1000003u + k;
}

/* What stage s does to each data word. */
static uint64_t stage_fn(int s, uint64_t x) {
  return x * 3 + (uint64_t)(s + 1);
}

/* ---- The Stage actor ---------------------------------------------------------- */

typedef struct stage_s {
  int index;
  int64_t processed;    /* items seen */
  int64_t last_item;    /* the last item's number (-1: none yet) */
  int64_t out_of_order; /* items that came before one already seen */
  uint64_t checksum;    /* over every output word, in arrival order */
  atomic_int running;   /* calls of this stage running now */
  atomic_int max_running;
} stage_t;

static atomic_int g_running, g_max_running; /* calls running, across all stages */

static void note_max(atomic_int *max, int v) {
  int m = atomic_load(max);
  while (v > m && !atomic_compare_exchange_weak(max, &m, v)) {
  }
}

/* Stage(index). */
static int stage_ctor(ray_task_ctx_t *ctx, void **state) {
  int64_t index;
  TRY(ctx, ray_ctx_arg_i64(ctx, 0, &index));
  stage_t *s = calloc(1, sizeof *s);
  if (s == NULL) return ray_fail(ctx, RAY_ENOMEM, "Stage: no memory");
  s->index = (int)index;
  s->last_item = -1;
  atomic_init(&s->running, 0);
  atomic_init(&s->max_running, 0);
  *state = s;
  return 0;
}

/* process(item) -> bytes: a new buffer with stage_fn applied to every data
 * word. The input is read in place (zero-copy); the output is handed to the
 * store without a copy and becomes the next stage's input. */
static int stage_process(ray_task_ctx_t *ctx, void *state) {
  stage_t *s = state;
  note_max(&s->max_running, atomic_fetch_add(&s->running, 1) + 1);
  note_max(&g_max_running, atomic_fetch_add(&g_running, 1) + 1);
  int rc = 0;
  const void *data;
  size_t size;
  uint64_t *out = NULL;
  if ((rc = ray_ctx_arg_bytes(ctx, 0, &data, &size)) != RAY_OK) goto done;
  if (size != ITEM_WORDS * sizeof(uint64_t)) {
    rc = ray_fail(ctx, RAY_EDECODE, "Stage %d: item of %zu bytes", s->index, size);
    goto done;
  }
  const uint64_t *in = data;
  if ((out = malloc(size)) == NULL) {
    rc = ray_fail(ctx, RAY_ENOMEM, "Stage %d: no memory", s->index);
    goto done;
  }
  out[0] = in[0]; /* the item's number travels along */
  for (size_t k = 1; k < ITEM_WORDS; k++) {
    out[k] = stage_fn(s->index, in[k]);
    s->checksum = (s->checksum ^ out[k]) * 0x100000001B3ull;
  }
  if ((int64_t)in[0] < s->last_item) s->out_of_order++;
  s->last_item = (int64_t)in[0];
  s->processed++;
  if ((rc = ray_return_owned(ctx, 0, out, size, free_buffer, NULL)) != RAY_OK) free(out);
done:
  atomic_fetch_sub(&g_running, 1);
  atomic_fetch_sub(&s->running, 1);
  return rc;
}

/* report() -> [i64 processed, i64 out of order, i64 max running at once]. */
static int stage_report(ray_task_ctx_t *ctx, void *state) {
  stage_t *s = state;
  TRY(ctx, ray_return_i64(ctx, 0, s->processed));
  TRY(ctx, ray_return_i64(ctx, 1, s->out_of_order));
  return ray_return_i64(ctx, 2, atomic_load(&s->max_running));
}

static const uint32_t k_bytes[] = {RAY_TYPE_BYTES};
static const uint32_t k_report[] = {RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64};
static const ray_method_def_t k_stage_methods[] = {
    {"process", stage_process, k_bytes, 1},
    {"report", stage_report, k_report, 3},
};
static const ray_actor_class_t k_stage = {"Stage", stage_ctor, free, k_stage_methods, 2};
/* Known by name to every rank (cluster mode: the stages may live there). */
static ray_static_class_t s_stage = {&k_stage, NULL};

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  ray_static_class_add(&s_stage); /* before ray_init: other ranks never get past it */
  CHECK(ray_init(NULL));
  ray_stats_t rs;
  CHECK(ray_stats(&rs));
  printf("runtime started: %" PRIu64 " worker threads\n", rs.num_workers);

  ray_actor_t stages[NUM_STAGES];
  for (int s = 0; s < NUM_STAGES; s++) {
    ray_arg_t idx = ray_arg_i64(s);
    CHECK(ray_actor_create(&k_stage, &idx, 1, NULL, &stages[s]));
  }
  uint32_t process;
  CHECK(ray_actor_method(&k_stage, "process", &process));
  printf("%d Stage actors; stage s maps each data word x to 3x + s + 1\n", NUM_STAGES);

  /* 1. Submit every chain, before anything has run. */
  printf("\n== submit %d items x %d stages (%d KiB per item), no waiting\n", NUM_ITEMS, NUM_STAGES,
         (int)(ITEM_WORDS * sizeof(uint64_t) / 1024));
  uint64_t t0 = uv_hrtime();
  uint64_t *item = malloc(ITEM_WORDS * sizeof *item);
  EXPECT(item != NULL);
  ray_ref_t results[NUM_ITEMS];
  for (int n = 0; n < NUM_ITEMS; n++) {
    for (size_t k = 0; k < ITEM_WORDS; k++) item[k] = k == 0 ? (uint64_t)n : input_word(n, k);
    ray_ref_t ref;
    CHECK(ray_put(item, ITEM_WORDS * sizeof *item, &ref));
    if (n == 0) printf("  item 0: put -> ref %" PRIu64, ref.id);
    for (int s = 0; s < NUM_STAGES; s++) {
      ray_arg_t arg = ray_arg_ref(ref); /* the previous stage's result */
      ray_ref_t next;
      CHECK(ray_actor_call_id(stages[s], process, &arg, 1, NULL, &next));
      /* The call holds its own reference to its argument until it has run:
       * the host can drop the intermediate ref at once. */
      CHECK(ray_ref_release(ref));
      ref = next;
      if (n == 0) printf(" -> Stage %d -> ref %" PRIu64, s, ref.id);
    }
    if (n == 0) printf("\n");
    results[n] = ref;
  }
  free(item);
  CHECK(ray_stats(&rs));
  printf("  submitted %d calls in %.2f ms; %" PRIu64 " of them finished so far\n",
         NUM_ITEMS * NUM_STAGES, (double)(uv_hrtime() - t0) / 1e6, rs.tasks_finished);

  /* 2. Collect the results as they complete. */
  printf("\n== collect with ray_wait as items come out of the pipeline\n");
  ray_ref_t pending[NUM_ITEMS];
  int npending = NUM_ITEMS;
  memcpy(pending, results, sizeof pending);
  int order[NUM_ITEMS], nout = 0;
  size_t bad_words = 0;
  while (npending > 0) {
    bool ready[NUM_ITEMS];
    int got = ray_wait(pending, (size_t)npending, 1, RAY_TIMEOUT_INFINITE, ready);
    EXPECT(got == 1);
    int i = 0;
    while (!ready[i]) i++;
    ray_buf_t view;
    int rc = ray_get(pending[i], 0, &view);
    if (rc != RAY_OK) fail_with_chain("process", pending[i], rc);
    const uint64_t *out = view.data;
    EXPECT(view.size == ITEM_WORDS * sizeof *out);
    uint64_t n = out[0];
    EXPECT(n < NUM_ITEMS);
    for (size_t k = 1; k < ITEM_WORDS; k++) {
      uint64_t x = input_word(n, k);
      for (int s = 0; s < NUM_STAGES; s++) x = stage_fn(s, x);
      bad_words += out[k] != x;
    }
    ray_buf_release(&view);
    CHECK(ray_ref_release(pending[i]));
    order[nout++] = (int)n;
    /* Keep the rest in item order: ray_wait flags the first ready ones in
     * input order. */
    memmove(&pending[i], &pending[i + 1], (size_t)(npending - i - 1) * sizeof *pending);
    npending--;
  }
  double ms = (double)(uv_hrtime() - t0) / 1e6;
  /* The last stage runs its calls in submission order, so the items come
   * out in the order they went in. */
  int in_order = 0;
  printf("  items out, in this order:");
  for (int i = 0; i < nout; i++) {
    printf(" %d", order[i]);
    in_order += order[i] == i;
  }
  printf(
      "\n  %d items through %d stages in %.2f ms (%.0f MiB/s of stage input); "
      "%zu wrong words\n",
      nout, NUM_STAGES, ms,
      (double)NUM_ITEMS * NUM_STAGES * ITEM_WORDS * sizeof(uint64_t) / (1 << 20) / (ms / 1e3),
      bad_words);
  EXPECT(nout == NUM_ITEMS && bad_words == 0 && in_order == NUM_ITEMS);

  /* 3. Each stage's report. */
  printf("\n== stage reports\n");
  for (int s = 0; s < NUM_STAGES; s++) {
    ray_ref_t rep[3];
    CHECK(ray_actor_call(stages[s], "report", NULL, 0, NULL, rep));
    int64_t v[3];
    for (int k = 0; k < 3; k++) {
      int rc = ray_get_i64(rep[k], RAY_TIMEOUT_INFINITE, &v[k]);
      if (rc != RAY_OK) fail_with_chain("report", rep[k], rc);
      CHECK(ray_ref_release(rep[k]));
    }
    printf("  Stage %d: %" PRId64 " items, %" PRId64 " out of order, at most %" PRId64
           " call(s) at once\n",
           s, v[0], v[1], v[2]);
    EXPECT(v[0] == NUM_ITEMS && v[1] == 0 && v[2] == 1);
  }
  if (ray_num_ranks() == 1) { /* as an MPI job the stages run in the ranks' own processes */
    printf(
        "  calls running at once across the stages, at most: %d "
        "(items in flight in different stages)\n",
        atomic_load(&g_max_running));
    EXPECT(atomic_load(&g_max_running) >= 1 && atomic_load(&g_max_running) <= NUM_STAGES);
  }

  for (int s = 0; s < NUM_STAGES; s++) CHECK(ray_actor_release(stages[s]));
  CHECK(ray_stats(&rs));
  printf("\n%" PRIu64 " tasks and calls submitted, %" PRIu64 " failed\n", rs.tasks_submitted,
         rs.tasks_failed);
  EXPECT(rs.tasks_failed == 0);
  CHECK(ray_shutdown());
  printf("shutdown: OK\n");
  return 0;
}
