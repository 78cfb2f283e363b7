/* Helpers shared by the pool benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "pool/bench_util.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void bench_die(const char *what, int r)
{
	fprintf(stderr, "bench: %s: %s\n", what, thinp_strerror(r));
	exit(1);
}

static uint32_t open_flags;

void bench_set_open_flags(uint32_t flags)
{
	open_flags = flags;
}

thinp_io *bench_open_file(const char *dir, const char *name, uint64_t size)
{
	char path[512];
	thinp_io *io;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	r = thinp_io_open_file(&io, path, THINP_IO_CREATE | open_flags);
	if (r)
		bench_die(path, r);
	r = thinp_io_resize(io, size);
	if (r)
		bench_die("resize", r);
	unlink(path); /* removed when closed */
	return io;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
