/*
 * bench_datapath: the two costs of the pool's write path that a raw file
 * does not have, each against the raw file backend in one run, on one
 * filesystem (files in the directory given as argv[1], default $TMPDIR or
 * /tmp):
 *
 *   1. breaking sharing: a 4 KiB write into a 64 KiB block shared with a
 *      snapshot (every write breaks the sharing of a fresh block) vs a 4 KiB
 *      pwrite overwriting a plain file (target: ratio >= 0.4). Also printed:
 *      the floor any copy through the page cache has, a raw 64 KiB pread
 *      plus a 64 KiB pwrite elsewhere vs the same 4 KiB pwrite;
 *   2. random 4 KiB writes with a flush every 64 writes vs a pwrite loop
 *      with fdatasync every 64 writes (target >= 0.9), twice: into a fresh
 *      volume vs a fresh sparse file (every first write to a block
 *      provisions it, every flush commits metadata), and into provisioned
 *      blocks vs an allocated file (both devices written through first).
 *      Also printed for the fresh volume: the floor of the kernel's
 *      two-phase commit, the same pwrite loop whose every 64th write is
 *      followed by what any commit at least syncs (fdatasync of the data
 *      file, one 4 KiB metadata block written and fdatasync'd, a 4 KiB
 *      superblock written and fdatasync'd: three syncs against one) vs the
 *      plain loop; the same floor with the data fdatasync on a thread
 *      beside the metadata block's write and fdatasync (the superblock
 *      still after both: two sync phases instead of three); and that
 *      overlapped floor against the serial one, which says whether the
 *      pool's commit would gain from overlapping (on ext4 here it loses).
 *
 * Both run twice, with every file (the pool's two devices and the raw
 * baseline alike) opened through the page cache, then with O_DIRECT
 * (THINP_IO_DIRECT). Through the page cache a write is a memory copy and
 * only the syncs reach the device, so the COW case measures copy bandwidth
 * (its floor, 64 KiB read + 64 KiB written against 4 KiB written, is far
 * below 0.4 there); with O_DIRECT every read and write is a device I/O, the
 * cost the 2-I/O copy-on-write is about, and their latency decides.
 *
 * Figures are medians over rounds in which raw and thin alternate (the one
 * going first alternating too), so that a burst of load elsewhere on the
 * machine does not decide the ratio. Not part of `make check`.
 *
 * Usage: tests/pool/bench_datapath [DIR] [ROUNDS] [cow|random|all]
 *                                  [cached|direct|both]   (default all, both)
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libthinp/thinp.h>
#include "pool/bench_util.h"

#define BS (64u * 1024)
#define IO4K 4096u
#define VOL_BLOCKS 2048u    /* 128 MiB volumes */
#define COW_WRITES 1024u    /* per round, each into its own shared block */
#define RAND_WRITES 2048u   /* per round */
#define FLUSH_EVERY 64u
#define META_BYTES (16ull << 20)

static void check(const char *what, int r)
{
	if (r)
		bench_die(what, r);
}

/* One line: the medians of the baseline, of the measured side (named) and
 * of their per-round ratio. */
static void report_as(const char *what, const char *side, double *raw, double *thin, unsigned n,
		      double target)
{
	double ratio[n];

	for (unsigned i = 0; i < n; i++)
		ratio[i] = thin[i] / raw[i];
	printf("%s: raw %.0f IOPS, %s %.0f IOPS, ratio %.2f (target >= %.2f, median of %u "
	       "rounds)\n",
	       what, bench_median(raw, n), side, bench_median(thin, n), bench_median(ratio, n), target, n);
}

static void report(const char *what, double *raw, double *thin, unsigned n, double target)
{
	report_as(what, "thin", raw, thin, n, target);
}

/* A pool on files with one volume 0 of VOL_BLOCKS blocks. */
struct bench {
	thinp_io *meta, *data;
	thinp_pool *pool;
	thinp_thin *thin;
};

/*
 * A file of size bytes, written through once (size a multiple of 1 MiB): a
 * device whose blocks exist, as an LV's do, not a sparse file whose every
 * first write allocates filesystem blocks.
 */
static thinp_io *open_written(const char *dir, const char *name, uint64_t size)
{
	thinp_io *io = bench_open_file(dir, name, size);
	void *zeroes = NULL;

	/* Aligned, for O_DIRECT. */
	if (posix_memalign(&zeroes, 4096, 1 << 20))
		bench_die(name, -ENOMEM);
	memset(zeroes, 0, 1 << 20);
	for (uint64_t off = 0; off < size; off += 1 << 20)
		check(name, thinp_io_write(io, zeroes, 1 << 20, off, 0));
	check("flush", thinp_io_flush(io));
	free(zeroes);
	return io;
}

/* The metadata device is always written through; the data device too
 * unless sparse (to compare with a sparse raw file). */
static void bench_open(struct bench *b, const char *dir, uint64_t data_blocks, bool sparse)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;

	b->meta = open_written(dir, "bench-dp-meta", META_BYTES);
	b->data = sparse ? bench_open_file(dir, "bench-dp-data", data_blocks * BS)
			 : open_written(dir, "bench-dp-data", data_blocks * BS);
	check("format", thinp_pool_format(&b->pool, b->meta, b->data, NULL));
	check("create_thin", thinp_pool_create_thin(b->pool, 0));
	to.size = (uint64_t)VOL_BLOCKS * BS;
	check("thin open", thinp_thin_open(&b->thin, b->pool, 0, &to));
}

static void bench_close(struct bench *b)
{
	thinp_thin_close(b->thin);
	check("close", thinp_pool_close(b->pool));
	thinp_io_close(b->meta);
	thinp_io_close(b->data);
}

/* Write every block of the volume (or file) once, then flush. */
static void fill(thinp_thin *thin, thinp_io *io, void *buf)
{
	for (uint64_t b = 0; b < VOL_BLOCKS; b++)
		check("fill", thin ? thinp_thin_write(thin, buf, BS, b * BS)
				   : thinp_io_write(io, buf, BS, b * BS, 0));
	check("fill flush", thin ? thinp_thin_flush(thin) : thinp_io_flush(io));
}

/* IOPS of COW_WRITES 4 KiB writes, one per block, 16 KiB into it. */
static double one_per_block(thinp_thin *thin, thinp_io *io, const void *buf)
{
	double t0 = bench_now();

	for (uint64_t b = 0; b < COW_WRITES; b++) {
		uint64_t off = b * BS + 16384;

		check("write", thin ? thinp_thin_write(thin, buf, IO4K, off)
				    : thinp_io_write(io, buf, IO4K, off, 0));
	}
	return COW_WRITES / (bench_now() - t0);
}

/* IOPS of COW_WRITES raw block copies: 64 KiB read, 64 KiB written to the
 * other half of the file. */
static double raw_copies(thinp_io *io, void *buf)
{
	double t0 = bench_now();

	for (uint64_t b = 0; b < COW_WRITES; b++) {
		check("read", thinp_io_read(io, buf, BS, b * BS, 0));
		check("write", thinp_io_write(io, buf, BS, (VOL_BLOCKS / 2 + b) * BS, 0));
	}
	return COW_WRITES / (bench_now() - t0);
}

static void bench_cow(const char *dir, unsigned rounds, void *buf)
{
	double raw[rounds], thin[rounds], raw2[rounds], copy[rounds];
	thinp_io *io = bench_open_file(dir, "bench-dp-raw", (uint64_t)VOL_BLOCKS * BS);
	struct bench b;

	bench_open(&b, dir, 2 * VOL_BLOCKS + 64, false);
	fill(b.thin, NULL, buf);
	fill(NULL, io, buf);
	for (unsigned i = 0; i < rounds; i++) {
		/* A fresh snapshot shares every block of the origin again; the
		 * last one's blocks go back to the free space. */
		if (i)
			check("delete", thinp_pool_delete_thin(b.pool, 1));
		check("create_snap", thinp_pool_create_snap(b.pool, 1, 0));
		for (unsigned k = 0; k < 2; k++) {
			if ((i + k) % 2 == 0)
				raw[i] = one_per_block(NULL, io, buf);
			else
				thin[i] = one_per_block(b.thin, NULL, buf);
		}
		check("flush", thinp_thin_flush(b.thin));
		check("flush", thinp_io_flush(io));
		raw2[i] = one_per_block(NULL, io, buf);
		copy[i] = raw_copies(io, buf);
	}
	report("4 KiB write breaking sharing of a 64 KiB block vs 4 KiB overwrite", raw, thin,
	       rounds, 0.4);
	report_as("  floor: raw 64 KiB read + 64 KiB write vs 4 KiB overwrite", "copy", raw2, copy,
		  rounds, 0.4);
	bench_close(&b);
	thinp_io_close(io);
}

static void *flush_main(void *io)
{
	check("flush", thinp_io_flush(io));
	return NULL;
}

/* The floor of a commit on meta: data flushed, then a metadata block
 * written and flushed, then the superblock written and flushed; with
 * overlap (what the pool's commit does) the data flush runs on a thread
 * while the metadata block is written and flushed. */
static void commit_floor(thinp_io *io, thinp_io *meta, const void *buf, bool overlap)
{
	pthread_t th;

	if (overlap && pthread_create(&th, NULL, flush_main, io))
		bench_die("pthread_create", -EAGAIN);
	if (!overlap)
		flush_main(io);
	check("write", thinp_io_write(meta, buf, IO4K, 16 * IO4K, 0));
	check("flush", thinp_io_flush(meta));
	if (overlap)
		pthread_join(th, NULL);
	check("write", thinp_io_write(meta, buf, IO4K, 0, 0));
	check("flush", thinp_io_flush(meta));
}

/* IOPS of RAND_WRITES random 4 KiB writes with a flush every FLUSH_EVERY
 * (for the raw file with meta: commit_floor instead of a flush). */
static double random_flushed(thinp_thin *thin, thinp_io *io, thinp_io *meta, bool overlap,
			     const void *buf, uint64_t seed)
{
	uint64_t x = seed | 1;
	double t0 = bench_now();

	for (unsigned i = 1; i <= RAND_WRITES; i++) {
		uint64_t off;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		off = (x % ((uint64_t)VOL_BLOCKS * BS / IO4K)) * IO4K;
		check("write", thin ? thinp_thin_write(thin, buf, IO4K, off)
				    : thinp_io_write(io, buf, IO4K, off, 0));
		if (i % FLUSH_EVERY == 0 && meta)
			commit_floor(io, meta, buf, overlap);
		else if (i % FLUSH_EVERY == 0)
			check("flush", thin ? thinp_thin_flush(thin) : thinp_io_flush(io));
	}
	return RAND_WRITES / (bench_now() - t0);
}

/* The plain loop and the commit floor's, serial and overlapped, each on a
 * fresh sparse file (the three in turn, the first one rotating), the
 * floor's metadata file written through. */
static void random_floor(const char *dir, void *buf, uint64_t seed, double *raw, double *floor,
			 double *overlapped)
{
	thinp_io *meta = open_written(dir, "bench-dp-floor-meta", META_BYTES);

	for (unsigned k = 0; k < 3; k++) {
		thinp_io *io = bench_open_file(dir, "bench-dp-floor", (uint64_t)VOL_BLOCKS * BS);
		unsigned which = (unsigned)((seed + k) % 3);

		if (which == 0)
			*raw = random_flushed(NULL, io, NULL, false, buf, seed);
		else if (which == 1)
			*floor = random_flushed(NULL, io, meta, false, buf, seed);
		else
			*overlapped = random_flushed(NULL, io, meta, true, buf, seed);
		thinp_io_close(io);
	}
	thinp_io_close(meta);
}

static void bench_random(const char *dir, unsigned rounds, bool provisioned, void *buf)
{
	double raw[rounds], thin[rounds], raw2[rounds], floor[rounds], overlapped[rounds];
	double raw3[rounds], floor2[rounds], overlapped2[rounds];

	for (unsigned i = 0; i < rounds; i++) {
		thinp_io *io = provisioned ? open_written(dir, "bench-dp-raw", (uint64_t)VOL_BLOCKS * BS)
					   : bench_open_file(dir, "bench-dp-raw", (uint64_t)VOL_BLOCKS * BS);
		struct bench b;

		bench_open(&b, dir, VOL_BLOCKS + 64, !provisioned);
		if (provisioned) {
			fill(b.thin, NULL, buf);
			fill(NULL, io, buf);
		}
		for (unsigned k = 0; k < 2; k++) {
			if ((i + k) % 2 == 0)
				raw[i] = random_flushed(NULL, io, NULL, false, buf,
							88172645463325252ull + i);
			else
				thin[i] = random_flushed(b.thin, NULL, NULL, false, buf,
							 88172645463325252ull + i);
		}
		if (!provisioned)
			random_floor(dir, buf, 88172645463325252ull + i, &raw2[i], &floor[i],
				     &overlapped[i]);
		bench_close(&b);
		thinp_io_close(io);
	}
	report(provisioned ? "random 4 KiB writes, flush every 64, provisioned blocks vs allocated "
			     "file"
			   : "random 4 KiB writes, flush every 64, fresh volume vs sparse file",
	       raw, thin, rounds, 0.9);
	if (provisioned)
		return;
	/* report_as sorts what it is given: the pairings are copied first. */
	memcpy(raw3, raw2, sizeof(raw3));
	memcpy(floor2, floor, sizeof(floor2));
	memcpy(overlapped2, overlapped, sizeof(overlapped2));
	report_as("  floor: two-phase commit's syncs vs flush every 64", "floor", raw2, floor, rounds,
		  0.9);
	report_as("  floor, data flush beside the metadata block's write and flush", "floor", raw3,
		  overlapped, rounds, 0.9);
	report_as("  overlapped floor vs serial floor", "overlapped", floor2, overlapped2, rounds,
		  1.0);
}

static void run_mode(const char *dir, unsigned rounds, const char *only, bool direct, void *buf)
{
	bench_set_open_flags(direct ? THINP_IO_DIRECT : 0);
	printf("-- %s\n", direct ? "O_DIRECT: every read and write is a device I/O"
			      : "page cache: writes are copies, syncs reach the device");
	if (strcmp(only, "random"))
		bench_cow(dir, rounds, buf);
	if (strcmp(only, "cow")) {
		bench_random(dir, rounds, false, buf);
		bench_random(dir, rounds, true, buf);
	}
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	unsigned rounds = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 7;
	const char *only = argc > 3 ? argv[3] : "all";
	const char *mode = argc > 4 ? argv[4] : "both";
	void *buf;

	if (!rounds || posix_memalign(&buf, 4096, BS))
		return 1;
	memset(buf, 0x5A, BS);
	printf("bench_datapath: files in %s, data block 64 KiB, %u rounds\n", dir, rounds);
	if (strcmp(mode, "direct"))
		run_mode(dir, rounds, only, false, buf);
	if (strcmp(mode, "cached"))
		run_mode(dir, rounds, only, true, buf);
	free(buf);
	return 0;
}
