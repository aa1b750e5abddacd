/* cluster_bench.h - rustyray_microbenchmark's cluster cases (cluster_bench.c),
 * built with RAY_WITH_MPI. */
#ifndef RAY_CLUSTER_BENCH_H
#define RAY_CLUSTER_BENCH_H

/* Run the cluster cases whose names start with one of `prefixes` (all when
 * nprefixes is 0), `seconds` each: every rank calls it; rank 0 measures and
 * prints, the others serve. Returns the process's exit code. */
int cluster_bench_run(double seconds, char **prefixes, int nprefixes);

#endif /* RAY_CLUSTER_BENCH_H */
