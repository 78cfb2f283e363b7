/*
 * The mapping cursor (cursor.h): each batch resolves both devices' subtree
 * roots under the handle's shared lock, runs the lock-step btree walk from
 * where the previous batch stopped, and folds its keys into runs. The run
 * being built when a batch ends stays in the cursor, so a run is delivered
 * whole whatever the batch size.
 */
#include "os/os.h"

#include "btree/diff.h"
#include "thin/cursor.h"
#include "thin/meta_internal.h"

#define ALL_FLAGS (THIN_CURSOR_SAME | THIN_CURSOR_SHARED | THIN_CURSOR_TIME)

struct thin_cursor {
	thinp_meta *meta;
	struct thin_cursor_dev dev[2];
	unsigned nr_sides;
	uint64_t held[2];   /* snapshot block a HELD_ROOT side was opened on */
	uint64_t sub[2];    /* subtree root each side had at the last batch */
	uint64_t pos, end;  /* the walk's next key; the clip */
	unsigned flags;
	bool done;          /* the walk reached end */
	bool have_pending;
	struct thin_run pending;
	/* the batch being filled */
	struct thin_run *out;
	size_t max, n;
};

static const char *side_name(const struct thin_cursor *c, unsigned side)
{
	return c->nr_sides == 1 ? "" : side ? "right " : "left ";
}

/* The subtree root of one side now. At open (`opening`) a missing device is
 * -ENODATA; later, a device gone or moved is -ESTALE (cursor.h). */
static int resolve_side(struct thin_cursor *c, unsigned side, bool opening, uint64_t *root)
{
	struct thinp_meta *meta = c->meta;
	const struct thin_cursor_dev *d = &c->dev[side];
	struct thin_sb sb;
	uint64_t sub;
	int r;

	if (d->source == THINP_META_HELD_ROOT) {
		if (opening)
			c->held[side] = thin_held_block_locked(meta);
		if (!c->held[side])
			return thin_err(meta, -ENODATA, "no metadata snapshot is held");
		if (thin_held_block_locked(meta) != c->held[side])
			return thin_err(meta, -ESTALE, "the metadata snapshot was released");
	}
	r = thin_read_source_sb_locked(meta, d->source, &sb);
	if (r)
		return r;
	r = thin_subtree_root_locked(meta, sb.data_mapping_root, d->dev, &sub);
	if (r == -ENODATA && !opening)
		r = -ESTALE;
	if (r)
		return thin_err(meta, r, "%sdevice %" PRIu64 ": %s", side_name(c, side), d->dev,
				r == -ENODATA ? "no such device" :
				r == -ESTALE ? "deleted during the walk" : thinp_strerror(r));
	if (!opening && sub != c->sub[side])
		return thin_err(meta, -ESTALE, "%sdevice %" PRIu64 " changed during the walk",
				side_name(c, side), d->dev);
	c->sub[side] = sub;
	*root = sub;
	return 0;
}

static int resolve(struct thin_cursor *c, bool opening, uint64_t roots[2])
{
	unsigned i;
	int r = 0;

	roots[1] = BTREE_DIFF_NO_TREE;
	for (i = 0; i < c->nr_sides && !r; i++)
		r = resolve_side(c, i, opening, &roots[i]);
	return r;
}

static bool has_left(enum thin_run_kind k)
{
	return k == THIN_RUN_LEFT_ONLY || k == THIN_RUN_DIFFERENT || k == THIN_RUN_SAME;
}

static bool has_right(enum thin_run_kind k)
{
	return k == THIN_RUN_RIGHT_ONLY || k == THIN_RUN_DIFFERENT || k == THIN_RUN_SAME;
}

/* Does r (one block, or a shared range) continue the pending run? */
static bool extends(const struct thin_cursor *c, const struct thin_run *r)
{
	const struct thin_run *p = &c->pending;

	if (p->kind != r->kind || r->begin != p->begin + p->length)
		return false;
	if (has_left(p->kind) && r->left_data != p->left_data + p->length)
		return false;
	if (has_right(p->kind) && r->right_data != p->right_data + p->length)
		return false;
	return !(c->flags & THIN_CURSOR_TIME) ||
	       (r->left_time == p->left_time && r->right_time == p->right_time);
}

/* Fold r in; > 0 when the batch is full (btree_diff stops after this key). */
static int add_run(struct thin_cursor *c, const struct thin_run *r)
{
	if (c->have_pending && extends(c, r)) {
		c->pending.length += r->length;
		return 0;
	}
	if (c->have_pending)
		c->out[c->n++] = c->pending;
	c->pending = *r;
	c->have_pending = true;
	return c->n == c->max;
}

static void decode(const void *v, uint64_t *data, uint32_t *time)
{
	uint64_t m = load_le64(v);

	*data = thin_mapping_block(m);
	*time = thin_mapping_time(m);
}

static int on_entry(void *ctx, uint64_t key, const void *va, const void *vb)
{
	struct thin_cursor *c = ctx;
	struct thin_run r = { .begin = key, .length = 1 };

	if (va)
		decode(va, &r.left_data, &r.left_time);
	if (vb)
		decode(vb, &r.right_data, &r.right_time);
	r.kind = !vb ? THIN_RUN_LEFT_ONLY : !va ? THIN_RUN_RIGHT_ONLY :
		 r.left_data == r.right_data ? THIN_RUN_SAME : THIN_RUN_DIFFERENT;
	if (r.kind == THIN_RUN_SAME && !(c->flags & THIN_CURSOR_SAME))
		return 0;
	return add_run(c, &r);
}

static int on_same(void *ctx, uint64_t begin, uint64_t end, uint64_t block)
{
	struct thin_cursor *c = ctx;
	struct thin_run r = { .begin = begin, .length = end - begin, .kind = THIN_RUN_SHARED };

	(void)block;
	return (c->flags & THIN_CURSOR_SHARED) ? add_run(c, &r) : 0;
}

static const struct btree_diff_ops cursor_ops = { .entry = on_entry, .same = on_same };

int thin_cursor_open(struct thin_cursor **out, thinp_meta *meta,
		     const struct thin_cursor_dev *left, const struct thin_cursor_dev *right,
		     uint64_t begin, uint64_t end, unsigned flags)
{
	struct thin_cursor *c;
	uint64_t roots[2];
	int r;

	if (!out || !left || (flags & ~ALL_FLAGS) || begin > end)
		return thin_err(meta, -EINVAL, "bad cursor arguments");
	c = thinp_os_zalloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct thin_cursor){ .meta = meta, .nr_sides = right ? 2 : 1, .pos = begin,
				   .end = end, .flags = flags };
	c->dev[0] = *left;
	if (right)
		c->dev[1] = *right;
	r = thin_rlock(meta);
	if (!r) {
		r = resolve(c, true, roots);
		thin_unlock(meta);
	}
	if (r) {
		thinp_os_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* One batch of the walk under the lock. */
static int walk_batch(struct thin_cursor *c)
{
	uint64_t roots[2];
	int r = thin_rlock(c->meta);

	if (r)
		return r;
	r = resolve(c, false, roots);
	if (!r)
		r = btree_diff(&c->meta->bl_info, roots[0], roots[1], c->pos, c->end,
			       (c->flags & THIN_CURSOR_SAME) != 0, &cursor_ops, c, &c->pos);
	thin_unlock(c->meta);
	if (r == 0)
		c->done = true;
	return r < 0 ? r : 0;
}

int thin_cursor_next(struct thin_cursor *c, struct thin_run *runs, size_t max, size_t *nr)
{
	int r = 0;

	if (!runs || !max || !nr)
		return -EINVAL;
	c->out = runs;
	c->max = max;
	c->n = 0;
	if (!c->done && c->pos < c->end)
		r = walk_batch(c);
	else
		c->done = true;
	if (!r && c->done && c->have_pending && c->n < c->max) {
		runs[c->n++] = c->pending;
		c->have_pending = false;
	}
	*nr = r ? 0 : c->n;
	return r;
}

uint64_t thin_cursor_position(const struct thin_cursor *c)
{
	if (c->have_pending)
		return c->pending.begin;
	return c->done ? c->end : c->pos;
}

void thin_cursor_close(struct thin_cursor *c)
{
	thinp_os_free(c);
}
