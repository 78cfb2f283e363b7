/*
 * The public delta (libthinp/delta.h): the cursor (cursor.h) over two
 * devices, its runs converted to thinp_delta_run. CHANGES_ONLY is the
 * cursor without SAME runs, where shared subtrees are skipped unread.
 */
#include "os/os.h"

#include "thin/cursor.h"
#include "thin/delta_internal.h"
#include "thin/meta_internal.h"
#include "util/compiler.h"

#define BATCH 256

struct thinp_delta {
	struct thin_cursor *cur;
	struct thin_delta_lock lock;
	struct thin_run runs[BATCH];
};

_Static_assert(THINP_DELTA_LIVE == THINP_META_LIVE, "one name for the live source");
_Static_assert(THINP_DELTA_HELD == THINP_META_HELD_ROOT, "one name for the held root");

static int copy_options(thinp_delta_options *o, const thinp_delta_options *opts)
{
	thinp_delta_options def = THINP_DELTA_OPTIONS_INIT;

	*o = def;
	if (!opts)
		return 0;
	/* 1.0's struct ends with `end`; later, larger ones are cut to ours. */
	if (opts->struct_size < offsetof(thinp_delta_options, end) + sizeof(o->end))
		return -EINVAL;
	memcpy(o, opts, THINP_MIN((size_t)opts->struct_size, sizeof(*o)));
	return (o->flags & ~THINP_DELTA_CHANGES_ONLY) || o->begin > o->end ? -EINVAL : 0;
}

int thin_delta_open(thinp_delta **out, thinp_meta *meta, uint64_t left, uint64_t right,
		    const thinp_delta_options *opts, const struct thin_delta_lock *lock)
{
	thinp_delta_options o;
	struct thin_cursor_dev l, r;
	struct thinp_delta *d;
	int e;

	if (!out || !meta)
		return -EINVAL;
	e = copy_options(&o, opts);
	if (e)
		return thin_err(meta, e, "bad delta options");
	d = thinp_os_zalloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (lock)
		d->lock = *lock;
	l = (struct thin_cursor_dev){ o.left_source, left };
	r = (struct thin_cursor_dev){ o.right_source, right };
	if (d->lock.lock)
		d->lock.lock(d->lock.ctx);
	e = thin_cursor_open(&d->cur, meta, &l, &r, o.begin, o.end,
			     (o.flags & THINP_DELTA_CHANGES_ONLY) ? 0 : THIN_CURSOR_SAME);
	if (d->lock.unlock)
		d->lock.unlock(d->lock.ctx);
	if (e) {
		thinp_os_free(d);
		return e;
	}
	*out = d;
	return 0;
}

int thinp_meta_delta_open(thinp_delta **out, thinp_meta *meta, uint64_t left, uint64_t right,
			  const thinp_delta_options *opts)
{
	return thin_delta_open(out, meta, left, right, opts, NULL);
}

static void export_run(const struct thin_run *in, thinp_delta_run *out)
{
	/* The cursor's kinds 1-4 are the public ones (SHARED is never asked for). */
	*out = (thinp_delta_run){
		.struct_size = sizeof(*out), .kind = in->kind, .virt_begin = in->begin,
		.length = in->length, .left_data = in->left_data, .right_data = in->right_data,
	};
}

int thinp_delta_next(thinp_delta *d, thinp_delta_run *runs, size_t max, size_t *nr)
{
	size_t i, n = 0;
	int r;

	if (!d || !runs || !max || !nr)
		return -EINVAL;
	if (max > BATCH)
		max = BATCH;
	if (d->lock.lock)
		d->lock.lock(d->lock.ctx);
	r = thin_cursor_next(d->cur, d->runs, max, &n);
	if (d->lock.unlock)
		d->lock.unlock(d->lock.ctx);
	for (i = 0; i < n; i++)
		export_run(&d->runs[i], &runs[i]);
	*nr = n;
	return r;
}

uint64_t thinp_delta_position(const thinp_delta *d)
{
	return d ? thin_cursor_position(d->cur) : 0;
}

void thinp_delta_close(thinp_delta *d)
{
	if (!d)
		return;
	thin_cursor_close(d->cur);
	thinp_os_free(d);
}

int thin_delta_drain(thinp_delta *d, thinp_delta_fn fn, void *ctx)
{
	/* A batch small enough for a kernel stack frame. */
	thinp_delta_run runs[16];
	size_t i, n;
	int r;

	if (!fn) {
		thinp_delta_close(d);
		return -EINVAL;
	}
	do {
		r = thinp_delta_next(d, runs, THINP_ARRAY_SIZE(runs), &n);
		for (i = 0; !r && i < n; i++)
			r = fn(&runs[i], ctx);
	} while (!r && n);
	thinp_delta_close(d);
	return r;
}

int thinp_meta_delta(thinp_meta *meta, uint64_t left, uint64_t right,
		     const thinp_delta_options *opts, thinp_delta_fn fn, void *ctx)
{
	thinp_delta *d;
	int r = thinp_meta_delta_open(&d, meta, left, right, opts);

	return r ? r : thin_delta_drain(d, fn, ctx);
}
