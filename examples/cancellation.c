/* cancellation.c - ray_cancel on queued, waiting, running and finished tasks.
 *
 * Ray's ray.cancel (non-force), in C:
 *   1. a task still in a ready queue never runs: its result fails with
 *      RAY_ECANCELED at once, and a task that depends on it fails with
 *      RAY_EDEPFAILED, caused by the cancellation;
 *   2. a task still waiting for its arguments is cancelled the same way;
 *   3. a running task is not interrupted: ray_task_is_cancelled() becomes
 *      true and the task decides how to stop (here: ray_fail with
 *      RAY_ECANCELED and how far it got);
 *   4. cancelling what has already finished, or what no task produces, is a
 *      no-op that says so: RAY_EFINISHED.
 *
 * To have a task that is certainly queued and not started, the program
 * first occupies every worker with a "gate" task that waits for the host to
 * open the gate. It checks every value and return code and exits non-zero
 * on a mismatch, so it doubles as a test (example_cancellation). */
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

#define NUM_WORKERS 2

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                              \
  do {                                                                           \
    int check_rc_ = (call);                                                      \
    if (check_rc_ != RAY_OK) {                                                   \
      fprintf(stderr, "cancellation:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                 \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

#define EXPECT(cond)                                                       \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "cancellation:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

#define EXPECT_CODE(call, code)                                                          \
  do {                                                                                   \
    int expect_rc_ = (call);                                                             \
    if (expect_rc_ != (code)) {                                                          \
      fprintf(stderr, "cancellation:%d: %s returned %s, expected %s\n", __LINE__, #call, \
              ray_err_name(expect_rc_), ray_err_name(code));                             \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

/* Wait (polling the host's own flag, not the library) until cond holds. */
#define WAIT_UNTIL(cond)                                                                 \
  do {                                                                                   \
    uint64_t wait_deadline_ = uv_hrtime() + 60 * (uint64_t)1000000000;                   \
    while (!(cond)) {                                                                    \
      if (uv_hrtime() > wait_deadline_) {                                                \
        fprintf(stderr, "cancellation:%d: timed out waiting for %s\n", __LINE__, #cond); \
        exit(1);                                                                         \
      }                                                                                  \
      uv_sleep(1);                                                                       \
    }                                                                                    \
  } while (0)

/* The error chain of a failed ref, one line per link; returns the error
 * (caller frees) so the codes can be checked. */
static ray_error_t *show_error(const char *label, ray_ref_t ref) {
  ray_error_t *err = NULL;
  CHECK(ray_get_error(ref, &err));
  EXPECT(err != NULL);
  char text[2048];
  int n = ray_error_format(err, text, sizeof text);
  EXPECT(n > 0 && (size_t)n < sizeof text);
  printf("  %s:\n", label);
  /* indent each line of the chain */
  for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
    printf("    %s\n", line);
  return err;
}

/* ---- The remote functions -------------------------------------------------- */

static atomic_int g_gate_open;    /* set by the host to let the gates finish */
static atomic_int g_gates_in;     /* gates running */
static atomic_int g_work_runs;    /* times work() ran: cancelled ones never do */
static atomic_int g_long_started; /* long_job is running */

/* gate() -> i64 0: holds a worker until the host opens the gate. */
static int gate(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_gates_in, 1);
  while (!atomic_load(&g_gate_open)) uv_sleep(1);
  return ray_return_i64(ctx, 0, 0);
}

/* work(x) -> i64 x * 2. */
static int work(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_work_runs, 1);
  int64_t x;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != RAY_OK) return rc;
  return ray_return_i64(ctx, 0, x * 2);
}

/* long_job() -> i64 steps: a loop of 1 ms steps (up to 60 s) that checks
 * for cancellation between steps, as a well-behaved long task does. */
static int long_job(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_store(&g_long_started, 1);
  int64_t steps = 0;
  for (; steps < 60000; steps++) {
    if (ray_task_is_cancelled(ctx))
      return ray_fail(ctx, RAY_ECANCELED, "%s stopped cooperatively after %" PRId64 " steps",
                      ray_ctx_name(ctx), steps);
    uv_sleep(1); /* one step of real work */
  }
  return ray_return_i64(ctx, 0, steps);
}

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  ray_config_t cfg;
  CHECK(ray_config_init(&cfg));
  cfg.num_workers = NUM_WORKERS;
  CHECK(ray_init(&cfg));

  const uint32_t t_i64[] = {RAY_TYPE_I64};
  ray_function_t f_gate, f_work, f_long;
  CHECK(ray_function_register("gate", gate, NULL, t_i64, 1, &f_gate));
  CHECK(ray_function_register("work", work, NULL, t_i64, 1, &f_work));
  CHECK(ray_function_register("long_job", long_job, NULL, t_i64, 1, &f_long));

  /* ---- 1. A task in a ready queue, and a task that depends on it. */
  printf("== 1. cancel a queued task\n");
  ray_ref_t gates[NUM_WORKERS];
  for (int i = 0; i < NUM_WORKERS; i++) CHECK(ray_task_submit(f_gate, NULL, 0, NULL, &gates[i]));
  WAIT_UNTIL(atomic_load(&g_gates_in) == NUM_WORKERS);
  printf("  all %d workers are busy with gate tasks\n", NUM_WORKERS);

  ray_arg_t a21 = ray_arg_i64(21);
  ray_ref_t queued, dependent;
  CHECK(ray_task_submit(f_work, &a21, 1, NULL, &queued));
  ray_arg_t a_dep = ray_arg_ref(queued);
  CHECK(ray_task_submit(f_work, &a_dep, 1, NULL, &dependent));
  bool ready = true;
  EXPECT(ray_wait(&queued, 1, 1, 0, &ready) == 0 && !ready);
  printf("  work(21) is queued (ref %" PRIu64 "), work(<its result>) waits on it (ref %" PRIu64
         ")\n",
         queued.id, dependent.id);

  CHECK(ray_cancel(queued));
  printf("  ray_cancel(work(21)) -> OK\n");
  int64_t v = -1;
  EXPECT_CODE(ray_get_i64(queued, RAY_TIMEOUT_INFINITE, &v), RAY_ECANCELED);
  printf("  ray_get(work(21)) -> %s, at once, though no worker is free\n",
         ray_err_name(RAY_ECANCELED));
  ray_error_t *err = show_error("its error", queued);
  EXPECT(ray_error_code(err) == RAY_ECANCELED);
  ray_error_free(err);

  /* ---- 2. A task still waiting for its argument. */
  printf("\n== 2. cancel a task waiting for its arguments\n");
  ray_arg_t a_gate = ray_arg_ref(gates[0]); /* pending until the gate opens */
  ray_ref_t waiting;
  CHECK(ray_task_submit(f_work, &a_gate, 1, NULL, &waiting));
  CHECK(ray_cancel(waiting));
  EXPECT_CODE(ray_get_i64(waiting, RAY_TIMEOUT_INFINITE, &v), RAY_ECANCELED);
  printf("  work(<gate result>) cancelled before its argument was ready -> %s\n",
         ray_err_name(RAY_ECANCELED));

  /* Open the gates: the workers are free again. The cancelled tasks still
   * never run; the dependent runs only to fail, caused by the cancel. */
  atomic_store(&g_gate_open, 1);
  for (int i = 0; i < NUM_WORKERS; i++) {
    CHECK(ray_get_i64(gates[i], RAY_TIMEOUT_INFINITE, &v));
    EXPECT(v == 0);
  }
  printf("\n  gates opened; the task that depended on the cancelled one:\n");
  EXPECT_CODE(ray_get_i64(dependent, RAY_TIMEOUT_INFINITE, &v), RAY_EDEPFAILED);
  err = show_error("ray_get(work(<cancelled>)) -> EDEPFAILED", dependent);
  EXPECT(ray_error_code(err) == RAY_EDEPFAILED);
  EXPECT(ray_error_cause(err) != NULL && ray_error_code(ray_error_cause(err)) == RAY_ECANCELED);
  ray_error_free(err);

  /* ---- 3. A running task: cooperative. */
  printf("\n== 3. cancel a running task (cooperative)\n");
  ray_task_opts_t opts;
  ray_task_opts_init(&opts);
  opts.name = "long_job#1";
  ray_ref_t running;
  CHECK(ray_task_submit(f_long, NULL, 0, &opts, &running));
  WAIT_UNTIL(atomic_load(&g_long_started));
  uv_sleep(20); /* let it do some steps */
  CHECK(ray_cancel(running));
  printf("  long_job is running; ray_cancel -> OK (it keeps running until it looks)\n");
  EXPECT_CODE(ray_get_i64(running, RAY_TIMEOUT_INFINITE, &v), RAY_ECANCELED);
  err = show_error("ray_get(long_job) -> ECANCELED, failed by the task itself", running);
  EXPECT(ray_error_code(err) == RAY_ECANCELED);
  EXPECT(strstr(ray_error_message(err), "stopped cooperatively after") != NULL);
  EXPECT(strcmp(ray_error_origin(err), "long_job#1") == 0);
  ray_error_free(err);

  /* ---- 4. Nothing left to cancel. */
  printf("\n== 4. cancel what has finished\n");
  EXPECT_CODE(ray_cancel(gates[0]), RAY_EFINISHED);
  printf("  ray_cancel(a finished gate)            -> %s\n", ray_err_name(RAY_EFINISHED));
  EXPECT_CODE(ray_cancel(queued), RAY_EFINISHED);
  printf("  ray_cancel(work(21)) again             -> %s\n", ray_err_name(RAY_EFINISHED));
  ray_ref_t put;
  CHECK(ray_put_i64(7, &put));
  EXPECT_CODE(ray_cancel(put), RAY_EFINISHED);
  printf("  ray_cancel(a ray_put object)           -> %s (no task produces it)\n",
         ray_err_name(RAY_EFINISHED));
  CHECK(ray_ref_release(put));
  EXPECT_CODE(ray_cancel(put), RAY_ENOTFOUND);
  printf("  ray_cancel(a released ref)             -> %s\n", ray_err_name(RAY_ENOTFOUND));

  /* The cancelled work() calls never ran: only the dependent's body could
   * have, and it did not either (its argument had failed). */
  printf("\nwork() ran %d time(s)\n", atomic_load(&g_work_runs));
  EXPECT(atomic_load(&g_work_runs) == 0);

  for (int i = 0; i < NUM_WORKERS; i++) CHECK(ray_ref_release(gates[i]));
  CHECK(ray_ref_release(queued));
  CHECK(ray_ref_release(dependent));
  CHECK(ray_ref_release(waiting));
  CHECK(ray_ref_release(running));
  CHECK(ray_shutdown());
  printf("shutdown: OK\n");
  return 0;
}
