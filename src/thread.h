/* thread.h - the library's threads: creation and join (counted), the
 * calling thread's role, and one thread-exit mechanism for per-thread state
 * (see thread.c). The bottom layer: it calls no other file of the library. */
#ifndef RAY_THREAD_H
#define RAY_THREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Initial-exec TLS for what the fast paths touch on every call (a task, a
 * get): the general-dynamic model would make each touch a call into the
 * dynamic linker when the library is shared. */
#if defined(__GNUC__)
#define RAY__TLS_FAST __attribute__((tls_model("initial-exec")))
#else
#define RAY__TLS_FAST
#endif

/* What the current thread is, so shutdown can refuse to run on its own
 * threads. The loop, the workers, the spiller and the cluster's
 * communication thread set it as they start. */
enum {
  RAY__ROLE_HOST = 0,
  RAY__ROLE_WORKER = 1,
  RAY__ROLE_LOOP = 2,
  RAY__ROLE_SPILLER = 3,
  RAY__ROLE_COMM = 4
};
extern _Thread_local int ray__thread_role RAY__TLS_FAST;

/* Start fn(arg) on a new thread, counted for ray__threads_alive() until
 * ray__thread_join. Returns 0, or RAY_EIO when the system refuses the
 * thread (or ray__thread_fail_next made it refuse). Thread-safe. */
int ray__thread_create(uv_thread_t *t, void (*fn)(void *), void *arg);
/* Join a thread ray__thread_create started (blocks until it ends). */
void ray__thread_join(uv_thread_t *t);
/* ray__threads_alive and ray__thread_fail_next, the tests' view of these
 * counts, are declared in testing.h. */

/* A thread-exit hook: per-thread state that must be handed back when its
 * thread ends (the guard's record, the view cache's free slots). The node
 * lives in the thread's own thread-local storage. */
typedef struct ray__thread_exit_s {
  void (*fn)(struct ray__thread_exit_s *self); /* runs on the exiting thread */
  struct ray__thread_exit_s *next;
  bool armed; /* registered and not yet run */
} ray__thread_exit_t;

/* Run h->fn(h) once, on the calling thread, when it ends (any thread:
 * ours, the host's). `h` must be thread-local to the calling thread, with
 * `fn` set; registering an armed hook again is a no-op. A hook may register
 * again while other exit hooks run (its state was used again after it ran):
 * it then runs again, up to the system's destructor rounds (4 on glibc).
 * Hooks do not run for a thread that ends the process (exit() from main).
 * Returns 0, or RAY_ENOMEM when the system gave no thread-specific key (the
 * hook then never runs: its state stays with the dead thread). Never
 * blocks on another thread. */
int ray__thread_at_exit(ray__thread_exit_t *h);

/* One wait on cv (mu held) bounded by `deadline` (uv_hrtime ns; UINT64_MAX:
 * none; scheduler.h's ray__sched_deadline makes one from a timeout).
 * Returns RAY_ETIMEDOUT when the deadline has passed already (then it does
 * not wait), else 0 after a wake-up, a spurious one or a timeout: the
 * caller re-checks its condition in a loop. */
int ray__thread_cond_wait_until(uv_cond_t *cv, uv_mutex_t *mu, uint64_t deadline);

#endif /* RAY_THREAD_H */
