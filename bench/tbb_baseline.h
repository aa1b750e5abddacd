/* tbb_baseline.h - the oneTBB side of `rustyray_microbenchmark --compare`.
 *
 * Each function runs one round of the same work as one of our cases, written
 * the way a oneTBB user would write it (bench/tbb_baseline.cpp says how and
 * why): a warm-up of a tenth of `seconds`, untimed, then `seconds` timed,
 * and returns operations per second of the timed part. Each checks its own
 * results and aborts with a message on a wrong value, as our cases do.
 *
 * Built only when CMake finds oneTBB (RAY_BENCH_HAVE_TBB). */
#ifndef RUSTYRAY_BENCH_TBB_BASELINE_H
#define RUSTYRAY_BENCH_TBB_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Before any other call: the concurrency of the task arena every task case
 * runs in (our runtime's worker count); also caps TBB's worker threads. */
void tbb_baseline_init(unsigned concurrency);

/* "oneTBB <version>, ..." for the benchmark's configuration line. */
const char *tbb_baseline_describe(void);

/* single_client_tasks_async: `tasks` task_group.run, each storing 1 in its
 * own slot, then wait; every slot checked. Tasks per second. */
double tbb_baseline_tasks_async(double seconds, size_t tasks);

/* task_chain_100k: `length` tasks, each running the next with its value + 1;
 * the end value checked == length. Tasks per second. */
double tbb_baseline_task_chain(double seconds, int64_t length);

/* single_client_tasks_sync: one trivial task enqueued to a TBB worker, the
 * caller waiting for its value. Round trips per second. */
double tbb_baseline_tasks_sync(double seconds);

/* 1_1 (clients 1, on the calling thread) and n_n (one host thread per
 * client) actor calls: each client has a counter behind its own serial
 * queue, submits `calls` calls, waits for all and checks every returned
 * value. Calls per second, aggregate. */
double tbb_baseline_actor_calls_async(double seconds, unsigned clients, size_t calls);

/* single_client_put_calls (clients 1, on the calling thread) and
 * multi_client_put_calls: concurrent_hash_map insert of a fresh key, then
 * erase. Operations per second, aggregate. */
double tbb_baseline_put_calls(double seconds, unsigned clients);

/* single_client_get_calls: find with a const_accessor, read the value. */
double tbb_baseline_get_calls(double seconds);

#ifdef __cplusplus
}
#endif

#endif
