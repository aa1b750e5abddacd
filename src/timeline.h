/* timeline.h - per-worker records of what ran: timeline spans and task
 * latency histograms (see timeline.c). */
#ifndef RAY_TIMELINE_H
#define RAY_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum { RAY__LAT_BUCKETS = 8, RAY__SPAN_CHUNK = 1024, RAY__ID_CHUNK = 4096 };

typedef struct ray__span_s {
  const char *name; /* the function's or method's registered name (lives until shutdown) */
  uint64_t task_id;
  uint64_t start, end; /* uv_hrtime ns */
  int32_t outcome;     /* 0, or the error code its results failed with */
  uint8_t kind;        /* RAY__TASK_* */
  uint32_t nargs, nresults;
  /* ids[0..nargs): ref arguments (flow arrows come in from their
   * producers); then nresults result ids. Kept in the record's id arena. */
  const uint64_t *ids;
} ray__span_t;

typedef struct ray__id_chunk_s {
  struct ray__id_chunk_s *next;
  uint32_t n, cap;
  uint64_t ids[];
} ray__id_chunk_t;

typedef struct ray__span_chunk_s {
  struct ray__span_chunk_s *next;
  uint32_t n;
  ray__span_t spans[RAY__SPAN_CHUNK];
} ray__span_chunk_t;

/* One per worker struct (a retired spare's is kept for the next spare).
 * The owner appends; a dump or a scrape reads under
 * `mu`, which the owner takes too (uncontended but for those). */
typedef struct ray__obs_s {
  uv_mutex_t mu;
  unsigned serial; /* stable thread number for the trace */
  ray__span_chunk_t *head, *tail;
  ray__id_chunk_t *ids;                   /* the arena the spans' id lists live in (newest first) */
  uint64_t lat_buckets[RAY__LAT_BUCKETS]; /* run time <= 1us,10us,...,10s; last: more */
  uint64_t lat_count;
  uint64_t lat_sum_ns;
} ray__obs_t;

/* A worker's record (the scheduler holds it as an opaque pointer: the
 * runtime passes these two to ray__sched_start). New returns NULL when out
 * of memory; free takes NULL. */
ray__obs_t *ray__timeline_obs_new(unsigned serial);
void ray__timeline_obs_free(ray__obs_t *o);
/* Record one finished run (span when the timeline is on, copying its
 * `span->nargs + span->nresults` ids; histogram always). */
void ray__timeline_obs_record(ray__obs_t *o, const ray__span_t *span, bool keep_span);

struct ray__runtime_s;

/* Task run times summed over every worker's record (metrics.c). */
typedef struct ray__latency_s {
  uint64_t buckets[RAY__LAT_BUCKETS]; /* as ray__obs_t's lat_buckets */
  uint64_t count, sum_ns;
} ray__latency_t;
void ray__timeline_latency(struct ray__runtime_s *rt, ray__latency_t *out);

/* Write the Chrome trace of every worker's spans to `path`.
 * Errors: RAY_EIO, RAY_ENOMEM. */
int ray__timeline_write(struct ray__runtime_s *rt, const char *path);

#endif /* RAY_TIMELINE_H */
