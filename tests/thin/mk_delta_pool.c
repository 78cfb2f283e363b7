/*
 * Builds the benchmark pool of tests/tool/bench_delta.sh (not a test):
 *
 *   mk_delta_pool FILE MAPPED CHANGED RUN
 *
 * FILE (an existing file, its size the metadata size) gets fresh metadata:
 * device 1 maps virtual blocks 0..MAPPED-1 to data blocks 0..MAPPED-1, then
 * device 2 is made as its snapshot (create_snap: the two share every btree
 * node) and CHANGED of its blocks are remapped to new data blocks, in runs
 * of RUN blocks at random places (RUN 1: scattered single blocks), the way
 * writes to a snapshot break sharing. Each data block is allocated, so the
 * pool is consistent (thin_check passes). Deterministic (fixed seed).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/io.h>
#include <libthinp/meta.h>

#define COMMIT_EVERY 1000000u

static int die(const char *what, int e)
{
	fprintf(stderr, "mk_delta_pool: %s: %s\n", what, thinp_strerror(e));
	exit(1);
}

static void check(const char *what, int e)
{
	if (e)
		die(what, e);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void map(thinp_meta *meta, uint64_t dev, uint64_t v, uint64_t *n)
{
	uint64_t b;

	check("alloc", thinp_meta_alloc_data_block(meta, &b));
	check("insert", thinp_meta_insert(meta, dev, v, b));
	if (++*n % COMMIT_EVERY == 0)
		check("commit", thinp_meta_commit(meta));
}

int main(int argc, char **argv)
{
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	uint64_t mapped, changed, run, v, i, n = 0, seed = 42;
	thinp_meta *meta;
	thinp_io *io;

	if (argc != 5) {
		fprintf(stderr, "usage: mk_delta_pool FILE MAPPED CHANGED RUN\n");
		return 2;
	}
	mapped = strtoull(argv[2], NULL, 0);
	changed = strtoull(argv[3], NULL, 0);
	run = strtoull(argv[4], NULL, 0);
	if (!mapped || !run || run > mapped)
		return die("arguments", -EINVAL);
	check(argv[1], thinp_io_open_file(&io, argv[1], 0));
	p.nr_data_blocks = mapped + changed + 1024;
	p.flags = THINP_META_FORMAT_OVERWRITE;
	o.cache_bytes = 256ull << 20;
	check("format", thinp_meta_format(&meta, io, &p, &o));
	check("create_thin", thinp_meta_create_thin(meta, 1));
	for (v = 0; v < mapped; v++)
		map(meta, 1, v, &n);
	check("commit", thinp_meta_commit(meta));
	check("create_snap", thinp_meta_create_snap(meta, 2, 1));
	for (i = 0; i < changed; i += run) {
		uint64_t begin = rng_next(&seed) % (mapped - run + 1);

		for (v = begin; v < begin + run && v - begin < changed - i; v++)
			map(meta, 2, v, &n);
	}
	check("commit", thinp_meta_commit(meta));
	thinp_meta_close(meta);
	check("flush", thinp_io_flush(io));
	thinp_io_close(io);
	return 0;
}
