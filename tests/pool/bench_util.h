/* Helpers shared by the pool benchmarks (bench_pool, bench_datapath). */
#ifndef THINP_TESTS_POOL_BENCH_UTIL_H
#define THINP_TESTS_POOL_BENCH_UTIL_H

#include <stdint.h>
#include <libthinp/thinp.h>

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Print "bench: <what>: <error>" and exit(1). */
void bench_die(const char *what, int r);
/* Flags every later bench_open_file() opens with besides THINP_IO_CREATE
 * (THINP_IO_DIRECT: O_DIRECT, so that device I/Os and their latency, not
 * copies through the page cache, are what is measured). Default 0. */
void bench_set_open_flags(uint32_t flags);
/* A fresh file dir/name of size bytes (sparse), unlinked at once so it
 * goes away when closed; exits on failure. */
thinp_io *bench_open_file(const char *dir, const char *name, uint64_t size);
/* The median of v[0..n) (sorts v). */
double bench_median(double *v, unsigned n);

#endif
