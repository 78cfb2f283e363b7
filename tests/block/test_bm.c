/*
 * The block manager: lock semantics, validation, eviction and write-back
 * against a model, read-only and range refusals, I/O error propagation with a
 * failing backend defined here, and concurrent readers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include <libthinp/testing.h>
#include "block/bm.h"
#include "util/endian.h"

#define BS THINP_BLOCK_SIZE

/* ------------------------------------------------------------------ */
/* A test block type: csum at 0, blocknr at 8, like every dm-thin block. */

struct test_validator {
	struct validator v;
	uint32_t salt;
	unsigned checks, prepares;
};

static void tv_prepare(const struct validator *v, void *data, uint64_t b)
{
	struct test_validator *tv = (struct test_validator *)v;

	__atomic_add_fetch(&tv->prepares, 1, __ATOMIC_RELAXED);
	store_le64((char *)data + 8, b);
	store_le32(data, block_csum(data, tv->salt));
}

static int tv_check(const struct validator *v, const void *data, uint64_t b, const char **why)
{
	struct test_validator *tv = (struct test_validator *)v;

	__atomic_add_fetch(&tv->checks, 1, __ATOMIC_RELAXED);
	if (load_le64((const char *)data + 8) != b) {
		*why = "blocknr mismatch";
		return -ENOTBLK;
	}
	if (load_le32(data) != block_csum(data, tv->salt)) {
		*why = "bad checksum";
		return -EILSEQ;
	}
	return 0;
}

#define TEST_VALIDATOR(nm, s) { { nm, tv_prepare, tv_check }, s, 0, 0 }

/* Fill a block as the validator would, with a pattern derived from `tag`. */
static void make_block(void *data, uint64_t b, uint32_t salt, uint64_t tag)
{
	unsigned char *p = data;

	for (size_t i = 16; i < BS; i++)
		p[i] = (unsigned char)((tag * 131 + i * 7) >> 3);
	store_le32(p + 4, 0);
	store_le64(p + 8, b);
	store_le32(p, block_csum(p, salt));
}

/* ------------------------------------------------------------------ */
/* A RAM backend whose reads and writes can be made to fail. */

struct fail_dev {
	unsigned char *mem;
	uint64_t size;
	int64_t fail_read_block;     /* -1: none */
	int fail_writes;             /* nonzero: every write fails with -EIO */
	int fail_flush;
	uint64_t write_log[4096];    /* block numbers, in write order */
	/* A read of gate_block waits until gate_open, announcing in_gate. */
	int64_t gate_block;          /* -1: none */
	int gate_open, in_gate;
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	size_t nr_writes;
	unsigned flushes;
	unsigned nr_reads;           /* read requests, failed ones included */
};

static int fd_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct fail_dev *d = ctx;
	/* decided on entry, so a test can clear it while this read waits */
	int fail = d->fail_read_block >= 0 && off / BS == (uint64_t)d->fail_read_block;

	__atomic_add_fetch(&d->nr_reads, 1, __ATOMIC_RELAXED);

	if (d->gate_block >= 0 && off / BS == (uint64_t)d->gate_block) {
		pthread_mutex_lock(&d->gate_lock);
		d->in_gate = 1;
		pthread_cond_broadcast(&d->gate_cond);
		while (!d->gate_open)
			pthread_cond_wait(&d->gate_cond, &d->gate_lock);
		pthread_mutex_unlock(&d->gate_lock);
	}
	if (fail)
		return -EIO;
	memcpy(buf, d->mem + off, len);
	return 0;
}

static int fd_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct fail_dev *d = ctx;

	if (d->fail_writes)
		return -EIO;
	if (d->nr_writes < THINP_ARRAY_SIZE(d->write_log))
		d->write_log[d->nr_writes++] = off / BS;
	memcpy(d->mem + off, buf, len);
	return 0;
}

static int fd_flush(void *ctx)
{
	struct fail_dev *d = ctx;

	if (d->fail_flush)
		return -EIO;
	d->flushes++;
	return 0;
}

static int fd_size(void *ctx, uint64_t *bytes)
{
	*bytes = ((struct fail_dev *)ctx)->size;
	return 0;
}

static struct fail_dev *fail_dev_open(thinp_io **io, uint64_t nr_blocks, uint32_t flags)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct fail_dev *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->size = nr_blocks * BS;
	d->mem = calloc(1, d->size);
	assert_non_null(d->mem);
	d->fail_read_block = -1;
	d->gate_block = -1;
	pthread_mutex_init(&d->gate_lock, NULL);
	pthread_cond_init(&d->gate_cond, NULL);
	ops.read = fd_read;
	ops.write = fd_write;
	ops.flush = fd_flush;
	ops.size = fd_size;
	assert_int_equal(thinp_io_new(io, &ops, d, flags), 0);
	return d;
}

static void fail_dev_free(thinp_io *io, struct fail_dev *d)
{
	thinp_io_close(io);
	free(d->mem);
	free(d);
}

/* ------------------------------------------------------------------ */
/* A log callback that keeps the last error message. */

struct captured_log {
	char last[512];
	unsigned errors;
};

static void capture(int level, const char *msg, void *ctx)
{
	struct captured_log *c = ctx;

	if (level == THINP_LOG_ERROR)
		c->errors++;
	snprintf(c->last, sizeof(c->last), "%s", msg);
}

static struct bm *open_bm(thinp_io *io, size_t cache_bytes, const struct tlog *log)
{
	struct bm_options o = { .cache_bytes = cache_bytes, .log = log };
	struct bm *bm;

	assert_int_equal(bm_create(&bm, io, &o), 0);
	return bm;
}

/* ------------------------------------------------------------------ */

static void test_lock_semantics(void **state)
{
	thinp_io *io;
	struct bm *bm;
	struct block *a, *b, *c;

	assert_int_equal(thinp_io_open_memory(&io, 8 * BS, 0), 0);
	bm = open_bm(io, 0, NULL);
	assert_int_equal(bm_nr_blocks(bm), 8);
	assert_false(bm_is_read_only(bm));

	/* read + read */
	assert_int_equal(bm_read_lock(bm, 1, NULL, &a), 0);
	assert_int_equal(bm_read_lock(bm, 1, NULL, &b), 0);
	assert_ptr_equal(block_data(a), block_data(b));
	assert_int_equal(block_location(a), 1);
	assert_true(((uintptr_t)block_data(a) & (BS - 1)) == 0);
	/* read then write */
	assert_int_equal(bm_write_lock(bm, 1, NULL, &c), -EBUSY);
	assert_null(c);
	assert_int_equal(bm_write_lock_zero(bm, 1, NULL, &c), -EBUSY);
	bm_unlock(a);
	assert_int_equal(bm_write_lock(bm, 1, NULL, &c), -EBUSY); /* b still held */
	bm_unlock(b);
	/* write then anything */
	assert_int_equal(bm_write_lock(bm, 1, NULL, &a), 0);
	assert_int_equal(bm_write_lock(bm, 1, NULL, &b), -EBUSY);
	assert_int_equal(bm_read_lock(bm, 1, NULL, &b), -EBUSY);
	assert_int_equal(bm_write_lock_zero(bm, 1, NULL, &b), -EBUSY);
	/* other blocks are independent */
	assert_int_equal(bm_write_lock(bm, 2, NULL, &b), 0);
	bm_unlock(b);
	bm_unlock(a);
	assert_int_equal(bm_read_lock(bm, 1, NULL, &a), 0);
	bm_unlock(a);
	/* invalidate refuses while anything is locked */
	assert_int_equal(bm_read_lock(bm, 3, NULL, &a), 0);
	assert_int_equal(bm_invalidate(bm), -EBUSY);
	bm_unlock(a);
	assert_int_equal(bm_flush(bm), 0);
	assert_int_equal(bm_invalidate(bm), 0);
	bm_destroy(bm);
	thinp_io_close(io);
}

static void test_write_lock_zero_and_stats(void **state)
{
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 8, 0);
	struct bm *bm = open_bm(io, 0, NULL);
	struct bm_stats st;
	struct block *a;

	memset(d->mem + 3 * BS, 0xAB, BS);
	assert_int_equal(bm_write_lock_zero(bm, 3, NULL, &a), 0);
	for (size_t i = 0; i < BS; i++)
		assert_int_equal(((unsigned char *)block_data(a))[i], 0);
	bm_unlock(a);
	bm_get_stats(bm, &st);
	assert_int_equal(st.reads, 0); /* zeroed, not read */
	assert_int_equal(st.misses, 1);
	assert_int_equal(bm_read_lock(bm, 3, NULL, &a), 0);
	bm_unlock(a);
	assert_int_equal(bm_read_lock(bm, 4, NULL, &a), 0);
	bm_unlock(a);
	bm_get_stats(bm, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.reads, 1);
	assert_int_equal(st.resident_bytes, 2 * BS);
	assert_int_equal(bm_flush(bm), 0);
	bm_get_stats(bm, &st);
	assert_int_equal(st.writes, 1);
	assert_int_equal(d->mem[3 * BS + 100], 0);
	bm_destroy(bm);
	fail_dev_free(io, d);
}

static void test_validator_calls(void **state)
{
	struct test_validator va = TEST_VALIDATOR("type-a", 1111);
	struct test_validator va2 = TEST_VALIDATOR("type-a-again", 1111);
	struct test_validator vb = TEST_VALIDATOR("type-b", 2222);
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 16, 0);
	struct bm *bm = open_bm(io, 0, NULL);
	struct block *a;
	unsigned prepares;

	make_block(d->mem + 5 * BS, 5, 1111, 5);
	assert_int_equal(bm_read_lock(bm, 5, &va.v, &a), 0);
	assert_int_equal(va.checks, 1);
	bm_unlock(a);
	/* cached, same validator: no second check */
	assert_int_equal(bm_read_lock(bm, 5, &va.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(va.checks, 1);
	/* cached, another validator: checked again, and refused if wrong */
	assert_int_equal(bm_read_lock(bm, 5, &vb.v, &a), -EILSEQ);
	assert_int_equal(vb.checks, 1);
	assert_int_equal(bm_read_lock(bm, 5, &va2.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(va2.checks, 1);
	/* NULL validator: no check at all */
	assert_int_equal(bm_read_lock(bm, 5, NULL, &a), 0);
	bm_unlock(a);

	/* write-back runs prepare_for_write exactly once per dirty block */
	assert_int_equal(bm_write_lock(bm, 5, &va.v, &a), 0);
	memset((char *)block_data(a) + 100, 0x5A, 50);
	bm_unlock(a);
	assert_int_equal(bm_write_lock_zero(bm, 7, &va.v, &a), 0);
	bm_unlock(a);
	/* a dirty block is checked as it will be written */
	assert_int_equal(bm_read_lock(bm, 7, &va2.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(bm_read_lock(bm, 7, &vb.v, &a), -EILSEQ);
	assert_int_equal(d->nr_writes, 0);
	prepares = va.prepares + va2.prepares;
	assert_int_equal(bm_flush(bm), 0);
	/* block 7 was last locked with va2: stamped by it, same salt */
	assert_int_equal(va.prepares + va2.prepares - prepares, 2);
	prepares = va.prepares + va2.prepares;
	assert_int_equal(load_le32(d->mem + 5 * BS), block_csum(d->mem + 5 * BS, 1111));
	assert_int_equal(load_le64(d->mem + 7 * BS + 8), 7);
	assert_int_equal(load_le32(d->mem + 7 * BS), block_csum(d->mem + 7 * BS, 1111));
	assert_int_equal(d->mem[5 * BS + 120], 0x5A);
	/* a clean block is not written again */
	assert_int_equal(bm_flush(bm), 0);
	assert_int_equal(va.prepares + va2.prepares, prepares);
	assert_int_equal(d->nr_writes, 2);
	assert_int_equal(d->flushes, 2);
	/* after invalidate, the next lock reads and checks again */
	assert_int_equal(bm_invalidate(bm), 0);
	va.checks = 0;
	assert_int_equal(bm_read_lock(bm, 7, &va.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(va.checks, 1);
	bm_destroy(bm);
	fail_dev_free(io, d);
}

static void test_corrupt_blocks_rejected(void **state)
{
	struct test_validator va = TEST_VALIDATOR("test-node", 1111);
	struct captured_log cap = { "", 0 };
	struct tlog log = { capture, &cap };
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 16, 0);
	struct bm *bm = open_bm(io, 0, &log);
	struct bm_stats st;
	struct block *a;

	assert_ptr_equal(bm_log(bm), &log);
	make_block(d->mem + 5 * BS, 5, 1111, 1);
	d->mem[5 * BS + 2000] ^= 1; /* one bit flipped */
	assert_int_equal(bm_read_lock(bm, 5, &va.v, &a), -EILSEQ);
	assert_null(a);
	assert_int_equal(cap.errors, 1);
	assert_non_null(strstr(cap.last, "block 5"));
	assert_non_null(strstr(cap.last, "test-node"));
	assert_non_null(strstr(cap.last, "bad checksum"));
	/* nothing cached: a second attempt reads and fails again */
	assert_int_equal(bm_write_lock(bm, 5, &va.v, &a), -EILSEQ);
	bm_get_stats(bm, &st);
	assert_int_equal(st.reads, 2);
	assert_int_equal(st.resident_bytes, 0);

	/* a valid block 9 copied to 6 records the wrong location */
	make_block(d->mem + 9 * BS, 9, 1111, 2);
	memcpy(d->mem + 6 * BS, d->mem + 9 * BS, BS);
	assert_int_equal(bm_read_lock(bm, 6, &va.v, &a), -ENOTBLK);
	assert_non_null(strstr(cap.last, "block 6"));
	assert_int_equal(bm_read_lock(bm, 9, &va.v, &a), 0);
	bm_unlock(a);
	/* an all-zero block fails too */
	assert_int_equal(bm_read_lock(bm, 10, &va.v, &a) < 0, 1);
	/* the raw block can still be read without a validator */
	assert_int_equal(bm_read_lock(bm, 5, NULL, &a), 0);
	bm_unlock(a);
	/* and once cached raw, locking with the validator still checks it */
	assert_int_equal(bm_read_lock(bm, 5, &va.v, &a), -EILSEQ);
	bm_destroy(bm);
	fail_dev_free(io, d);
}

static void test_read_only_and_range(void **state)
{
	thinp_io *io;
	struct bm *bm;
	struct block *a;

	assert_int_equal(thinp_io_open_memory(&io, 16 * BS + 100, THINP_IO_RDONLY), 0);
	bm = open_bm(io, 0, NULL);
	assert_true(bm_is_read_only(bm));
	assert_int_equal(bm_nr_blocks(bm), 16); /* partial block not counted */
	assert_int_equal(bm_write_lock(bm, 0, NULL, &a), -EROFS);
	assert_null(a);
	assert_int_equal(bm_write_lock_zero(bm, 0, NULL, &a), -EROFS);
	assert_int_equal(bm_read_lock(bm, 15, NULL, &a), 0);
	bm_unlock(a);
	assert_int_equal(bm_read_lock(bm, 16, NULL, &a), -EINVAL);
	assert_int_equal(bm_read_lock(bm, UINT64_MAX, NULL, &a), -EINVAL);
	assert_int_equal(bm_read_lock(bm, 1ull << 60, NULL, &a), -EINVAL);
	assert_int_equal(bm_flush(bm), 0);
	bm_destroy(bm);
	thinp_io_close(io);

	assert_int_equal(thinp_io_open_memory(&io, 4 * BS, 0), 0);
	bm = open_bm(io, 0, NULL);
	assert_int_equal(bm_write_lock_zero(bm, 4, NULL, &a), -EINVAL);
	assert_int_equal(bm_write_lock(bm, 4, NULL, &a), -EINVAL);
	bm_destroy(bm);
	thinp_io_close(io);
}

static void test_grown_device_is_noticed(void **state)
{
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 8, 0);
	struct bm *bm = open_bm(io, 0, NULL);
	struct block *a;

	assert_int_equal(bm_read_lock(bm, 8, NULL, &a), -EINVAL);
	d->mem = realloc(d->mem, 16 * BS);
	assert_non_null(d->mem);
	d->size = 16 * BS;
	assert_int_equal(bm_read_lock(bm, 8, NULL, &a), 0);
	bm_unlock(a);
	assert_int_equal(bm_nr_blocks(bm), 16);
	bm_destroy(bm);
	fail_dev_free(io, d);
}

static void test_io_errors(void **state)
{
	struct test_validator va = TEST_VALIDATOR("test-node", 1111);
	struct captured_log cap = { "", 0 };
	struct tlog log = { capture, &cap };
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 16, 0);
	struct bm *bm = open_bm(io, 2 * BS, &log);
	struct bm_stats st;
	struct block *a;

	/* a failed read caches nothing and names the block */
	make_block(d->mem + 3 * BS, 3, 1111, 3);
	d->fail_read_block = 3;
	assert_int_equal(bm_read_lock(bm, 3, &va.v, &a), -EIO);
	assert_null(a);
	assert_non_null(strstr(cap.last, "block 3"));
	bm_get_stats(bm, &st);
	assert_int_equal(st.resident_bytes, 0);
	d->fail_read_block = -1;
	assert_int_equal(bm_read_lock(bm, 3, &va.v, &a), 0);
	bm_unlock(a);

	/* a failed write-back at flush keeps the block dirty */
	assert_int_equal(bm_write_lock(bm, 3, &va.v, &a), 0);
	memset((char *)block_data(a) + 16, 0x77, 16);
	bm_unlock(a);
	d->fail_writes = 1;
	assert_int_equal(bm_flush(bm), -EIO);
	assert_int_equal(d->flushes, 0);
	d->fail_writes = 0;
	assert_int_equal(bm_flush(bm), 0);
	assert_int_equal(d->mem[3 * BS + 20], 0x77);
	assert_int_equal(d->flushes, 1);

	/* a failed write-back at eviction keeps the block dirty and resident */
	assert_int_equal(bm_write_lock(bm, 3, &va.v, &a), 0);
	memset((char *)block_data(a) + 16, 0x66, 16);
	bm_unlock(a);
	d->fail_writes = 1;
	for (uint64_t b = 4; b < 8; b++) {
		assert_int_equal(bm_read_lock(bm, b, NULL, &a), 0);
		bm_unlock(a);
	}
	assert_int_equal(d->mem[3 * BS + 20], 0x77);
	d->fail_writes = 0;
	assert_int_equal(bm_flush(bm), 0);
	assert_int_equal(d->mem[3 * BS + 20], 0x66);
	assert_int_equal(load_le32(d->mem + 3 * BS), block_csum(d->mem + 3 * BS, 1111));

	/* a failed device flush is reported */
	d->fail_flush = 1;
	assert_int_equal(bm_flush(bm), -EIO);
	d->fail_flush = 0;
	bm_destroy(bm);
	fail_dev_free(io, d);
}

static void test_flush_busy_and_ordered(void **state)
{
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 64, 0);
	struct bm *bm = open_bm(io, 0, NULL);
	static const uint64_t order[] = { 40, 3, 17, 60, 0, 33, 8, 9 };
	struct block *a;

	for (size_t i = 0; i < THINP_ARRAY_SIZE(order); i++) {
		assert_int_equal(bm_write_lock(bm, order[i], NULL, &a), 0);
		bm_unlock(a);
	}
	assert_int_equal(bm_write_lock(bm, 50, NULL, &a), 0);
	assert_int_equal(bm_flush(bm), -EBUSY);
	assert_int_equal(d->nr_writes, 0);
	bm_unlock(a);
	assert_int_equal(bm_flush(bm), 0);
	/* nine blocks, 8 and 9 coalesced into one write */
	assert_int_equal(d->nr_writes, THINP_ARRAY_SIZE(order));
	for (size_t i = 1; i < d->nr_writes; i++)
		assert_true(d->write_log[i - 1] < d->write_log[i]);
	/* invalidate drops unwritten changes */
	assert_int_equal(bm_write_lock(bm, 1, NULL, &a), 0);
	memset(block_data(a), 0xEE, BS);
	bm_unlock(a);
	assert_int_equal(bm_invalidate(bm), 0);
	assert_int_equal(bm_read_lock(bm, 1, NULL, &a), 0);
	assert_int_equal(((unsigned char *)block_data(a))[10], 0);
	bm_unlock(a);
	bm_destroy(bm);
	fail_dev_free(io, d);
}

/* Dirty the blocks [begin, end) with contents derived from their numbers. */
static void dirty_blocks(struct bm *bm, struct test_validator *tv, uint64_t begin, uint64_t end)
{
	struct block *a;

	for (uint64_t b = begin; b < end; b++) {
		assert_int_equal(bm_write_lock_zero(bm, b, &tv->v, &a), 0);
		memset((char *)block_data(a) + 16, (int)(b * 7 + 1), BS - 16);
		bm_unlock(a);
	}
}

static uint64_t fault_writes(thinp_io_fault *f)
{
	uint64_t ops;

	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_WRITE, &ops, NULL), 0);
	return ops;
}

/*
 * A flush writes each run of consecutive dirty blocks as one write, at most
 * 256 blocks long, every block stamped by its validator; a write failing
 * under one block of a run leaves that block alone dirty.
 */
static void test_flush_coalesces_runs(void **state)
{
	struct test_validator tv = TEST_VALIDATOR("run", 77);
	thinp_io *lower, *io;
	thinp_io_fault *f;
	struct block *a;
	struct bm *bm;

	assert_int_equal(thinp_io_open_memory(&lower, 1024 * BS, 0), 0);
	assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
	bm = open_bm(io, 4096 * BS, NULL);
	dirty_blocks(bm, &tv, 10, 310); /* 256 + 44 */
	dirty_blocks(bm, &tv, 400, 401);
	dirty_blocks(bm, &tv, 402, 404);
	thinp_io_fault_reset_counters(f);
	assert_int_equal(bm_flush(bm), 0);
	assert_int_equal(fault_writes(f), 4);
	bm_destroy(bm);

	/* Read back through a fresh bm: every block checks and has its data. */
	bm = open_bm(io, 0, NULL);
	for (uint64_t b = 10; b < 404; b++) {
		if (b >= 310 && b != 400 && b != 402 && b != 403)
			continue;
		assert_int_equal(bm_read_lock(bm, b, &tv.v, &a), 0);
		assert_int_equal(((unsigned char *)block_data(a))[100], (unsigned char)(b * 7 + 1));
		bm_unlock(a);
	}
	bm_destroy(bm);

	bm = open_bm(io, 4096 * BS, NULL);
	dirty_blocks(bm, &tv, 500, 520);
	assert_int_equal(thinp_io_fault_fail_range(f, THINP_IO_KIND_BIT(THINP_IO_KIND_WRITE),
						   507 * BS, BS, -EIO), 0);
	thinp_io_fault_reset_counters(f);
	assert_int_equal(bm_flush(bm), -EIO);
	assert_int_equal(fault_writes(f), 1 + 20); /* the run, then each block */
	thinp_io_fault_clear(f);
	thinp_io_fault_reset_counters(f);
	assert_int_equal(bm_flush(bm), 0);
	assert_int_equal(fault_writes(f), 1); /* block 507 alone was still dirty */
	bm_destroy(bm);
	thinp_io_close(io);
	thinp_io_fault_free(f);
	thinp_io_close(lower);
}

/*
 * Random writes through a small cache over many more blocks, with up to
 * three locks held at a time; reads are checked against a model, the cache
 * size against its limit, and after a flush the device against the model.
 */
static void test_random_model(void **state)
{
	enum { NR = 600, CACHE = 24, HOLD = 3 };
	struct test_validator va = TEST_VALIDATOR("model", 4242);
	struct test_rng rng;
	uint64_t model[NR] = { 0 }; /* the tag of each block's pattern, 0 = never written */
	unsigned char *want = malloc(BS);
	struct block *held[HOLD] = { NULL };
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, NR, 0);
	struct bm *bm = open_bm(io, CACHE * BS, NULL);
	struct bm_stats st;
	unsigned iters = 20000 * test_scale();

	assert_non_null(want);
	test_rng_init(&rng, test_seed("bm random model"));
	for (uint64_t b = 0; b < NR; b++)
		make_block(d->mem + b * BS, b, 4242, 0);
	for (unsigned i = 0; i < iters; i++) {
		unsigned slot = (unsigned)test_rng_below(&rng, HOLD);
		/* half the operations on a hot set that fits the cache */
		uint64_t b = test_rng_below(&rng, test_rng_below(&rng, 2) ? CACHE - HOLD : NR);
		unsigned op = (unsigned)test_rng_below(&rng, 10);
		struct block *a;
		int r;

		if (held[slot]) {
			bm_unlock(held[slot]);
			held[slot] = NULL;
		}
		if (op < 4) {
			r = bm_write_lock(bm, b, &va.v, &a);
			if (r == -EBUSY)
				continue; /* held in another slot */
			assert_int_equal(r, 0);
			model[b] = i + 1;
			make_block(want, b, 4242, model[b]);
			memcpy((char *)block_data(a) + 16, want + 16, BS - 16);
		} else if (op < 5) {
			r = bm_write_lock_zero(bm, b, &va.v, &a);
			if (r == -EBUSY)
				continue;
			assert_int_equal(r, 0);
			model[b] = i + 1;
			make_block(want, b, 4242, model[b]);
			memcpy((char *)block_data(a) + 16, want + 16, BS - 16);
		} else {
			r = bm_read_lock(bm, b, &va.v, &a);
			if (r == -EBUSY)
				continue;
			assert_int_equal(r, 0);
			make_block(want, b, 4242, model[b]);
			assert_memory_equal((char *)block_data(a) + 16, want + 16, BS - 16);
		}
		held[slot] = a;
		if (op == 9) {
			for (unsigned s = 0; s < HOLD; s++)
				if (held[s]) {
					bm_unlock(held[s]);
					held[s] = NULL;
				}
			assert_int_equal(bm_flush(bm), 0);
		}
	}
	for (unsigned s = 0; s < HOLD; s++)
		if (held[s])
			bm_unlock(held[s]);
	bm_get_stats(bm, &st);
	fprintf(stderr, "model: reads %llu writes %llu hits %llu misses %llu evictions %llu peak %zu\n",
		(unsigned long long)st.reads, (unsigned long long)st.writes,
		(unsigned long long)st.hits, (unsigned long long)st.misses,
		(unsigned long long)st.evictions, st.peak_resident_bytes);
	assert_true(st.peak_resident_bytes <= (CACHE + HOLD) * BS);
	assert_true(st.evictions > 0);
	assert_int_equal(bm_flush(bm), 0);
	for (uint64_t b = 0; b < NR; b++) {
		make_block(want, b, 4242, model[b]);
		assert_memory_equal(d->mem + b * BS, want, BS);
	}
	bm_destroy(bm);
	fail_dev_free(io, d);
	free(want);
}

/* A cache full of locked blocks grows instead of failing. */
static void test_all_locked_exceeds_limit(void **state)
{
	thinp_io *io;
	struct bm *bm;
	struct block *held[10];
	struct bm_stats st;

	assert_int_equal(thinp_io_open_memory(&io, 32 * BS, 0), 0);
	bm = open_bm(io, 4 * BS, NULL);
	for (int i = 0; i < 10; i++)
		assert_int_equal(bm_read_lock(bm, (uint64_t)i, NULL, &held[i]), 0);
	bm_get_stats(bm, &st);
	assert_int_equal(st.resident_bytes, 10 * BS);
	for (int i = 0; i < 10; i++)
		bm_unlock(held[i]);
	/* the next miss trims back to the limit */
	assert_int_equal(bm_read_lock(bm, 20, NULL, &held[0]), 0);
	bm_unlock(held[0]);
	bm_get_stats(bm, &st);
	assert_int_equal(st.resident_bytes, 4 * BS);
	assert_int_equal(st.peak_resident_bytes, 10 * BS);
	bm_destroy(bm);
	thinp_io_close(io);
}

/* ------------------------------------------------------------------ */

struct reader_arg {
	struct bm *bm;
	struct test_validator *v;
	uint64_t seed;
	uint64_t nr;
	int failures;
};

static void *reader(void *p)
{
	struct reader_arg *ra = p;
	struct test_rng rng;
	unsigned char *want = malloc(BS);

	test_rng_init(&rng, ra->seed);
	for (int i = 0; i < 4000 && want; i++) {
		uint64_t b = test_rng_below(&rng, ra->nr);
		struct block *a, *c;

		if (bm_read_lock(ra->bm, b, &ra->v->v, &a)) {
			ra->failures++;
			continue;
		}
		make_block(want, b, ra->v->salt, b);
		if (memcmp(block_data(a), want, BS))
			ra->failures++;
		/* a second lock on the same block while holding the first */
		if (i % 7 == 0) {
			if (bm_read_lock(ra->bm, b, &ra->v->v, &c) || c != a)
				ra->failures++;
			else
				bm_unlock(c);
		}
		bm_unlock(a);
	}
	free(want);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	enum { THREADS = 4, NR = 128 };
	struct test_validator va = TEST_VALIDATOR("shared", 777);
	struct reader_arg args[THREADS];
	pthread_t th[THREADS];
	thinp_io *io;
	struct bm *bm;
	unsigned char *blk = malloc(BS);
	uint64_t seed = test_seed("bm concurrent readers");
	struct bm_stats st;

	assert_non_null(blk);
	assert_int_equal(thinp_io_open_memory(&io, NR * BS, 0), 0);
	for (uint64_t b = 0; b < NR; b++) {
		make_block(blk, b, 777, b);
		assert_int_equal(thinp_io_write(io, blk, BS, b * BS, 0), 0);
	}
	bm = open_bm(io, 32 * BS, NULL); /* smaller than the set: evictions race with hits */
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct reader_arg){ bm, &va, seed + (uint64_t)t, NR, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, reader, &args[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(args[t].failures, 0);
	}
	bm_get_stats(bm, &st);
	assert_true(st.peak_resident_bytes <= (32 + THREADS) * BS);
	assert_int_equal(bm_invalidate(bm), 0); /* every lock was released */
	bm_destroy(bm);
	thinp_io_close(io);
	free(blk);
}

struct locker_arg {
	struct bm *bm;
	uint64_t b;
	int r;
	struct block *blk;
};

static void *locker(void *p)
{
	struct locker_arg *la = p;

	la->r = bm_read_lock(la->bm, la->b, NULL, &la->blk);
	return NULL;
}

static void wait_in_gate(struct fail_dev *d)
{
	pthread_mutex_lock(&d->gate_lock);
	while (!d->in_gate)
		pthread_cond_wait(&d->gate_cond, &d->gate_lock);
	pthread_mutex_unlock(&d->gate_lock);
}

static void open_gate(struct fail_dev *d)
{
	pthread_mutex_lock(&d->gate_lock);
	d->gate_open = 1;
	pthread_cond_broadcast(&d->gate_cond);
	pthread_mutex_unlock(&d->gate_lock);
}

/*
 * Two threads miss the same block: one reads it, the other waits and shares
 * the result; cached blocks stay available meanwhile. If the read fails, the
 * waiter reads the block itself.
 */
static void test_concurrent_miss_same_block(void **state)
{
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 16, 0);
	struct bm *bm = open_bm(io, 0, NULL);
	struct locker_arg a1, a2;
	pthread_t t1, t2;
	struct block *c;
	struct bm_stats st;

	for (int fail = 0; fail < 2; fail++) {
		bm_destroy(bm);
		bm = open_bm(io, 0, NULL);
		assert_int_equal(bm_read_lock(bm, 2, NULL, &c), 0);
		bm_unlock(c);
		d->mem[5 * BS + 9] = 42;
		d->gate_block = 5;
		d->gate_open = d->in_gate = 0;
		d->fail_read_block = fail ? 5 : -1;
		a1 = (struct locker_arg){ bm, 5, 1, NULL };
		a2 = (struct locker_arg){ bm, 5, 1, NULL };
		assert_int_equal(pthread_create(&t1, NULL, locker, &a1), 0);
		wait_in_gate(d);
		assert_int_equal(pthread_create(&t2, NULL, locker, &a2), 0);
		/* the mutex is not held across the read: a hit goes through */
		assert_int_equal(bm_read_lock(bm, 2, NULL, &c), 0);
		bm_unlock(c);
		usleep(20000); /* let t2 reach the wait (the outcome is the same if not) */
		d->fail_read_block = -1; /* only the first read fails */
		open_gate(d);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		bm_get_stats(bm, &st);
		if (fail) {
			assert_int_equal(a1.r, -EIO);
			assert_int_equal(a2.r, 0);
		} else {
			assert_int_equal(a1.r, 0);
			assert_int_equal(a2.r, 0);
			assert_ptr_equal(a1.blk, a2.blk);
			bm_unlock(a1.blk);
		}
		assert_int_equal(((unsigned char *)block_data(a2.blk))[9], 42);
		bm_unlock(a2.blk);
		assert_int_equal(st.reads, fail ? 3 : 2); /* block 2, and 5 once per attempt */
	}
	d->gate_block = -1;
	bm_destroy(bm);
	fail_dev_free(io, d);
}

/* Which generation a block on the device holds: 1, 2, or -1 for neither. */
static int generation(struct bm *bm, const struct validator *v, uint64_t b,
		      unsigned char *want, int *err)
{
	struct block *a;
	int gen = -1;

	*err = bm_read_lock(bm, b, v, &a);
	if (*err)
		return -1;
	for (int g = 1; g <= 2 && gen < 0; g++) {
		make_block(want, b, 4242, (uint64_t)g * 1000 + b);
		if (!memcmp(block_data(a), want, BS))
			gen = g;
	}
	bm_unlock(a);
	return gen;
}

static void write_gen(struct bm *bm, const struct validator *v, uint64_t b, int g,
		      unsigned char *want)
{
	struct block *a;

	make_block(want, b, 4242, (uint64_t)g * 1000 + b);
	/* generation 1 overwrites a blank device, which would not validate */
	if (g == 1)
		assert_int_equal(bm_write_lock_zero(bm, b, v, &a), 0);
	else
		assert_int_equal(bm_write_lock(bm, b, v, &a), 0);
	memcpy((char *)block_data(a) + 16, want + 16, BS - 16);
	bm_unlock(a);
}

/*
 * With the fault backend: what bm_flush made durable survives a power cut,
 * whatever happens to the writes issued after it (dropped, kept, random, one
 * torn); a torn block is reported as corrupt, never trusted.
 */
static void test_power_cut_keeps_flushed_state(void **state)
{
	enum { NR = 64 };
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				     THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };
	struct test_validator va = TEST_VALIDATOR("cut", 4242);
	uint64_t seed = test_seed("bm power cut");
	unsigned char *want = malloc(BS);
	unsigned total_torn = 0, total_second = 0;

	assert_non_null(want);
	for (unsigned round = 0; round < 4 * 8; round++) {
		int mode = modes[round % 4];
		struct test_rng rng;
		bool second[NR] = { false };
		unsigned torn = 0;
		thinp_io *lower, *io;
		thinp_io_fault *f;
		struct bm *bm;

		test_rng_init(&rng, seed + round);
		assert_int_equal(thinp_io_open_memory(&lower, NR * BS, 0), 0);
		assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
		bm = open_bm(io, 8 * BS, NULL); /* small: evictions write early */
		for (uint64_t b = 0; b < NR; b++)
			write_gen(bm, &va.v, b, 1, want);
		assert_int_equal(bm_flush(bm), 0);
		for (int i = 0; i < NR / 2; i++) {
			uint64_t b = test_rng_below(&rng, NR);

			write_gen(bm, &va.v, b, 2, want);
			second[b] = true;
		}
		assert_int_equal(thinp_io_fault_cut(f, mode, seed + round), 0);
		assert_true(bm_flush(bm) < 0); /* the device is gone */
		bm_destroy(bm);
		thinp_io_close(io);
		thinp_io_fault_free(f);

		bm = open_bm(lower, 0, NULL); /* reboot */
		for (uint64_t b = 0; b < NR; b++) {
			int err, g = generation(bm, &va.v, b, want, &err);

			if (!second[b] || mode == THINP_IO_FAULT_CUT_DROP) {
				assert_int_equal(err, 0);
				assert_int_equal(g, 1);
			} else if (err) {
				assert_int_equal(mode, THINP_IO_FAULT_CUT_TORN);
				assert_int_equal(err, -EILSEQ);
				torn++;
			} else {
				assert_true(g == 1 || g == 2);
				total_second += g == 2;
			}
		}
		assert_true(torn <= 1);
		total_torn += torn;
		bm_destroy(bm);
		thinp_io_close(lower);
	}
	fprintf(stderr, "power cut: %u blocks of the unflushed generation survived, %u torn "
		"blocks rejected\n", total_second, total_torn);
	free(want);
}

/* A bad sector under one block: -EIO for it every time, others unaffected. */
static void test_fault_backend_bad_sector(void **state)
{
	thinp_io *lower, *io;
	thinp_io_fault *f;
	struct bm *bm;
	struct block *a;
	struct bm_stats st;

	assert_int_equal(thinp_io_open_memory(&lower, 16 * BS, 0), 0);
	assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
	assert_int_equal(thinp_io_fault_fail_range(f, THINP_IO_KIND_BIT(THINP_IO_KIND_READ),
						   7 * BS + 512, 512, -EIO), 0);
	bm = open_bm(io, 0, NULL);
	for (int i = 0; i < 2; i++)
		assert_int_equal(bm_read_lock(bm, 7, NULL, &a), -EIO);
	assert_int_equal(bm_read_lock(bm, 6, NULL, &a), 0);
	bm_unlock(a);
	assert_int_equal(bm_read_lock(bm, 8, NULL, &a), 0);
	bm_unlock(a);
	bm_get_stats(bm, &st);
	assert_int_equal(st.resident_bytes, 2 * BS);
	/* writing the block whole does not need the bad read */
	assert_int_equal(bm_write_lock_zero(bm, 7, NULL, &a), 0);
	bm_unlock(a);
	assert_int_equal(bm_flush(bm), 0);
	thinp_io_fault_clear(f);
	bm_destroy(bm);
	thinp_io_close(io);
	thinp_io_fault_free(f);
	thinp_io_close(lower);
}

/*
 * Over a real file opened with O_DIRECT (where the filesystem allows it): the
 * bm's aligned buffers go straight through; written blocks survive closing
 * and reopening the file.
 */
static void test_file_backend_direct(void **state)
{
	enum { NR = 40 };
	struct test_validator va = TEST_VALIDATOR("file", 4242);
	const char *dir = test_tmpdir();
	unsigned char *want = malloc(BS);
	char path[300];
	uint32_t flags = THINP_IO_DIRECT;
	thinp_io *io;
	struct bm *bm;

	assert_non_null(dir);
	assert_non_null(want);
	snprintf(path, sizeof(path), "%s/meta", dir);
	if (thinp_io_open_file(&io, path, THINP_IO_CREATE | flags) == -EINVAL) {
		fprintf(stderr, "O_DIRECT refused here: testing buffered I/O\n");
		flags = 0;
		assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_CREATE), 0);
	}
	assert_int_equal(thinp_io_resize(io, NR * BS), 0);
	bm = open_bm(io, 8 * BS, NULL);
	assert_int_equal(bm_nr_blocks(bm), NR);
	for (uint64_t b = 0; b < NR; b++)
		write_gen(bm, &va.v, b, 1, want); /* through evictions */
	for (uint64_t b = 0; b < NR; b += 3)
		write_gen(bm, &va.v, b, 2, want);
	assert_int_equal(bm_flush(bm), 0);
	bm_destroy(bm);
	thinp_io_close(io);

	assert_int_equal(thinp_io_open_file(&io, path, flags | THINP_IO_RDONLY), 0);
	bm = open_bm(io, 0, NULL);
	for (uint64_t b = 0; b < NR; b++) {
		int err, g = generation(bm, &va.v, b, want, &err);

		assert_int_equal(err, 0);
		assert_int_equal(g, b % 3 ? 1 : 2);
	}
	bm_destroy(bm);
	thinp_io_close(io);
	free(want);
	test_tmpdir_cleanup();
}

/* Read-ahead: one request for a run, up to the first cached block and the
 * device's end; each block checked at its first lock, a bad one reported
 * then and dropped (the next lock reads it again); a failed read forgotten. */
static void test_prefetch(void **state)
{
	struct test_validator va = TEST_VALIDATOR("test-node", 1111);
	thinp_io *io;
	struct fail_dev *d = fail_dev_open(&io, 64, 0);
	struct bm *bm = open_bm(io, 1 << 20, NULL);
	struct bm_stats st;
	struct block *a;
	unsigned reads;

	(void)state;
	for (uint64_t b = 0; b < 64; b++)
		make_block(d->mem + b * BS, b, 1111, b);
	d->mem[12 * BS + 100] ^= 1;
	assert_int_equal(bm_read_lock(bm, 20, &va.v, &a), 0);
	bm_unlock(a);
	reads = d->nr_reads;
	va.checks = 0;
	bm_prefetch(bm, 10, 30);                 /* 10..19: 20 is cached */
	assert_int_equal(d->nr_reads, reads + 1);
	assert_int_equal(va.checks, 0);          /* checked at the lock, not here */
	bm_get_stats(bm, &st);
	assert_int_equal(st.reads, 11);
	assert_int_equal(bm_read_lock(bm, 11, &va.v, &a), 0);
	assert_memory_equal(block_data(a), d->mem + 11 * BS, BS);
	assert_int_equal(va.checks, 1);
	bm_unlock(a);
	assert_int_equal(bm_read_lock(bm, 19, &va.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(d->nr_reads, reads + 1);
	/* the bad block fails its first check and leaves the cache */
	assert_int_equal(bm_read_lock(bm, 12, &va.v, &a), -EILSEQ);
	make_block(d->mem + 12 * BS, 12, 1111, 12);
	assert_int_equal(bm_read_lock(bm, 12, &va.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(d->nr_reads, reads + 2);
	/* nothing for fewer than two blocks, cut at the device's end */
	bm_prefetch(bm, 19, 8);
	assert_int_equal(d->nr_reads, reads + 2);
	bm_prefetch(bm, 60, 30);
	assert_int_equal(d->nr_reads, reads + 3);
	assert_int_equal(bm_read_lock(bm, 63, &va.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(d->nr_reads, reads + 3);
	/* a failed read leaves nothing behind */
	bm_get_stats(bm, &st);
	d->fail_read_block = 45;
	bm_prefetch(bm, 45, 5);
	d->fail_read_block = -1;
	{
		struct bm_stats st2;

		bm_get_stats(bm, &st2);
		assert_int_equal(st2.resident_bytes, st.resident_bytes);
	}
	assert_int_equal(bm_read_lock(bm, 46, &va.v, &a), 0);
	bm_unlock(a);
	assert_int_equal(d->nr_reads, reads + 5);
	bm_destroy(bm);
	fail_dev_free(io, d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_semantics),
		cmocka_unit_test(test_write_lock_zero_and_stats),
		cmocka_unit_test(test_validator_calls),
		cmocka_unit_test(test_corrupt_blocks_rejected),
		cmocka_unit_test(test_read_only_and_range),
		cmocka_unit_test(test_grown_device_is_noticed),
		cmocka_unit_test(test_io_errors),
		cmocka_unit_test(test_flush_busy_and_ordered),
		cmocka_unit_test(test_flush_coalesces_runs),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_all_locked_exceeds_limit),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_concurrent_miss_same_block),
		cmocka_unit_test(test_power_cut_keeps_flushed_state),
		cmocka_unit_test(test_fault_backend_bad_sector),
		cmocka_unit_test(test_file_backend_direct),
		cmocka_unit_test(test_prefetch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
