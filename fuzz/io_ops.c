/*
 * Fuzz target io_ops: a sequence of thinp_io calls, checked against a model.
 *
 * The input is a device header followed by operations. The header picks the
 * backend (the built-in memory backend, or a plain backend of our own with an
 * alignment, no discard/write-zeroes callbacks and no THREADSAFE flag, which
 * exercises the handle's checks, its serialization and its write-zeroes
 * fallback), its size and read-only flag. Every operation is applied to the
 * handle and to `model`, a byte array; the handle must return exactly what the
 * documented contract says (0, -EINVAL out of range or misaligned, -EROFS on a
 * read-only handle, -EOPNOTSUPP for a missing discard) and every read must
 * return the model's bytes. Any difference aborts.
 *
 *   header: u8 kind  bit 0: own backend; bit 1: read-only; bits 2-5: log2 align
 *           u8 size  the device holds (size + 1) * 256 bytes
 *   op:     u8 code  bits 0-2: operation; bits 3-7: data seed, whose bit 0
 *                    asks a write, discard or write-zeroes for THINP_IO_FUA
 *                    (native on memory, emulated by the handle on our own)
 *                    and bit 1 a write-zeroes for THINP_IO_NO_UNMAP
 *           u16 off, u16 len (little endian), scaled by 8 for the own backend
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/io.h>
#include "fuzz.h"

#define MAX_DEV (256 * 256)

struct own_dev {
	unsigned char bytes[MAX_DEV];
	uint64_t size;
};

static int own_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct own_dev *d = ctx;

	memcpy(buf, d->bytes + off, len);
	return 0;
}

static int own_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct own_dev *d = ctx;

	memcpy(d->bytes + off, buf, len);
	return 0;
}

static int own_flush(void *ctx)
{
	return 0;
}

static int own_size(void *ctx, uint64_t *bytes)
{
	*bytes = ((struct own_dev *)ctx)->size;
	return 0;
}

static void own_close(void *ctx)
{
	free(ctx);
}

static thinp_io *open_dev(uint8_t kind, uint64_t size, uint32_t align, uint32_t flags)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct own_dev *d;
	thinp_io *io = NULL;

	if (!(kind & 1)) {
		FUZZ_CHECK(thinp_io_open_memory(&io, size, flags) == 0);
		return io;
	}
	d = calloc(1, sizeof(*d));
	FUZZ_CHECK(d);
	d->size = size;
	ops.align = align;
	ops.read = own_read;
	ops.write = own_write;
	ops.flush = own_flush;
	ops.size = own_size;
	ops.close = own_close;
	FUZZ_CHECK(thinp_io_new(&io, &ops, d, flags) == 0);
	return io;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int fuzz_one(const uint8_t *data, size_t size)
{
	static unsigned char model[MAX_DEV], buf[MAX_DEV * 8];
	uint8_t kind;
	uint64_t dev_size, got;
	uint32_t align, flags, rflags;
	int rdonly, own, expect, r;
	thinp_io *io;

	if (size < 2)
		return -1;
	kind = data[0];
	own = kind & 1;
	rdonly = (kind >> 1) & 1;
	align = own ? 1u << ((kind >> 2) & 15) : 1;
	if (align > 4096)
		align = 4096;
	dev_size = ((uint64_t)data[1] + 1) * 256;
	flags = rdonly ? THINP_IO_RDONLY : 0;
	data += 2;
	size -= 2;

	io = open_dev(kind, dev_size, align, flags);
	FUZZ_CHECK(thinp_io_align(io) == align);
	FUZZ_CHECK(!!(thinp_io_caps(io) & THINP_IO_CAP_DISCARD) == !own);
	memset(model, 0, sizeof(model));

	for (; size >= 5; data += 5, size -= 5) {
		uint8_t op = data[0] & 7, seed = data[0] >> 3;
		uint64_t off = get16(data + 1), len = get16(data + 3);
		int bad, i;

		if (own) {
			off *= 8;
			len *= 8;
		}
		if (op == 7) /* an offset that wraps around 2^64 */
			off = UINT64_MAX - (off & 0xfff);
		if (len > sizeof(buf))
			len = sizeof(buf);
		bad = off > dev_size || len > dev_size - off || ((off | len) & (align - 1));

		switch (op) {
		case 0: /* read */
		case 7:
			memset(buf, 0xee, len);
			r = thinp_io_read(io, buf, len, off, 0);
			FUZZ_CHECK(r == (bad ? -EINVAL : 0));
			if (!r)
				FUZZ_CHECK(memcmp(buf, model + off, len) == 0);
			break;
		case 1: /* write */
			for (i = 0; i < (int)len; i++)
				buf[i] = (unsigned char)(seed * 31 + i);
			r = thinp_io_write(io, buf, len, off, seed & 1 ? THINP_IO_FUA : 0);
			/* Read-only wins over a bad range, but either answer is fair. */
			if (rdonly)
				FUZZ_CHECK(r == -EROFS || (bad && r == -EINVAL));
			else
				FUZZ_CHECK(r == (bad ? -EINVAL : 0));
			if (!r)
				memcpy(model + off, buf, len);
			break;
		case 2: /* flush */
			FUZZ_CHECK(thinp_io_flush(io) == 0);
			break;
		case 3: /* discard: the memory backend reads back zeroes */
		case 4: /* write zeroes */
			rflags = seed & 1 ? THINP_IO_FUA : 0;
			r = op == 3 ? thinp_io_discard(io, len, off, rflags)
				    : thinp_io_write_zeroes(io, len, off,
							    rflags | (seed & 2 ? THINP_IO_NO_UNMAP : 0));
			/* Read-only is the stronger refusal, even where discard
			 * is not supported at all. */
			if (rdonly)
				expect = -EROFS;
			else if (op == 3 && own)
				expect = -EOPNOTSUPP;
			else
				expect = bad ? -EINVAL : 0;
			FUZZ_CHECK(r == expect || (rdonly && bad && r == -EINVAL));
			if (!r)
				memset(model + off, 0, len);
			break;
		case 5: /* size */
			FUZZ_CHECK(thinp_io_size(io, &got) == 0 && got == dev_size);
			break;
		case 6: /* the whole device, if its size is aligned */
			r = thinp_io_read(io, buf, dev_size, 0, 0);
			FUZZ_CHECK(r == (dev_size & (align - 1) ? -EINVAL : 0));
			if (!r)
				FUZZ_CHECK(memcmp(buf, model, dev_size) == 0);
			break;
		}
	}
	thinp_io_close(io);
	return 0;
}
