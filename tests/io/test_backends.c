/*
 * Backend conformance: one table of tests, run unchanged over every backend.
 *
 * Each backend row says how to open a handle on its device (again, read-only),
 * how to grow the device behind the handle's back, and what capabilities and
 * alignment to expect. Rows: memory; file; file with O_DIRECT; file on tmpfs
 * (no FALLOC_FL_ZERO_RANGE there, so write-zeroes takes the fallback); fault
 * over memory with nothing armed; and "user", a backend written here through
 * thinp_io_ops that does not declare THINP_IO_CAP_THREADSAFE and counts any
 * overlapping calls, to check that the handle serializes them and validates
 * every request before the backend sees it.
 *
 * After the table come the checks of thinp_io_new() itself (versions, sizes,
 * missing callbacks).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/testutil.h"
#include <libthinp/io.h>
#include <libthinp/testing.h>

#define DEV_SIZE (4u << 20) /* larger than the handle's 1 MiB zeroing chunk */
#define ALL_CAPS (THINP_IO_CAP_DISCARD | THINP_IO_CAP_WRITE_ZEROES | \
		  THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_DISCARD_ZEROES)

static uint64_t suite_seed;

/* ---- the user-defined backend ---- */

struct userdev {
	unsigned char *bytes;
	uint64_t size;
	int inside;       /* callbacks running now */
	int overlaps;     /* callbacks that found another one running */
	int bad_requests; /* requests the handle should have refused */
	int closes;
	bool slow;        /* sleep in callbacks, to make overlaps certain */
};

#define USER_ALIGN 512u

static void user_enter(struct userdev *u)
{
	if (__atomic_fetch_add(&u->inside, 1, __ATOMIC_SEQ_CST))
		__atomic_fetch_add(&u->overlaps, 1, __ATOMIC_SEQ_CST);
	/* Give another thread the chance to barge in, if the handle lets it. */
	if (u->slow)
		usleep(200);
	else
		sched_yield();
}

static void user_leave(struct userdev *u)
{
	__atomic_fetch_sub(&u->inside, 1, __ATOMIC_SEQ_CST);
}

/* The handle promises aligned, non-empty, in-range requests. */
static void user_check(struct userdev *u, uint64_t len, uint64_t off)
{
	if (!len || (off | len) % USER_ALIGN || off > u->size || len > u->size - off)
		__atomic_fetch_add(&u->bad_requests, 1, __ATOMIC_SEQ_CST);
}

static int user_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct userdev *u = ctx;

	user_enter(u);
	user_check(u, len, off);
	memcpy(buf, u->bytes + off, len);
	user_leave(u);
	return 0;
}

static int user_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct userdev *u = ctx;

	user_enter(u);
	user_check(u, len, off);
	memcpy(u->bytes + off, buf, len);
	user_leave(u);
	return 0;
}

/* Discarded contents are unspecified; make them visibly not zero. */
static int user_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct userdev *u = ctx;

	user_enter(u);
	user_check(u, len, off);
	memset(u->bytes + off, 0xA5, len);
	user_leave(u);
	return 0;
}

static int user_flush(void *ctx)
{
	struct userdev *u = ctx;

	user_enter(u);
	user_leave(u);
	return 0;
}

static int user_size(void *ctx, uint64_t *bytes)
{
	struct userdev *u = ctx;

	user_enter(u);
	*bytes = u->size;
	user_leave(u);
	return 0;
}

/* The device belongs to the fixture; closing a handle only counts. */
static void user_close(void *ctx)
{
	struct userdev *u = ctx;

	u->closes++;
}

static int user_open_handle(struct userdev *u, uint32_t caps, uint32_t flags,
			    thinp_io **out)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;

	ops.caps = caps;
	ops.align = USER_ALIGN;
	ops.read = user_read;
	ops.write = user_write;
	ops.flush = user_flush;
	ops.size = user_size;
	ops.discard = user_discard;
	ops.close = user_close;
	return thinp_io_new(out, &ops, u, flags);
}

static struct userdev *user_new(uint64_t size)
{
	struct userdev *u = calloc(1, sizeof(*u));

	assert_non_null(u);
	u->bytes = calloc(1, size);
	assert_non_null(u->bytes);
	u->size = size;
	return u;
}

static void user_free(struct userdev *u)
{
	free(u->bytes);
	free(u);
}

/* ---- backend rows ---- */

struct fixture;

struct backend {
	const char *name;
	/* Open a handle on the fixture's device, making the device on the
	 * first call. */
	int (*open)(struct fixture *fx, uint32_t flags, thinp_io **out);
	/* Grow the device to `bytes` without going through the handle, where
	 * the backend allows it. */
	void (*grow)(struct fixture *fx, uint64_t bytes);
	void (*destroy)(struct fixture *fx);
	uint32_t align;
	uint32_t caps_required;
	uint32_t caps_forbidden;
	bool resize;      /* thinp_io_resize() works */
	bool ro_separate; /* a read-only open makes a new device (memory) */
	uint32_t file_flags;
	char dir[256];    /* file rows: where the file lives */
	const char *unavailable; /* why the row is skipped, or NULL */
};

struct fixture {
	const struct backend *be;
	thinp_io *io;
	thinp_io *lower;      /* fault: the memory device below */
	struct userdev *user; /* user: the device */
	int user_handles;     /* user: handles opened on it */
	char path[512];       /* file: the file */
};

static int mem_open(struct fixture *fx, uint32_t flags, thinp_io **out)
{
	return thinp_io_open_memory(out, DEV_SIZE, flags);
}

/* Memory has no outside: its one handle is the only way to grow it. */
static void mem_grow(struct fixture *fx, uint64_t bytes)
{
	assert_int_equal(thinp_io_resize(fx->io, bytes), 0);
}

static void nothing_to_destroy(struct fixture *fx)
{
}

static int file_open(struct fixture *fx, uint32_t flags, thinp_io **out)
{
	if (!fx->path[0]) {
		int fd;

		snprintf(fx->path, sizeof(fx->path), "%s/dev-XXXXXX", fx->be->dir);
		fd = mkstemp(fx->path);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, DEV_SIZE), 0);
		close(fd);
	}
	return thinp_io_open_file(out, fx->path, fx->be->file_flags | flags);
}

static void file_grow(struct fixture *fx, uint64_t bytes)
{
	assert_int_equal(truncate(fx->path, (off_t)bytes), 0);
}

static void file_destroy(struct fixture *fx)
{
	if (fx->path[0])
		unlink(fx->path);
}

static int fault_open(struct fixture *fx, uint32_t flags, thinp_io **out)
{
	if (!fx->lower)
		assert_int_equal(thinp_io_open_memory(&fx->lower, DEV_SIZE, 0), 0);
	return thinp_io_open_fault(out, NULL, fx->lower, flags);
}

static void fault_grow(struct fixture *fx, uint64_t bytes)
{
	assert_int_equal(thinp_io_resize(fx->lower, bytes), 0);
}

static void fault_destroy(struct fixture *fx)
{
	thinp_io_close(fx->lower);
}

static int user_open(struct fixture *fx, uint32_t flags, thinp_io **out)
{
	int r;

	if (!fx->user)
		fx->user = user_new(DEV_SIZE);
	r = user_open_handle(fx->user, THINP_IO_CAP_DISCARD, flags, out);
	if (!r)
		fx->user_handles++;
	return r;
}

static void user_grow(struct fixture *fx, uint64_t bytes)
{
	unsigned char *p = realloc(fx->user->bytes, bytes);

	assert_non_null(p);
	memset(p + fx->user->size, 0, bytes - fx->user->size);
	fx->user->bytes = p;
	fx->user->size = bytes;
}

/* The handle must have shielded the backend from every bad request, called
 * it one at a time, and closed it once per handle. */
static void user_destroy(struct fixture *fx)
{
	if (!fx->user)
		return;
	assert_int_equal(fx->user->bad_requests, 0);
	assert_int_equal(fx->user->overlaps, 0);
	assert_int_equal(fx->user->closes, fx->user_handles);
	user_free(fx->user);
}

static struct backend backends[] = {
	{ .name = "memory", .open = mem_open, .grow = mem_grow,
	  .destroy = nothing_to_destroy, .align = 1, .caps_required = ALL_CAPS,
	  .resize = true, .ro_separate = true },
	{ .name = "file", .open = file_open, .grow = file_grow,
	  .destroy = file_destroy, .align = 1,
	  .caps_required = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_WRITE_ZEROES,
	  .resize = true },
	{ .name = "file-direct", .open = file_open, .grow = file_grow,
	  .destroy = file_destroy, .align = 4096,
	  .caps_required = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_WRITE_ZEROES,
	  .resize = true, .file_flags = THINP_IO_DIRECT },
	{ .name = "file-tmpfs", .open = file_open, .grow = file_grow,
	  .destroy = file_destroy, .align = 1,
	  .caps_required = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_WRITE_ZEROES,
	  .resize = true },
	{ .name = "fault-over-memory", .open = fault_open, .grow = fault_grow,
	  .destroy = fault_destroy, .align = 1, .caps_required = ALL_CAPS,
	  .resize = true },
	{ .name = "user", .open = user_open, .grow = user_grow,
	  .destroy = user_destroy, .align = USER_ALIGN,
	  .caps_required = THINP_IO_CAP_DISCARD,
	  .caps_forbidden = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_WRITE_ZEROES |
			    THINP_IO_CAP_DISCARD_ZEROES },
};

static int fx_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->be = *state;
	*state = fx;
	if (!fx->be->unavailable)
		assert_int_equal(fx->be->open(fx, 0, &fx->io), 0);
	return 0;
}

static int fx_teardown(void **state)
{
	struct fixture *fx = *state;

	thinp_io_close(fx->io);
	if (!fx->be->unavailable)
		fx->be->destroy(fx);
	free(fx);
	return 0;
}

static struct fixture *fx_get(void **state)
{
	struct fixture *fx = *state;

	if (fx->be->unavailable)
		skip();
	return fx;
}

/* ---- helpers ---- */

static void fill_random(struct test_rng *rng, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)test_rng_next(rng);
}

/* A buffer whose data starts `shift` bytes past a 4096 boundary, so the
 * O_DIRECT row sees unaligned memory too. */
struct buf {
	void *base;
	unsigned char *p;
};

static void buf_alloc(struct buf *b, size_t n, size_t shift)
{
	assert_int_equal(posix_memalign(&b->base, 4096, n + shift), 0);
	b->p = (unsigned char *)b->base + shift;
}

static void expect_bytes(thinp_io *io, uint64_t off, uint64_t len,
			 const unsigned char *want)
{
	unsigned char *got = malloc(len);

	assert_non_null(got);
	assert_int_equal(thinp_io_read(io, got, len, off, 0), 0);
	assert_memory_equal(got, want, len);
	free(got);
}

static void expect_filled(thinp_io *io, uint64_t off, uint64_t len, unsigned char v)
{
	unsigned char *want = malloc(len);

	assert_non_null(want);
	memset(want, v, len);
	expect_bytes(io, off, len, want);
	free(want);
}

/* A random aligned range of at most `max` bytes inside [lo, hi). */
static void random_range(struct test_rng *rng, uint32_t a, uint64_t lo, uint64_t hi,
			 uint64_t max, uint64_t *off, uint64_t *len)
{
	*len = a * (1 + test_rng_below(rng, max / a));
	*off = lo + a * test_rng_below(rng, (hi - lo - *len) / a + 1);
}

/* ---- the table ---- */

static void test_caps_and_align(void **state)
{
	struct fixture *fx = fx_get(state);
	uint32_t caps = thinp_io_caps(fx->io);
	uint64_t size;

	assert_int_equal(caps & fx->be->caps_required, fx->be->caps_required);
	assert_int_equal(caps & fx->be->caps_forbidden, 0);
	assert_int_equal(thinp_io_align(fx->io), fx->be->align);
	assert_int_equal(thinp_io_size(fx->io, &size), 0);
	assert_int_equal(size, DEV_SIZE);
}

/* Random writes, reads and flushes against a byte-array model. */
static void test_roundtrip_random(void **state)
{
	static const size_t shifts[] = { 0, 1, 512, 4000 };
	struct fixture *fx = fx_get(state);
	uint32_t a = thinp_io_align(fx->io);
	unsigned char *model = calloc(1, DEV_SIZE);
	struct test_rng rng;
	struct buf b;
	unsigned n = 300 * test_scale();

	assert_non_null(model);
	test_rng_init(&rng, suite_seed);
	for (unsigned i = 0; i < n; i++) {
		uint64_t off, len, pick = test_rng_below(&rng, 10);

		random_range(&rng, a, 0, DEV_SIZE, 64 * 1024, &off, &len);
		buf_alloc(&b, len, shifts[test_rng_below(&rng, 4)]);
		if (pick < 5) {
			fill_random(&rng, b.p, len);
			assert_int_equal(thinp_io_write(fx->io, b.p, len, off, 0), 0);
			memcpy(model + off, b.p, len);
		} else if (pick < 9) {
			assert_int_equal(thinp_io_read(fx->io, b.p, len, off, 0), 0);
			assert_memory_equal(b.p, model + off, len);
		} else {
			assert_int_equal(thinp_io_flush(fx->io), 0);
		}
		free(b.base);
	}
	expect_bytes(fx->io, 0, DEV_SIZE, model);
	free(model);
}

static void test_bounds(void **state)
{
	struct fixture *fx = fx_get(state);
	uint32_t a = thinp_io_align(fx->io);
	bool discard = thinp_io_caps(fx->io) & THINP_IO_CAP_DISCARD;
	uint64_t huge = UINT64_MAX - (a - 1);
	struct buf b;

	buf_alloc(&b, 2 * a, 0);
	memset(b.p, 7, 2 * a);
	assert_int_equal(thinp_io_read(fx->io, b.p, a, DEV_SIZE, 0), -EINVAL);
	assert_int_equal(thinp_io_read(fx->io, b.p, 2 * a, DEV_SIZE - a, 0), -EINVAL);
	assert_int_equal(thinp_io_read(fx->io, b.p, a, huge, 0), -EINVAL);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, DEV_SIZE, 0), -EINVAL);
	assert_int_equal(thinp_io_write(fx->io, b.p, 2 * a, DEV_SIZE - a, 0), -EINVAL);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, huge, 0), -EINVAL);
	assert_int_equal(thinp_io_write_zeroes(fx->io, 2 * a, DEV_SIZE - a, 0), -EINVAL);
	assert_int_equal(thinp_io_discard(fx->io, 2 * a, DEV_SIZE - a, 0),
			 discard ? -EINVAL : -EOPNOTSUPP);
	/* The last block is reachable, and an empty request at the end is fine. */
	assert_int_equal(thinp_io_write(fx->io, b.p, a, DEV_SIZE - a, 0), 0);
	assert_int_equal(thinp_io_read(fx->io, b.p + a, a, DEV_SIZE - a, 0), 0);
	assert_memory_equal(b.p, b.p + a, a);
	assert_int_equal(thinp_io_read(fx->io, b.p, 0, DEV_SIZE, 0), 0);
	assert_int_equal(thinp_io_read(fx->io, b.p, 0, DEV_SIZE + a, 0), -EINVAL);
	free(b.base);
}

static void test_misalignment(void **state)
{
	struct fixture *fx = fx_get(state);
	uint32_t a = thinp_io_align(fx->io);
	struct buf b;

	buf_alloc(&b, 2 * a + 8, 0);
	if (a == 1) {
		/* Byte-granular: odd offsets and lengths simply work. */
		assert_int_equal(thinp_io_write(fx->io, "odd", 3, 12345, 0), 0);
		assert_int_equal(thinp_io_read(fx->io, b.p, 3, 12345, 0), 0);
		assert_memory_equal(b.p, "odd", 3);
		free(b.base);
		return;
	}
	assert_int_equal(thinp_io_read(fx->io, b.p, a, 1, 0), -EINVAL);
	assert_int_equal(thinp_io_read(fx->io, b.p, a + 1, 0, 0), -EINVAL);
	assert_int_equal(thinp_io_read(fx->io, b.p, a, a / 2, 0), -EINVAL);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, 1, 0), -EINVAL);
	assert_int_equal(thinp_io_write(fx->io, b.p, 1, 0, 0), -EINVAL);
	assert_int_equal(thinp_io_write_zeroes(fx->io, a - 1, 0, 0), -EINVAL);
	if (thinp_io_caps(fx->io) & THINP_IO_CAP_DISCARD)
		assert_int_equal(thinp_io_discard(fx->io, a, a + 1, 0), -EINVAL);
	if (fx->be->resize)
		assert_int_equal(thinp_io_resize(fx->io, DEV_SIZE + 1), -EINVAL);
	free(b.base);
}

static void test_read_only(void **state)
{
	struct fixture *fx = fx_get(state);
	uint32_t a = thinp_io_align(fx->io);
	thinp_io *ro;
	struct buf b;

	buf_alloc(&b, 2 * a, 0);
	memset(b.p, 0x3C, a);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, 0, 0), 0);
	assert_int_equal(thinp_io_flush(fx->io), 0);
	assert_int_equal(fx->be->open(fx, THINP_IO_RDONLY, &ro), 0);
	assert_int_equal(thinp_io_write(ro, b.p, a, 0, 0), -EROFS);
	assert_int_equal(thinp_io_discard(ro, a, 0, 0), -EROFS);
	assert_int_equal(thinp_io_write_zeroes(ro, a, 0, 0), -EROFS);
	assert_int_equal(thinp_io_resize(ro, DEV_SIZE * 2), -EROFS);
	assert_int_equal(thinp_io_flush(ro), 0);
	assert_int_equal(thinp_io_read(ro, b.p + a, a, 0, 0), 0);
	if (!fx->be->ro_separate)
		assert_memory_equal(b.p + a, b.p, a);
	thinp_io_close(ro);
	free(b.base);
}

/* Discard [16K, 48K) of a 64 KiB pattern. */
static void test_discard(void **state)
{
	struct fixture *fx = fx_get(state);
	uint32_t caps = thinp_io_caps(fx->io);
	unsigned char *pat = malloc(65536);
	struct test_rng rng;
	int r;

	assert_non_null(pat);
	test_rng_init(&rng, suite_seed);
	fill_random(&rng, pat, 65536);
	assert_int_equal(thinp_io_write(fx->io, pat, 65536, 0, 0), 0);
	assert_int_equal(thinp_io_flush(fx->io), 0);
	r = thinp_io_discard(fx->io, 32768, 16384, 0);
	if (!(caps & THINP_IO_CAP_DISCARD)) {
		assert_int_equal(r, -EOPNOTSUPP);
		expect_bytes(fx->io, 0, 65536, pat);
		free(pat);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(thinp_io_discard(fx->io, 0, 4096, 0), 0);
	expect_bytes(fx->io, 0, 16384, pat);
	expect_bytes(fx->io, 49152, 16384, pat + 49152);
	if (caps & THINP_IO_CAP_DISCARD_ZEROES)
		expect_filled(fx->io, 16384, 32768, 0);
	free(pat);
}

/* Zero a range crossing several of the handle's 1 MiB fallback chunks. */
static void test_write_zeroes(void **state)
{
	const uint64_t span = 3u << 20, zoff = 4096, zlen = (2u << 20) + 8192;
	struct fixture *fx = fx_get(state);
	unsigned char *pat = malloc(span);
	struct test_rng rng;

	assert_non_null(pat);
	test_rng_init(&rng, suite_seed);
	fill_random(&rng, pat, span);
	assert_int_equal(thinp_io_write(fx->io, pat, span, 0, 0), 0);
	assert_int_equal(thinp_io_write_zeroes(fx->io, zlen, zoff, 0), 0);
	assert_int_equal(thinp_io_write_zeroes(fx->io, 0, 0, 0), 0);
	expect_bytes(fx->io, 0, zoff, pat);
	expect_filled(fx->io, zoff, zlen, 0);
	expect_bytes(fx->io, zoff + zlen, span - zoff - zlen, pat + zoff + zlen);
	free(pat);
}

/* A device grown behind the handle's back is noticed by the first request
 * that needs the new space, and by thinp_io_size(). */
static void test_grow_noticed(void **state)
{
	struct fixture *fx = fx_get(state);
	uint32_t a = thinp_io_align(fx->io);
	uint64_t size;
	struct buf b;

	buf_alloc(&b, 2 * a, 0);
	memset(b.p, 0x5A, a);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, DEV_SIZE, 0), -EINVAL);
	fx->be->grow(fx, 2 * (uint64_t)DEV_SIZE);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, DEV_SIZE, 0), 0);
	assert_int_equal(thinp_io_size(fx->io, &size), 0);
	assert_int_equal(size, 2 * (uint64_t)DEV_SIZE);
	assert_int_equal(thinp_io_read(fx->io, b.p + a, a, DEV_SIZE, 0), 0);
	assert_memory_equal(b.p, b.p + a, a);
	expect_filled(fx->io, 2 * (uint64_t)DEV_SIZE - a, a, 0);
	free(b.base);
}

static void test_resize(void **state)
{
	const uint64_t big = DEV_SIZE + 8192, small = DEV_SIZE - 8192;
	struct fixture *fx = fx_get(state);
	uint32_t a = thinp_io_align(fx->io);
	uint64_t size;
	struct buf b;
	int r;

	buf_alloc(&b, a, 0);
	memset(b.p, 0x77, a);
	assert_int_equal(thinp_io_write(fx->io, b.p, a, small - a, 0), 0);
	r = thinp_io_resize(fx->io, big);
	if (!fx->be->resize) {
		assert_int_equal(r, -EOPNOTSUPP);
		free(b.base);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal(thinp_io_size(fx->io, &size), 0);
	assert_int_equal(size, big);
	expect_filled(fx->io, big - 8192, 8192, 0);
	assert_int_equal(thinp_io_resize(fx->io, small), 0);
	assert_int_equal(thinp_io_read(fx->io, b.p, a, small, 0), -EINVAL);
	expect_filled(fx->io, small - a, a, 0x77);
	free(b.base);
}

/* Several threads on one handle, each in its own region with its own model. */
#define NR_THREADS 4

struct worker {
	thinp_io *io;
	uint64_t base;
	uint64_t len;
	uint64_t seed;
	unsigned mismatches;
	unsigned errors;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint32_t a = thinp_io_align(w->io);
	unsigned char *model = calloc(1, w->len), *buf;
	unsigned n = 150 * test_scale();
	struct test_rng rng;
	void *base;

	if (!model || posix_memalign(&base, 4096, 16384)) {
		w->errors++;
		free(model);
		return NULL;
	}
	buf = base;
	test_rng_init(&rng, w->seed);
	/* The region starts zeroed: a fresh device. */
	for (unsigned i = 0; i < n; i++) {
		uint64_t off, len, pick = test_rng_below(&rng, 10);

		random_range(&rng, a, 0, w->len, 16384, &off, &len);
		if (pick < 5) {
			fill_random(&rng, buf, len);
			w->errors += thinp_io_write(w->io, buf, len, w->base + off, 0) != 0;
			memcpy(model + off, buf, len);
		} else if (pick < 9) {
			w->errors += thinp_io_read(w->io, buf, len, w->base + off, 0) != 0;
			w->mismatches += memcmp(buf, model + off, len) != 0;
		} else {
			w->errors += thinp_io_flush(w->io) != 0;
		}
	}
	free(base);
	free(model);
	return NULL;
}

static void run_workers(thinp_io *io)
{
	struct worker w[NR_THREADS];
	pthread_t t[NR_THREADS];

	for (int i = 0; i < NR_THREADS; i++) {
		w[i] = (struct worker){ io, i * (uint64_t)(DEV_SIZE / NR_THREADS),
					DEV_SIZE / NR_THREADS, suite_seed + i, 0, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < NR_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].errors, 0);
		assert_int_equal(w[i].mismatches, 0);
	}
}

static void test_threads(void **state)
{
	struct fixture *fx = fx_get(state);

	run_workers(fx->io);
	/* The user row's teardown checks that no two calls overlapped. */
}

#define ROW(fn) cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, NULL)

static const struct CMUnitTest table[] = {
	ROW(test_caps_and_align),
	ROW(test_roundtrip_random),
	ROW(test_bounds),
	ROW(test_misalignment),
	ROW(test_read_only),
	ROW(test_discard),
	ROW(test_write_zeroes),
	ROW(test_grow_noticed),
	ROW(test_resize),
	ROW(test_threads),
};

/* ---- thinp_io_new() itself ---- */

static int noop_read(void *c, void *b, uint64_t l, uint64_t o, uint32_t flags) { return 0; }
static int noop_write(void *c, const void *b, uint64_t l, uint64_t o, uint32_t flags) { return 0; }
static int noop_flush(void *c) { return 0; }
static int noop_discard(void *c, uint64_t l, uint64_t o, uint32_t flags) { return 0; }

static int size_4k(void *c, uint64_t *bytes)
{
	*bytes = 4096;
	return 0;
}

static int size_fails(void *c, uint64_t *bytes)
{
	return -EIO;
}

static void count_close(void *c)
{
	(*(int *)c)++;
}

static thinp_io_ops valid_ops(void)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;

	ops.read = noop_read;
	ops.write = noop_write;
	ops.flush = noop_flush;
	ops.size = size_4k;
	ops.close = count_close;
	return ops;
}

/* thinp_io_new must refuse `ops`, leave *out NULL and not close ctx. */
static void expect_refused(const thinp_io_ops *ops, uint32_t flags, int err)
{
	thinp_io *io = (thinp_io *)&io;
	int closes = 0;

	assert_int_equal(thinp_io_new(&io, ops, &closes, flags), err);
	assert_null(io);
	assert_int_equal(closes, 0);
}

static void test_new_refuses_bad_ops(void **state)
{
	thinp_io_ops ops;

	expect_refused(NULL, 0, -EINVAL);
	ops = valid_ops(), ops.version = 0;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.version = THINP_IO_OPS_VERSION + 1;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.struct_size = sizeof(ops) - sizeof(void *);
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.struct_size = 8;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.read = NULL;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.write = NULL;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.flush = NULL;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.size = NULL;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.align = 3000;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.caps = THINP_IO_CAP_DISCARD;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops(), ops.caps = THINP_IO_CAP_WRITE_ZEROES;
	expect_refused(&ops, 0, -EINVAL);
	ops = valid_ops();
	expect_refused(&ops, THINP_IO_DIRECT, -EINVAL);
	/* The backend's own size error comes back as is. */
	ops = valid_ops(), ops.size = size_fails;
	expect_refused(&ops, 0, -EIO);
	assert_int_equal(thinp_io_new(NULL, &ops, NULL, 0), -EINVAL);
}

/* A caller compiled against a newer header passes a bigger struct: the
 * fields this library does not know are ignored. The library keeps its own
 * copy: changing the caller's struct afterwards changes nothing. */
static void test_new_copies_ops(void **state)
{
	struct {
		thinp_io_ops ops;
		void *future[4];
	} big;
	thinp_io *io;
	int closes = 0;

	memset(&big, 0xFF, sizeof(big));
	big.ops = valid_ops();
	big.ops.struct_size = sizeof(big);
	big.ops.caps = THINP_IO_CAP_DISCARD;
	big.ops.discard = noop_discard;
	assert_int_equal(thinp_io_new(&io, &big.ops, &closes, 0), 0);
	big.ops.read = NULL;
	big.ops.discard = NULL;
	assert_int_equal(thinp_io_read(io, &big.future, 8, 0, 0), 0);
	assert_int_equal(thinp_io_discard(io, 8, 0, 0), 0);
	assert_int_equal(thinp_io_caps(io), THINP_IO_CAP_DISCARD);
	assert_int_equal(thinp_io_align(io), 1);
	/* No write_zeroes: the handle writes zeroes; no resize: refused. */
	assert_int_equal(thinp_io_write_zeroes(io, 4096, 0, 0), 0);
	assert_int_equal(thinp_io_resize(io, 8192), -EOPNOTSUPP);
	thinp_io_close(io);
	assert_int_equal(closes, 1);
	thinp_io_close(NULL);
}

/* The negative control for the user row: a backend that claims to be
 * thread-safe is not serialized, and the overlap counter sees it. Without
 * this, the user row's "no overlaps" check could pass by never looking. */
static void test_overlap_detector_works(void **state)
{
	struct userdev *u = user_new(DEV_SIZE);
	thinp_io *io;

	u->slow = true;
	assert_int_equal(user_open_handle(u, THINP_IO_CAP_THREADSAFE, 0, &io), 0);
	run_workers(io);
	thinp_io_close(io);
	assert_true(u->overlaps > 0);
	assert_int_equal(u->bad_requests, 0);
	user_free(u);
}

static const struct CMUnitTest handle_tests[] = {
	cmocka_unit_test(test_new_refuses_bad_ops),
	cmocka_unit_test(test_new_copies_ops),
	cmocka_unit_test(test_overlap_detector_works),
};

/* ---- choosing where the file rows live ---- */

static bool dir_accepts(const char *dir, uint32_t flags)
{
	char path[512];
	thinp_io *io;
	int fd, r;

	snprintf(path, sizeof(path), "%s/probe-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	close(fd);
	r = thinp_io_open_file(&io, path, flags);
	thinp_io_close(io);
	unlink(path);
	return r == 0;
}

static void place_file_rows(void)
{
	const char *tmp = test_tmpdir();
	struct statfs sf;
	static char shm[64];

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		struct backend *be = &backends[i];

		if (strcmp(be->name, "file") == 0) {
			snprintf(be->dir, sizeof(be->dir), "%s", tmp ? tmp : "/tmp");
		} else if (strcmp(be->name, "file-direct") == 0) {
			/* tmpfs refused O_DIRECT before Linux 6.6; /var/tmp is
			 * usually a disk filesystem. */
			if (tmp && dir_accepts(tmp, THINP_IO_DIRECT))
				snprintf(be->dir, sizeof(be->dir), "%s", tmp);
			else if (dir_accepts("/var/tmp", THINP_IO_DIRECT))
				snprintf(be->dir, sizeof(be->dir), "/var/tmp");
			else
				be->unavailable = "neither the test directory nor /var/tmp accepts O_DIRECT";
		} else if (strcmp(be->name, "file-tmpfs") == 0) {
			if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC &&
			    dir_accepts("/dev/shm", 0)) {
				snprintf(shm, sizeof(shm), "/dev/shm");
				snprintf(be->dir, sizeof(be->dir), "%s", shm);
			} else {
				be->unavailable = "/dev/shm is not a writable tmpfs";
			}
		}
		if (be->unavailable)
			printf("SKIP %s: %s\n", be->name, be->unavailable);
		else if (be->dir[0])
			printf("%s: files in %s\n", be->name, be->dir);
	}
}

int main(void)
{
	const size_t nt = sizeof(table) / sizeof(table[0]);
	struct CMUnitTest rows[sizeof(table) / sizeof(table[0])];
	int failed = 0;

	suite_seed = test_seed("test_backends");
	place_file_rows();
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		memcpy(rows, table, sizeof(rows));
		for (size_t j = 0; j < nt; j++)
			rows[j].initial_state = &backends[i];
		/* cmocka does not print a group's name; say which row runs. */
		printf("== backend %s ==\n", backends[i].name);
		fflush(stdout);
		failed += _cmocka_run_group_tests(backends[i].name, rows, nt, NULL, NULL);
	}
	failed += cmocka_run_group_tests_name("thinp_io_new", handle_tests, NULL, NULL);
	test_tmpdir_cleanup();
	return failed ? 1 : 0;
}
