/* A power switch over three memory devices (power.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "common/power.h"

struct clocked {
	struct power *pw;
	thinp_io *below;
};

static int tick(struct power *pw)
{
	if (!pw->cut && ++pw->count == pw->n) {
		for (int i = 0; i < 3; i++)
			assert_int_equal(thinp_io_fault_cut(pw->fault[i], pw->mode, pw->seed + i), 0);
		pw->cut = 1;
	}
	return pw->cut ? -EIO : 0;
}

static int ck_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct clocked *c = ctx;

	(void)flags;
	return c->pw->cut ? -EIO : thinp_io_read(c->below, buf, len, off, 0);
}

static int ck_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct clocked *c = ctx;
	int r = tick(c->pw);

	(void)flags;
	return r ? r : thinp_io_write(c->below, buf, len, off, 0);
}

static int ck_flush(void *ctx)
{
	struct clocked *c = ctx;
	int r = tick(c->pw);

	return r ? r : thinp_io_flush(c->below);
}

static int ck_size(void *ctx, uint64_t *bytes)
{
	struct clocked *c = ctx;

	return thinp_io_size(c->below, bytes);
}

static int ck_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct clocked *c = ctx;
	int r = tick(c->pw);

	(void)flags;
	return r ? r : thinp_io_discard(c->below, len, off, 0);
}

static int ck_write_zeroes(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct clocked *c = ctx;
	int r = tick(c->pw);

	(void)flags;
	return r ? r : thinp_io_write_zeroes(c->below, len, off, 0);
}

static int ck_resize(void *ctx, uint64_t bytes)
{
	struct clocked *c = ctx;
	int r = tick(c->pw);

	return r ? r : thinp_io_resize(c->below, bytes);
}

static void ck_close(void *ctx)
{
	free(ctx);
}

static thinp_io *clocked_io(struct power *pw, thinp_io *below)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct clocked *c = malloc(sizeof(*c));
	thinp_io *io;

	assert_non_null(c);
	c->pw = pw;
	c->below = below;
	ops.caps = THINP_IO_CAP_DISCARD | THINP_IO_CAP_DISCARD_ZEROES | THINP_IO_CAP_WRITE_ZEROES;
	ops.read = ck_read;
	ops.write = ck_write;
	ops.flush = ck_flush;
	ops.size = ck_size;
	ops.discard = ck_discard;
	ops.write_zeroes = ck_write_zeroes;
	ops.resize = ck_resize;
	ops.close = ck_close;
	assert_int_equal(thinp_io_new(&io, &ops, c, 0), 0);
	return io;
}

void power_open(struct power *pw, uint64_t meta_bytes, uint64_t data_bytes,
		uint64_t catalog_bytes)
{
	const uint64_t sizes[3] = { meta_bytes, data_bytes, catalog_bytes };

	memset(pw, 0, sizeof(*pw));
	pw->n = UINT64_MAX;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(thinp_io_open_memory(&pw->lower[i], sizes[i], 0), 0);
		assert_int_equal(thinp_io_open_fault(&pw->fio[i], &pw->fault[i], pw->lower[i], 0), 0);
		pw->io[i] = clocked_io(pw, pw->fio[i]);
	}
}

void power_arm(struct power *pw, uint64_t n, int mode, uint64_t seed)
{
	pw->count = 0;
	pw->n = n;
	pw->mode = mode;
	pw->seed = seed;
}

void power_close(struct power *pw, thinp_io *lower[3])
{
	for (int i = 0; i < 3; i++) {
		thinp_io_close(pw->io[i]);
		thinp_io_close(pw->fio[i]);
		thinp_io_fault_free(pw->fault[i]);
		lower[i] = pw->lower[i];
	}
}
