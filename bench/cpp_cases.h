/* cpp_cases.h - the C++ API's cases of rustyray_microbenchmark
 * (cpp_cases.cpp, written with <ray/api.h>), each the same work as one of
 * the C cases, so the two figures side by side are what the C++ layer costs
 * per call:
 *
 *   cpp_tasks_async            as single_client_tasks_async: `tasks` calls
 *                              of ray::Task(CppBenchNoop).Remote() (a
 *                              RAY_REMOTE function of no arguments returning
 *                              int64_t 1), then ray::Get of each (checked to
 *                              be 1), each ref released after its get;
 *   cpp_1_1_actor_calls_async  as 1_1_actor_calls_async: one actor
 *                              (SetMaxConcurrency(1)), `calls` calls of
 *                              handle.Task(&CppBenchCounter::Inc).Remote(),
 *                              then ray::Get of each, checked to be exactly
 *                              the previous result + 1; at the end Read()
 *                              must equal the number of calls made.
 *
 * Each case is a context (new/free) and a batch, which microbenchmark.c
 * times with the same measure() as the C cases. The runtime must be running
 * (the benchmark's main starts it with ray_init; RAY_REMOTE registered the
 * function and the class before main, so every ray_init sees them). A
 * failure (a C++ exception, a wrong value) aborts with a message.
 *
 * Built only with the C++ API's target rustyray::cpp (RAY_BENCH_HAVE_CPP). */
#ifndef RUSTYRAY_BENCH_CPP_CASES_H
#define RUSTYRAY_BENCH_CPP_CASES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cpp_tasks_async: a context for batches of `tasks` tasks. */
void *cpp_bench_tasks_new(size_t tasks);
/* Submit the batch's tasks, get and release each; returns how many. */
uint64_t cpp_bench_tasks_batch(void *ctx);
void cpp_bench_tasks_free(void *ctx);

/* cpp_1_1_actor_calls_async: a new actor and batches of `calls` calls. */
void *cpp_bench_actor_new(size_t calls);
/* Call Inc `calls` times, get and release each; returns how many. */
uint64_t cpp_bench_actor_batch(void *ctx);
/* Check Read() against the calls made, then drop the actor's handle. */
void cpp_bench_actor_free(void *ctx);

#ifdef __cplusplus
}
#endif

#endif
