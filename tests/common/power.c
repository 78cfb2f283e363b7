/* One power supply over several fault devices (power.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/power.h"
#include "common/testutil.h"
#include <libthinp/testing.h>

struct power {
	pthread_mutex_t lock;
	uint64_t n, count;
	int mode;
	uint64_t seed;
	bool cut;
	unsigned nr;
	thinp_io *fault_io[POWER_MAX_DEVICES], *top[POWER_MAX_DEVICES];
	thinp_io_fault *fault[POWER_MAX_DEVICES];
};

struct clocked {
	struct power *pw;
	thinp_io *below;
};

/* Lock held: the power goes, every device resolving its unflushed writes. */
static void cut_locked(struct power *pw)
{
	for (unsigned i = 0; i < pw->nr; i++)
		assert_int_equal(thinp_io_fault_cut(pw->fault[i], pw->mode, pw->seed + i), 0);
	pw->cut = true;
}

/* One request that changes a device: maybe the one that cuts the power. */
static int tick(struct power *pw)
{
	bool cut;

	pthread_mutex_lock(&pw->lock);
	if (!pw->cut && ++pw->count == pw->n)
		cut_locked(pw);
	cut = pw->cut;
	pthread_mutex_unlock(&pw->lock);
	return cut ? -EIO : 0;
}

static int ck_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct clocked *c = ctx;

	(void)flags;
	return power_is_cut(c->pw) ? -EIO : thinp_io_read(c->below, buf, len, off, 0);
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

struct power *power_new(int mode, uint64_t seed)
{
	struct power *pw = calloc(1, sizeof(*pw));

	assert_non_null(pw);
	pthread_mutex_init(&pw->lock, NULL);
	pw->n = UINT64_MAX;
	pw->mode = mode;
	pw->seed = seed;
	return pw;
}

thinp_io *power_add(struct power *pw, thinp_io *lower)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct clocked *c = malloc(sizeof(*c));
	unsigned i = pw->nr;

	assert_true(i < POWER_MAX_DEVICES);
	assert_non_null(c);
	assert_int_equal(thinp_io_open_fault(&pw->fault_io[i], &pw->fault[i], lower, 0), 0);
	c->pw = pw;
	c->below = pw->fault_io[i];
	ops.caps = THINP_IO_CAP_DISCARD | THINP_IO_CAP_DISCARD_ZEROES | THINP_IO_CAP_WRITE_ZEROES |
		   THINP_IO_CAP_THREADSAFE;
	ops.read = ck_read;
	ops.write = ck_write;
	ops.flush = ck_flush;
	ops.size = ck_size;
	ops.discard = ck_discard;
	ops.write_zeroes = ck_write_zeroes;
	ops.resize = ck_resize;
	ops.close = ck_close;
	assert_int_equal(thinp_io_new(&pw->top[i], &ops, c, 0), 0);
	pw->nr++;
	return pw->top[i];
}

void power_arm(struct power *pw, uint64_t n)
{
	pthread_mutex_lock(&pw->lock);
	pw->count = 0;
	pw->n = n;
	pthread_mutex_unlock(&pw->lock);
}

bool power_is_cut(const struct power *pw)
{
	bool cut;

	pthread_mutex_lock((pthread_mutex_t *)&pw->lock);
	cut = pw->cut;
	pthread_mutex_unlock((pthread_mutex_t *)&pw->lock);
	return cut;
}

void power_cut_now(struct power *pw)
{
	pthread_mutex_lock(&pw->lock);
	if (!pw->cut)
		cut_locked(pw);
	pthread_mutex_unlock(&pw->lock);
}

void power_free(struct power *pw)
{
	if (!pw)
		return;
	for (unsigned i = 0; i < pw->nr; i++) {
		thinp_io_close(pw->top[i]);
		thinp_io_close(pw->fault_io[i]);
		thinp_io_fault_free(pw->fault[i]);
	}
	pthread_mutex_destroy(&pw->lock);
	free(pw);
}
