/*
 * Block-manager and crc32c micro-benchmarks. Prints rates and ratios; asserts
 * nothing about time. Run: tests/block/bench_bm [scale]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/bm.h"
#include "block/crc32c.h"
#include "os/os.h"
#include "util/endian.h"

#define BS THINP_BLOCK_SIZE
#define SALT 121107u

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void prep(const struct validator *v, void *data, uint64_t b)
{
	store_le64((char *)data + 8, b);
	store_le32(data, block_csum(data, SALT));
}

static int check(const struct validator *v, const void *data, uint64_t b, const char **why)
{
	if (load_le64((const char *)data + 8) != b)
		return -ENOTBLK;
	return load_le32(data) == block_csum(data, SALT) ? 0 : -EILSEQ;
}

static const struct validator node = { "node", prep, check };

static int fill(thinp_io *io, uint64_t nr)
{
	unsigned char *blk = calloc(1, BS);

	if (!blk)
		return -1;
	for (uint64_t b = 0; b < nr; b++) {
		memset(blk, (int)b, BS);
		prep(&node, blk, b);
		if (thinp_io_write(io, blk, BS, b * BS, 0))
			return -1;
	}
	free(blk);
	return 0;
}

static double lock_rate(struct bm *bm, uint64_t nr, uint64_t ops)
{
	double t0 = now();
	struct block *blk;

	for (uint64_t i = 0; i < ops; i++) {
		if (bm_read_lock(bm, (i * 7919) % nr, &node, &blk))
			return -1;
		bm_unlock(blk);
	}
	return ops / (now() - t0);
}

static void bench_bm(unsigned scale)
{
	enum { NR = 4096 };
	thinp_io *io;
	struct bm *bm;
	struct bm_options o = { 0 };
	struct block *blk;
	double hit, miss, wr, t0;

	if (thinp_io_open_memory(&io, NR * BS, 0) || fill(io, NR))
		exit(1);
	/* cached: the whole set fits */
	o.cache_bytes = NR * BS;
	bm_create(&bm, io, &o);
	lock_rate(bm, NR, NR); /* warm */
	hit = lock_rate(bm, NR, 2000000ull * scale);
	bm_destroy(bm);
	/* uncached: a 16-block cache over 4096 blocks, every lock a miss */
	o.cache_bytes = 16 * BS;
	bm_create(&bm, io, &o);
	miss = lock_rate(bm, NR, 200000ull * scale);
	/* write lock + eviction write-back through the small cache */
	t0 = now();
	for (uint64_t i = 0; i < 100000ull * scale; i++) {
		if (bm_write_lock(bm, (i * 7919) % NR, &node, &blk))
			exit(1);
		bm_unlock(blk);
	}
	bm_flush(bm);
	wr = 100000.0 * scale / (now() - t0);
	bm_destroy(bm);
	thinp_io_close(io);
	printf("bm read lock+unlock, cached hit:     %10.0f /s (%.0f ns)\n", hit, 1e9 / hit);
	printf("bm read lock+unlock, miss (memory):  %10.0f /s (%.0f ns)\n", miss, 1e9 / miss);
	printf("bm write lock+unlock, miss+writeback:%10.0f /s (%.0f ns)\n", wr, 1e9 / wr);
	printf("hit/miss ratio: %.1fx\n", hit / miss);
}

static double crc_rate(uint32_t (*f)(uint32_t, const void *, size_t), const void *buf,
		       size_t len, uint64_t iters, uint32_t *sink)
{
	double t0 = now();
	uint32_t c = 0;

	for (uint64_t i = 0; i < iters; i++)
		c ^= f(~0u, buf, len);
	*sink ^= c;
	return (double)len * iters / (now() - t0) / 1e6;
}

static void bench_crc(unsigned scale)
{
	static const size_t lens[] = { 64, 4092, 65536 };
	unsigned char *buf = malloc(65536);
	uint32_t sink = 0;

	if (!buf)
		exit(1);
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (unsigned char)(i * 31);
	printf("crc32c: host acceleration %s\n", thinp_os_crc32c_accel() ? "available" : "NOT available (accel = table)");
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		uint64_t iters = (200000000ull * scale) / lens[k];
		double t = crc_rate(crc32c_raw_table, buf, lens[k], iters / 4, &sink);
		double s = crc_rate(crc32c_raw, buf, lens[k], iters, &sink);

		printf("crc32c %6zu bytes: table %8.0f MB/s, accel %8.0f MB/s, ratio %.1fx\n",
		       lens[k], t, s, s / t);
	}
	{
		double t0 = now();
		uint64_t n = 500000ull * scale;

		for (uint64_t i = 0; i < n; i++)
			sink ^= block_csum(buf, (uint32_t)i);
		printf("block_csum: %.0f ns per 4 KiB block\n", (now() - t0) * 1e9 / n);
	}
	if (sink == 0x12345678)
		printf("(sink)\n");
	free(buf);
}

int main(int argc, char **argv)
{
	unsigned scale = argc > 1 ? (unsigned)atoi(argv[1]) : 1;

	if (!scale)
		scale = 1;
	bench_crc(scale);
	bench_bm(scale);
	return 0;
}
