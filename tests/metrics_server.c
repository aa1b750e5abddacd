/* metrics_server.c - a runtime with its metrics endpoint up, for the
 * Prometheus scrape test (tests/prometheus_scrape.sh).
 *
 * It starts the runtime with two workers and the endpoint on a free port
 * (127.0.0.1), runs TASKS small tasks and waits until the runtime has
 * counted them all finished, then prints what a scraper should read back:
 *
 *   port <the endpoint's port>
 *   workers <rustyray_workers>
 *   tasks <rustyray_tasks_finished_total>
 *
 * and stays up, serving scrapes, until its stdin reaches end of file. Then
 * it shuts down and exits 0 (1 on any failure, with a message on stderr). */
/* nanosleep is POSIX, which strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rustyray.h"
#include "rustyray/typed.h"

#define TASKS 10

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "metrics_server:%d: failed: %s\n", __LINE__, #cond); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

RAY_FUNCTION(i64, add, (i64, a), (i64, b)) {
  return a + b;
}

int main(void) {
  ray_config_t cfg;
  CHECK(ray_config_init(&cfg) == RAY_OK);
  cfg.num_workers = 2;
  cfg.metrics_port = -1; /* any free port, on 127.0.0.1 */
  CHECK(ray_init(&cfg) == RAY_OK);
  int port = ray_metrics_port();
  CHECK(port > 0);

  for (int64_t i = 0; i < TASKS; i++) {
    RAY_REF(i64) r = add(i, 1);
    int64_t v = 0;
    CHECK(RAY_GET(r, RAY_TIMEOUT_INFINITE, &v) == RAY_OK && v == i + 1);
    CHECK(ray_ref_release(r.ref) == RAY_OK);
  }
  /* A result is ready just before its run is counted finished: wait for
   * the count itself, so what is printed is what a scrape will read. */
  ray_stats_t s;
  for (;;) {
    CHECK(ray_stats(&s) == RAY_OK);
    if (s.tasks_finished >= TASKS) break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  printf("port %d\nworkers %" PRIu64 "\ntasks %" PRIu64 "\n", port, s.num_workers,
         s.tasks_finished);
  fflush(stdout);

  while (getchar() != EOF) {
  }
  CHECK(ray_shutdown() == RAY_OK);
  return 0;
}
