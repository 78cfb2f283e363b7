/*
 * bench_btree: throughput of the btree over the transaction manager.
 *
 *   bench_btree [-n KEYS] [--ten] [--file PATH] [--cache MB] [--commit-every N]
 *               [--sm-metadata]
 *
 * For sequential and then random keys: insert KEYS keys (8-byte values),
 * committing every N operations; look every key up; remove half of them;
 * report operations per second, commit times, and the block manager's peak
 * resident cache (bm_get_stats) and the process's peak RSS. --ten runs 10 M
 * keys; --file uses a file-backed device at PATH (created, truncated to the
 * needed size, removed at the end) instead of memory. The metadata space
 * map is the in-memory core_sm (tests/common/core_sm.c), or with
 * --sm-metadata the real self-hosting one (lib/sm/metadata.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/core_sm.h"
#include "common/tm_env.h"
#include "btree/btree.h"
#include "sm/metadata.h"
#include "util/endian.h"

struct bench {
	uint64_t n, commit_every, meta_blocks;
	size_t cache_bytes;
	const char *file;
	int metadata_sm; /* the real metadata space map instead of core_sm */
	struct tm_env e;
	struct btree_info info;
	uint64_t root;
	double commit_total, commit_max;
	unsigned commits;
};

/* CPU time of this process: the machine may be shared, and wall-clock
 * rates then measure the neighbours. Both are reported. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	/* A bijection on 64-bit integers (splitmix64 finaliser): random-looking
	 * keys without duplicates. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t key_at(uint64_t i, int random)
{
	return random ? mix(i) : i;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench_btree: %s: %s\n", what, strerror(-r));
	exit(1);
}

static void commit(struct bench *b)
{
	double t = now(), d;
	int r = tm_env_commit(&b->e, &b->root, 1);

	if (r)
		die("commit", r);
	d = now() - t;
	b->commit_total += d;
	if (d > b->commit_max)
		b->commit_max = d;
	b->commits++;
}

static void open_env(struct bench *b)
{
	thinp_io *io;
	int r;

	if (b->file) {
		int fd = open(b->file, O_RDWR | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || ftruncate(fd, (off_t)(b->meta_blocks * 4096)) || close(fd))
			die("create file", -errno);
		r = thinp_io_open_file(&io, b->file, 0);
	} else {
		r = thinp_io_open_memory(&io, b->meta_blocks * 4096, 0);
	}
	if (r)
		die("open device", r);
	if (b->metadata_sm) {
		struct bm_options opts = { .cache_bytes = b->cache_bytes };

		memset(&b->e, 0, sizeof(b->e));
		b->e.io = io;
		b->e.nr_blocks = b->meta_blocks;
		b->e.cache_bytes = b->cache_bytes;
		r = bm_create(&b->e.bm, io, &opts);
		if (!r)
			r = tm_create(&b->e.tm, b->e.bm);
		if (!r)
			r = sm_metadata_create(b->e.tm, b->meta_blocks, 0, &b->e.sm);
	} else {
		r = tm_env_open_io(&b->e, io, b->meta_blocks, b->cache_bytes);
	}
	if (r)
		die("open the metadata stack", r);
	b->info.tm = b->e.tm;
	b->info.levels = 1;
	b->info.value_type = (struct btree_value_type){ NULL, 8, NULL, NULL, NULL };
	r = btree_empty(&b->info, &b->root);
	if (r)
		die("btree_empty", r);
	commit(b);
	b->commit_total = b->commit_max = 0;
	b->commits = 0;
}

static void report(const char *what, uint64_t ops, double cpu, double w)
{
	printf("  %-8s %10llu ops  cpu %7.2f s %10.0f ops/s   (wall %7.2f s %10.0f ops/s)\n",
	       what, (unsigned long long)ops, cpu, ops / cpu, w, ops / w);
}

static void run(struct bench *b, int random)
{
	struct bm_stats st;
	struct rusage ru;
	uint8_t v[8];
	uint64_t i, k;
	double t, tw;
	int r;

	open_env(b);
	printf("%s keys, %llu keys, %s device, %s space map, cache %zu MiB, commit every %llu ops\n",
	       random ? "random" : "sequential", (unsigned long long)b->n,
	       b->file ? "file" : "memory", b->metadata_sm ? "metadata" : "core",
	       b->cache_bytes >> 20,
	       (unsigned long long)b->commit_every);

	t = now();
	tw = wall();
	for (i = 0; i < b->n; i++) {
		k = key_at(i, random);
		store_le64(v, i);
		r = btree_insert(&b->info, b->root, &k, v, &b->root, NULL);
		if (r)
			die("insert", r);
		if ((i + 1) % b->commit_every == 0)
			commit(b);
	}
	commit(b);
	report("insert", b->n, now() - t, wall() - tw);
	printf("  commits: %u, cpu mean %.1f ms, max %.1f ms (included above)\n", b->commits,
	       1e3 * b->commit_total / b->commits, 1e3 * b->commit_max);

	t = now();
	tw = wall();
	for (i = 0; i < b->n; i++) {
		k = key_at(mix(i + 12345) % b->n, random);
		r = btree_lookup(&b->info, b->root, &k, v);
		if (r)
			die("lookup", r);
	}
	report("lookup", b->n, now() - t, wall() - tw);

	b->commit_total = b->commit_max = 0;
	b->commits = 0;
	t = now();
	tw = wall();
	for (i = 0; i < b->n; i += 2) {
		k = key_at(i, random);
		r = btree_remove(&b->info, b->root, &k, &b->root);
		if (r)
			die("remove", r);
		if ((i / 2 + 1) % b->commit_every == 0)
			commit(b);
	}
	commit(b);
	report("remove", (b->n + 1) / 2, now() - t, wall() - tw);
	printf("  commits: %u, cpu mean %.1f ms, max %.1f ms (included above)\n", b->commits,
	       1e3 * b->commit_total / b->commits, 1e3 * b->commit_max);

	bm_get_stats(b->e.bm, &st);
	getrusage(RUSAGE_SELF, &ru);
	printf("  bm: peak resident %.1f MiB, reads %llu, writes %llu, hits %llu, misses %llu, "
	       "evictions %llu; process peak RSS %.1f MiB\n",
	       st.peak_resident_bytes / 1048576.0, (unsigned long long)st.reads,
	       (unsigned long long)st.writes, (unsigned long long)st.hits,
	       (unsigned long long)st.misses, (unsigned long long)st.evictions,
	       ru.ru_maxrss / 1024.0);
	tm_env_close(&b->e);
	if (b->file)
		unlink(b->file);
}

int main(int argc, char **argv)
{
	struct bench b = { .n = 1000000, .commit_every = 100000, .cache_bytes = 64u << 20 };
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			b.n = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ten"))
			b.n = 10000000;
		else if (!strcmp(argv[i], "--file") && i + 1 < argc)
			b.file = argv[++i];
		else if (!strcmp(argv[i], "--sm-metadata"))
			b.metadata_sm = 1;
		else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
			b.cache_bytes = strtoull(argv[++i], NULL, 0) << 20;
		else if (!strcmp(argv[i], "--commit-every") && i + 1 < argc)
			b.commit_every = strtoull(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: %s [-n KEYS] [--ten] [--file PATH] [--cache MB] "
				"[--commit-every N] [--sm-metadata]\n", argv[0]);
			return 2;
		}
	}
	if (!b.commit_every)
		b.commit_every = b.n + 1;
	/* Room for the tree (about n/120 nodes) and a transaction's copies. */
	b.meta_blocks = b.n / 40 + 16384;
	run(&b, 0);
	run(&b, 1);
	return 0;
}
