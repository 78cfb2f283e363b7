/*
 * The fault-injecting backend: SQLite's test VFS, for libthinp.
 *
 * It wraps another handle and does two things to it.
 *
 * Fail rules make chosen requests fail without effect: the n-th request of
 * some kinds (once, or from then on), or every request touching a byte range.
 *
 * Power loss is simulated with an overlay. A disk with a volatile cache may
 * persist, at a power loss, any subset of the writes it acknowledged since the
 * last cache flush, and may tear a multi-sector write. So the wrapper never
 * passes a write down when it is issued: it keeps it (with write-zeroes and
 * discards) in `pending`, in issue order, and lets reads see it. A flush
 * applies the pending requests to the lower device in order and flushes that.
 * A cut picks the survivors by mode, applies only them, and marks the state
 * dead, so every later request fails with -EIO. Whatever the lower device then
 * holds is exactly one state a real disk could have been left in.
 *
 * The state is shared by the wrapper handle and the control object and is
 * freed when both are released (`refs`), so neither outlives the other by
 * accident. One mutex guards all of it and is held across each request,
 * including the call to the lower device: the wrapper is a test tool, and
 * serializing makes its outcomes deterministic for a given seed.
 */
#include "os/os.h"

#include <libthinp/testing.h>
#include "util/compiler.h"

#define SECTOR 512u

/* A write, write-zeroes or discard waiting for the next flush. */
struct pending {
	uint64_t off;
	uint64_t len;
	unsigned kind;       /* THINP_IO_KIND_WRITE, _WRITE_ZEROES or _DISCARD */
	uint32_t flags;      /* THINP_IO_NO_UNMAP of a write-zeroes, for the lower device */
	unsigned char *data; /* the bytes of a WRITE, NULL otherwise */
};

/* A fail rule: by range if `len` is set, else "the n-th match". */
struct rule {
	uint32_t kinds;
	int err;
	uint64_t off;
	uint64_t len;
	uint64_t countdown; /* matches still to see before the failing one */
	bool persist;       /* keep failing after the n-th */
};

struct thinp_io_fault {
	thinp_os_mutex lock; /* guards every field below */
	int refs;             /* the wrapper handle and the control object */
	thinp_io *lower;      /* borrowed */
	uint32_t tear_unit;   /* granularity at which a write may tear */

	struct pending *pending;
	size_t nr_pending;
	size_t cap_pending;

	struct rule *rules;
	size_t nr_rules;
	size_t cap_rules;

	bool armed;
	uint64_t cut_countdown; /* write/flush requests left, the last one cuts */
	int cut_mode;
	uint64_t cut_seed;
	bool dead;

	uint64_t ops[THINP_IO_KIND_COUNT];
	uint64_t bytes[THINP_IO_KIND_COUNT];
};

/* splitmix64: tiny, and good enough to pick survivors. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void lock_state(const thinp_io_fault *f)
{
	thinp_os_mutex_lock((thinp_os_mutex *)&f->lock);
}

static void unlock_state(const thinp_io_fault *f)
{
	thinp_os_mutex_unlock((thinp_os_mutex *)&f->lock);
}

static void drop_pending(thinp_io_fault *f)
{
	for (size_t i = 0; i < f->nr_pending; i++)
		thinp_os_free(f->pending[i].data);
	f->nr_pending = 0;
}

static void unref(thinp_io_fault *f)
{
	bool last;

	lock_state(f);
	last = --f->refs == 0;
	unlock_state(f);
	if (!last)
		return;
	drop_pending(f);
	thinp_os_free(f->pending);
	thinp_os_free(f->rules);
	thinp_os_mutex_destroy(&f->lock);
	thinp_os_free(f);
}

static bool overlaps(uint64_t a_off, uint64_t a_len, uint64_t b_off, uint64_t b_len)
{
	return a_off < b_off + b_len && b_off < a_off + a_len;
}

/* Does one rule fail this request? Advances n-th countdowns as a side effect,
 * so every rule must see every request. */
static bool rule_fires(struct rule *ru, unsigned kind, bool ranged, uint64_t off,
		       uint64_t len)
{
	if (!(ru->kinds & THINP_IO_KIND_BIT(kind)))
		return false;
	if (ru->len)
		return ranged && overlaps(off, len, ru->off, ru->len);
	if (ru->countdown > 1) {
		ru->countdown--;
		return false;
	}
	if (ru->countdown == 1) {
		ru->countdown = 0;
		return true;
	}
	/* Past the n-th: only a persistent rule still fails. */
	return ru->persist;
}

/* Count a request and decide whether it may proceed: -EIO after the cut, a
 * rule's error, or 0. */
static int admit(thinp_io_fault *f, unsigned kind, bool ranged, uint64_t off,
		 uint64_t len)
{
	int err = 0;

	f->ops[kind]++;
	f->bytes[kind] += len;
	if (f->dead)
		return -EIO;
	for (size_t i = 0; i < f->nr_rules; i++)
		if (rule_fires(&f->rules[i], kind, ranged, off, len) && !err)
			err = f->rules[i].err;
	return err;
}

/* Called once per admitted write-like request or flush: is this the one
 * during which the power goes? */
static bool cut_due(thinp_io_fault *f)
{
	if (!f->armed || --f->cut_countdown)
		return false;
	f->armed = false;
	return true;
}

static int apply_one(thinp_io_fault *f, const struct pending *p, uint64_t len)
{
	int r;

	switch (p->kind) {
	case THINP_IO_KIND_WRITE:
		return thinp_io_write(f->lower, p->data, len, p->off, 0);
	case THINP_IO_KIND_WRITE_ZEROES:
		return thinp_io_write_zeroes(f->lower, len, p->off, p->flags);
	default:
		r = thinp_io_discard(f->lower, len, p->off, 0);
		/* A discard is advisory: the range may keep its old contents. */
		return r == -EOPNOTSUPP ? 0 : r;
	}
}

/* Apply every pending request in issue order. On an error the ones already
 * applied are removed and the rest stay pending for a retry. */
static int apply_pending(thinp_io_fault *f)
{
	size_t i;
	int r = 0;

	for (i = 0; i < f->nr_pending && !r; i++)
		r = apply_one(f, &f->pending[i], f->pending[i].len);
	if (r)
		i--;
	if (!i)
		return r;
	for (size_t j = 0; j < i; j++)
		thinp_os_free(f->pending[j].data);
	memmove(f->pending, f->pending + i, (f->nr_pending - i) * sizeof(*f->pending));
	f->nr_pending -= i;
	return r;
}

/* The first and last tear points strictly inside a pending write; false if
 * the write fits in one tear unit and cannot tear. */
static bool tear_points(const thinp_io_fault *f, const struct pending *p,
			uint64_t *first, uint64_t *count)
{
	uint64_t u = f->tear_unit;
	uint64_t lo = (p->off / u + 1) * u;
	uint64_t hi = (p->off + p->len - 1) / u * u;

	if (p->kind != THINP_IO_KIND_WRITE || lo > hi)
		return false;
	*first = lo;
	*count = (hi - lo) / u + 1;
	return true;
}

/* Choose the write to tear and how many of its bytes land; false if no
 * pending write can tear. */
static bool pick_torn(const thinp_io_fault *f, uint64_t *rng, size_t *idx,
		      uint64_t *keep)
{
	uint64_t first, count, eligible = 0, pick;
	size_t i;

	for (i = 0; i < f->nr_pending; i++)
		eligible += tear_points(f, &f->pending[i], &first, &count);
	if (!eligible)
		return false;
	pick = rng_next(rng) % eligible;
	for (i = 0; i < f->nr_pending; i++) {
		if (!tear_points(f, &f->pending[i], &first, &count) || pick--)
			continue;
		*idx = i;
		*keep = first + rng_next(rng) % count * f->tear_unit - f->pending[i].off;
		return true;
	}
	return false;
}

/* Resolve the unflushed requests by `mode` and kill the device. */
static int power_cut(thinp_io_fault *f, int mode, uint64_t seed)
{
	uint64_t rng = seed, torn_keep = 0;
	size_t torn = SIZE_MAX;
	int r = 0, r1;

	f->dead = true;
	f->armed = false;
	if (mode == THINP_IO_FAULT_CUT_TORN)
		pick_torn(f, &rng, &torn, &torn_keep);
	for (size_t i = 0; i < f->nr_pending; i++) {
		const struct pending *p = &f->pending[i];
		bool lands = mode == THINP_IO_FAULT_CUT_KEEP ||
			     (mode != THINP_IO_FAULT_CUT_DROP && (rng_next(&rng) & 1));

		if (i == torn)
			r1 = apply_one(f, p, torn_keep);
		else
			r1 = lands ? apply_one(f, p, p->len) : 0;
		if (r1 && !r)
			r = r1;
	}
	drop_pending(f);
	return r;
}

static int push_pending(thinp_io_fault *f, unsigned kind, const void *buf,
			uint64_t len, uint64_t off, uint32_t flags)
{
	struct pending p = { off, len, kind, flags, NULL };

	if (f->nr_pending == f->cap_pending) {
		size_t cap = f->cap_pending ? 2 * f->cap_pending : 64;
		struct pending *n = thinp_os_realloc(f->pending, f->cap_pending * sizeof(*n), cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		f->pending = n;
		f->cap_pending = cap;
	}
	if (kind == THINP_IO_KIND_WRITE) {
		/* Aligned so that an O_DIRECT device below needs no bounce. */
		if (len > SIZE_MAX || !(p.data = thinp_os_alloc_aligned(len, 4096)))
			return -ENOMEM;
		memcpy(p.data, buf, len);
	}
	f->pending[f->nr_pending++] = p;
	return 0;
}

/* Lay the pending requests over data just read from the lower device. */
static void overlay(const thinp_io_fault *f, unsigned char *buf, uint64_t len,
		    uint64_t off)
{
	for (size_t i = 0; i < f->nr_pending; i++) {
		const struct pending *p = &f->pending[i];
		uint64_t s, e;

		if (!overlaps(off, len, p->off, p->len))
			continue;
		s = THINP_MAX(off, p->off);
		e = THINP_MIN(off + len, p->off + p->len);
		if (p->data)
			memcpy(buf + (s - off), p->data + (s - p->off), e - s);
		else
			memset(buf + (s - off), 0, e - s);
	}
}

static int fault_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	thinp_io_fault *f = ctx;
	int r;

	lock_state(f);
	r = admit(f, THINP_IO_KIND_READ, true, off, len);
	if (!r)
		r = thinp_io_read(f->lower, buf, len, off, 0);
	if (!r)
		overlay(f, buf, len, off);
	unlock_state(f);
	return r;
}

/* A write, write-zeroes or discard: queue it, then maybe cut the power with
 * it in flight. The wrapper does not declare THINP_IO_CAP_FUA, so the handle
 * turns a FUA request into the request and a flush, which applies it. */
static int submit(thinp_io_fault *f, unsigned kind, const void *buf, uint64_t len,
		  uint64_t off, uint32_t flags)
{
	int r;

	lock_state(f);
	r = admit(f, kind, true, off, len);
	if (!r)
		r = push_pending(f, kind, buf, len, off, flags);
	if (!r && cut_due(f)) {
		power_cut(f, f->cut_mode, f->cut_seed);
		r = -EIO;
	}
	unlock_state(f);
	return r;
}

static int fault_write(void *ctx, const void *buf, uint64_t len, uint64_t off,
		       uint32_t flags)
{
	return submit(ctx, THINP_IO_KIND_WRITE, buf, len, off, 0);
}

static int fault_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	return submit(ctx, THINP_IO_KIND_DISCARD, NULL, len, off, 0);
}

static int fault_write_zeroes(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	return submit(ctx, THINP_IO_KIND_WRITE_ZEROES, NULL, len, off, flags);
}

static bool pending_over(const thinp_io_fault *f, uint64_t len, uint64_t off)
{
	for (size_t i = 0; i < f->nr_pending; i++)
		if (overlaps(off, len, f->pending[i].off, f->pending[i].len))
			return true;
	return false;
}

/* A query, not a request: no rule or counter sees it. Where something is
 * pending over the range the answer is "may hold data", which is always
 * true; elsewhere the lower device holds what a read would see. */
static int fault_is_zero(void *ctx, uint64_t len, uint64_t off)
{
	thinp_io_fault *f = ctx;
	int r = 0;

	lock_state(f);
	if (f->dead)
		r = -EIO;
	else if (!pending_over(f, len, off))
		r = thinp_io_is_zero(f->lower, len, off);
	unlock_state(f);
	return r;
}

static int fault_flush(void *ctx)
{
	thinp_io_fault *f = ctx;
	int r;

	lock_state(f);
	r = admit(f, THINP_IO_KIND_FLUSH, false, 0, 0);
	if (!r && cut_due(f)) {
		power_cut(f, f->cut_mode, f->cut_seed);
		r = -EIO;
	}
	if (!r)
		r = apply_pending(f);
	if (!r)
		r = thinp_io_flush(f->lower);
	unlock_state(f);
	return r;
}

static int fault_size(void *ctx, uint64_t *bytes)
{
	thinp_io_fault *f = ctx;

	return thinp_io_size(f->lower, bytes);
}

/* Clip pending requests to a shrunk device, so the next flush does not
 * write past its end. */
static void clip_pending(thinp_io_fault *f, uint64_t size)
{
	size_t j = 0;

	for (size_t i = 0; i < f->nr_pending; i++) {
		struct pending *p = &f->pending[i];

		if (p->off >= size) {
			thinp_os_free(p->data);
			continue;
		}
		p->len = THINP_MIN(p->len, size - p->off);
		f->pending[j++] = *p;
	}
	f->nr_pending = j;
}

static int fault_resize(void *ctx, uint64_t bytes)
{
	thinp_io_fault *f = ctx;
	int r = -EIO;

	lock_state(f);
	if (!f->dead)
		r = thinp_io_resize(f->lower, bytes);
	if (!r)
		clip_pending(f, bytes);
	unlock_state(f);
	return r;
}

/* Ownership is the lower device's: a test "reboots" onto it, and the lock
 * must be the same one. Not an I/O request: it works after a cut too. */
static int fault_lock(void *ctx, uint32_t how)
{
	thinp_io_fault *f = ctx;

	return thinp_io_lock(f->lower, how);
}

static void fault_close(void *ctx)
{
	unref(ctx);
}

int thinp_io_open_fault(thinp_io **out, thinp_io_fault **fault, thinp_io *lower,
			uint32_t flags)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io_fault *f;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (fault)
		*fault = NULL;
	if (!lower || (flags & ~(uint32_t)THINP_IO_RDONLY))
		return -EINVAL;
	f = thinp_os_zalloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	thinp_os_mutex_init(&f->lock);
	f->lower = lower;
	f->refs = fault ? 2 : 1;
	f->tear_unit = THINP_MAX(SECTOR, thinp_io_align(lower));
	ops.caps = (thinp_io_caps(lower) &
		    (THINP_IO_CAP_DISCARD | THINP_IO_CAP_DISCARD_ZEROES)) |
		   THINP_IO_CAP_WRITE_ZEROES | THINP_IO_CAP_THREADSAFE;
	ops.align = thinp_io_align(lower);
	ops.read = fault_read;
	ops.write = fault_write;
	ops.flush = fault_flush;
	ops.size = fault_size;
	ops.discard = fault_discard;
	ops.write_zeroes = fault_write_zeroes;
	ops.close = fault_close;
	ops.resize = fault_resize;
	ops.lock = fault_lock;
	ops.is_zero = fault_is_zero;
	r = thinp_io_new(out, &ops, f, flags);
	if (r) {
		thinp_os_mutex_destroy(&f->lock);
		thinp_os_free(f);
		return r;
	}
	if (fault)
		*fault = f;
	return 0;
}

void thinp_io_fault_free(thinp_io_fault *fault)
{
	if (fault)
		unref(fault);
}

static int add_rule(thinp_io_fault *f, const struct rule *ru)
{
	int r = 0;

	lock_state(f);
	if (f->nr_rules == f->cap_rules) {
		size_t cap = f->cap_rules ? 2 * f->cap_rules : 8;
		struct rule *n = thinp_os_realloc(f->rules, f->cap_rules * sizeof(*n), cap * sizeof(*n));

		if (n) {
			f->rules = n;
			f->cap_rules = cap;
		} else {
			r = -ENOMEM;
		}
	}
	if (!r)
		f->rules[f->nr_rules++] = *ru;
	unlock_state(f);
	return r;
}

static bool bad_kinds(uint32_t kinds)
{
	return kinds & ~(uint32_t)THINP_IO_KIND_ALL;
}

int thinp_io_fault_fail_nth(thinp_io_fault *fault, uint32_t kinds, uint64_t n,
			    int err, uint32_t flags)
{
	struct rule ru = { 0 };

	if (!fault || !n || err >= 0 || bad_kinds(kinds) ||
	    (flags & ~(uint32_t)THINP_IO_FAULT_PERSIST))
		return -EINVAL;
	ru.kinds = kinds ? kinds : THINP_IO_KIND_ALL;
	ru.err = err;
	ru.countdown = n;
	ru.persist = flags & THINP_IO_FAULT_PERSIST;
	return add_rule(fault, &ru);
}

int thinp_io_fault_fail_range(thinp_io_fault *fault, uint32_t kinds, uint64_t off,
			      uint64_t len, int err)
{
	struct rule ru = { 0 };

	if (!fault || !len || off + len < off || err >= 0 || bad_kinds(kinds))
		return -EINVAL;
	ru.kinds = kinds ? kinds : THINP_IO_KIND_ALL;
	ru.err = err;
	ru.off = off;
	ru.len = len;
	return add_rule(fault, &ru);
}

void thinp_io_fault_clear(thinp_io_fault *fault)
{
	if (!fault)
		return;
	lock_state(fault);
	fault->nr_rules = 0;
	unlock_state(fault);
}

static bool bad_mode(int mode)
{
	return mode < THINP_IO_FAULT_CUT_DROP || mode > THINP_IO_FAULT_CUT_TORN;
}

int thinp_io_fault_arm_cut(thinp_io_fault *fault, uint64_t n, int mode, uint64_t seed)
{
	if (!fault || !n || bad_mode(mode))
		return -EINVAL;
	lock_state(fault);
	fault->armed = !fault->dead;
	fault->cut_countdown = n;
	fault->cut_mode = mode;
	fault->cut_seed = seed;
	unlock_state(fault);
	return 0;
}

int thinp_io_fault_cut(thinp_io_fault *fault, int mode, uint64_t seed)
{
	int r = 0;

	if (!fault || bad_mode(mode))
		return -EINVAL;
	lock_state(fault);
	if (!fault->dead)
		r = power_cut(fault, mode, seed);
	unlock_state(fault);
	return r;
}

int thinp_io_fault_cut_fired(const thinp_io_fault *fault)
{
	int dead;

	if (!fault)
		return 0;
	lock_state(fault);
	dead = fault->dead;
	unlock_state(fault);
	return dead;
}

uint64_t thinp_io_fault_pending(const thinp_io_fault *fault)
{
	uint64_t n;

	if (!fault)
		return 0;
	lock_state(fault);
	n = fault->nr_pending;
	unlock_state(fault);
	return n;
}

int thinp_io_fault_counters(const thinp_io_fault *fault, unsigned kind,
			    uint64_t *ops, uint64_t *bytes)
{
	if (!fault || kind >= THINP_IO_KIND_COUNT)
		return -EINVAL;
	lock_state(fault);
	if (ops)
		*ops = fault->ops[kind];
	if (bytes)
		*bytes = fault->bytes[kind];
	unlock_state(fault);
	return 0;
}

void thinp_io_fault_reset_counters(thinp_io_fault *fault)
{
	if (!fault)
		return;
	lock_state(fault);
	memset(fault->ops, 0, sizeof(fault->ops));
	memset(fault->bytes, 0, sizeof(fault->bytes));
	unlock_state(fault);
}
