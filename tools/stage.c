/* The staging device (stage.h): a table of 4 KiB blocks, allocated on write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stage.h"

#define BLK 4096u

struct stage {
	uint64_t bytes;
	uint64_t nr_blocks;
	uint8_t **blocks; /* NULL = never written, reads as zeroes */
};

static int st_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct stage *st = ctx;
	uint8_t *dst = buf;

	for (uint64_t b = off / BLK; len; b++, len -= BLK, dst += BLK) {
		if (st->blocks[b])
			memcpy(dst, st->blocks[b], BLK);
		else
			memset(dst, 0, BLK);
	}
	return 0;
}

static int st_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct stage *st = ctx;
	const uint8_t *src = buf;

	for (uint64_t b = off / BLK; len; b++, len -= BLK, src += BLK) {
		if (!st->blocks[b] && !(st->blocks[b] = malloc(BLK)))
			return -ENOMEM;
		memcpy(st->blocks[b], src, BLK);
	}
	return 0;
}

static int st_flush(void *ctx)
{
	return 0; /* nothing is durable until stage_copy_to() */
}

static int st_size(void *ctx, uint64_t *bytes)
{
	*bytes = ((struct stage *)ctx)->bytes;
	return 0;
}

static void st_close(void *ctx)
{
	struct stage *st = ctx;

	for (uint64_t b = 0; b < st->nr_blocks; b++)
		free(st->blocks[b]);
	free(st->blocks);
	free(st);
}

int stage_open(thinp_io **io, struct stage **out, uint64_t bytes)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct stage *st = calloc(1, sizeof(*st));
	int e;

	if (!st)
		return -ENOMEM;
	st->bytes = bytes - bytes % BLK;
	st->nr_blocks = st->bytes / BLK;
	st->blocks = calloc(st->nr_blocks ? st->nr_blocks : 1, sizeof(*st->blocks));
	if (!st->blocks) {
		free(st);
		return -ENOMEM;
	}
	ops.align = BLK; /* the handle then guarantees whole blocks */
	ops.read = st_read;
	ops.write = st_write;
	ops.flush = st_flush;
	ops.size = st_size;
	ops.close = st_close;
	e = thinp_io_new(io, &ops, st, 0);
	if (e) {
		st_close(st);
		return e;
	}
	*out = st;
	return 0;
}

int stage_copy_to(struct stage *st, thinp_io *target)
{
	static const uint8_t zero[BLK];
	int e;

	if (!st->nr_blocks || !st->blocks[0])
		return -EINVAL; /* nothing was formatted */
	if ((e = thinp_io_write(target, zero, BLK, 0, 0)) || (e = thinp_io_flush(target)))
		return e;
	for (uint64_t b = 1; b < st->nr_blocks; b++)
		if (st->blocks[b] && (e = thinp_io_write(target, st->blocks[b], BLK, b * BLK, 0)))
			return e;
	if ((e = thinp_io_flush(target)))
		return e;
	if ((e = thinp_io_write(target, st->blocks[0], BLK, 0, 0)))
		return e;
	return thinp_io_flush(target);
}
