/*
 * Lock-step walk of two btrees (diff.h explains the method and its cost).
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/diff.h"
#include "btree/node.h"
#include "util/compiler.h"
#include "util/log.h"

/* One node on a side's path: entries before i are done. */
struct frame {
	struct block *blk;
	const void *n;
	uint64_t b;
	uint64_t hi;     /* every key below this node is < hi (BTREE_DIFF_END: none) */
	uint32_t i, nr;
	unsigned height; /* 0 = leaf */
};

struct side {
	const struct level *lv;
	struct frame f[BTREE_MAX_DEPTH];
	int top;         /* -1: past the last key */
	bool have_last;
	uint64_t last;   /* last key reported, to refuse keys out of order */
};

struct diff {
	const struct btree_diff_ops *ops;
	void *ctx;
	bool expand_same;
	uint64_t p;      /* every key < p is reported on both sides */
	uint64_t end;
	struct side s[2];
};

static int corrupt(const struct side *s, uint64_t b, const char *why)
{
	return THINP_CORRUPT(level_log(s->lv), b, "btree", why);
}

static void side_release(struct side *s)
{
	for (; s->top >= 0; s->top--)
		tm_unlock(s->lv->tm, s->f[s->top].blk);
}

/* Read node b at `height` below the root (root: is_root) and push it. */
static int push(struct side *s, uint64_t b, unsigned height, uint64_t hi, bool is_root)
{
	struct frame *f;
	struct block *blk;
	int r;

	if (s->top + 1 >= BTREE_MAX_DEPTH)
		return corrupt(s, b, "tree too deep (cycle?)");
	r = level_read_node(s->lv, b, is_root, &blk);
	if (r)
		return r;
	if (node_is_leaf(block_data(blk)) != (height == 0)) {
		tm_unlock(s->lv->tm, blk);
		return corrupt(s, b, "leaves at different depths");
	}
	f = &s->f[++s->top];
	*f = (struct frame){ .blk = blk, .n = block_data(blk), .b = b, .hi = hi,
			     .nr = node_nr(block_data(blk)), .height = height };
	return 0;
}

/* The tree's height: one leftmost descent (these nodes are read again by the
 * seek right after, from the cache). */
static int tree_height(struct side *s, uint64_t root, unsigned *height)
{
	struct block *blk, *child;
	unsigned h = 0;
	int r;

	r = level_read_node(s->lv, root, true, &blk);
	while (!r && !node_is_leaf(block_data(blk))) {
		if (++h >= BTREE_MAX_DEPTH) {
			tm_unlock(s->lv->tm, blk);
			return corrupt(s, root, "tree too deep (cycle?)");
		}
		r = level_read_node(s->lv, node_value64(block_data(blk), 0), false, &child);
		tm_unlock(s->lv->tm, blk);
		blk = child;
	}
	if (r)
		return r;
	tm_unlock(s->lv->tm, blk);
	*height = h;
	return 0;
}

/* Leave the nodes whose entries are all done, moving their parents on. */
static void normalize(struct side *s)
{
	while (s->top >= 0 && s->f[s->top].i >= s->f[s->top].nr) {
		tm_unlock(s->lv->tm, s->f[s->top].blk);
		if (--s->top >= 0)
			s->f[s->top].i++;
	}
}

/* Step past the current entry. */
static void advance(struct side *s)
{
	s->f[s->top].i++;
	normalize(s);
}

/* Leave the current node whole (its remaining entries are accounted for). */
static void leave_node(struct side *s)
{
	s->f[s->top].i = s->f[s->top].nr;
	normalize(s);
}

static uint64_t child_hi(const struct frame *f)
{
	return f->i + 1 < f->nr ? node_key(f->n, f->i + 1) : f->hi;
}

/* Whether node g points at `block` for `key` (the walk then steps over
 * it). *j is g's entry for the previous, smaller key (-1: before g's first
 * entry), moved on to key's. */
static bool points_at(const struct frame *g, int *j, uint64_t key, uint64_t block)
{
	while ((uint32_t)(*j + 1) < g->nr && node_key(g->n, (uint32_t)(*j + 1)) <= key)
		++*j;
	return *j >= 0 && node_value64(g->n, (uint32_t)*j) == block;
}

/*
 * Before descending into the current child of s: the children after it
 * whose blocks follow it on disk and that the walk will read too are read
 * with it in one device read (bm_prefetch), instead of one read each. A
 * snapshot's origin keeps its nodes where they were written, side by side,
 * so a delta where nearly every leaf differs reads the origin's leaves in
 * long runs. Without expand_same, a child the other side's node at this
 * height also points at will be stepped over unread, so the run stops
 * there; when the other side's node is at another height that is not
 * known, and nothing is read ahead. Called for both sides before either
 * descends. Only this node's own children are read,
 * so every block read is reachable from the root being walked (a snapshot-
 * only handle reads nothing else), and each is checked when locked.
 */
static void read_ahead(const struct diff *d, const struct side *s)
{
	const struct frame *f = &s->f[s->top];
	const struct side *o = &d->s[s == &d->s[0]];
	const struct frame *g = o->top >= 0 ? &o->f[o->top] : NULL;
	uint64_t first = node_value64(f->n, f->i);
	uint32_t n = 1;
	int j;

	if (!d->expand_same && g && g->height != f->height)
		return;
	if (d->expand_same)
		g = NULL;
	j = g ? node_lower(g->n, node_key(f->n, f->i)) : -1;
	while (n < BM_PREFETCH_MAX && f->i + n < f->nr && node_key(f->n, f->i + n) < d->end &&
	       node_value64(f->n, f->i + n) == first + n &&
	       !(g && points_at(g, &j, node_key(f->n, f->i + n), first + n)))
		n++;
	if (n > 1)
		bm_prefetch(tm_bm(s->lv->tm), first, n);
}

static int descend(struct side *s)
{
	const struct frame *f = &s->f[s->top];

	return push(s, node_value64(f->n, f->i), f->height - 1, child_hi(f), false);
}

/* Open the path to the first key >= key. */
static int seek(struct side *s, uint64_t root, uint64_t key)
{
	unsigned height = 0;
	int r, i;

	s->top = -1;
	if (root == BTREE_DIFF_NO_TREE)
		return 0;
	r = tree_height(s, root, &height);
	if (!r)
		r = push(s, root, height, BTREE_DIFF_END, true);
	while (!r && s->f[s->top].height > 0) {
		struct frame *f = &s->f[s->top];

		i = node_lower(f->n, key);
		f->i = i < 0 ? 0 : (uint32_t)i;
		r = descend(s);
	}
	if (r)
		return r;
	s->f[s->top].i = node_first_ge(s->f[s->top].n, key);
	normalize(s);
	return 0;
}

/* Height of the current entry: -1 for a key, -2 past the end (or at/after
 * the clip), else the height of the child it points at. */
static int entry_height(const struct diff *d, const struct side *s)
{
	const struct frame *f;

	if (s->top < 0)
		return -2;
	f = &s->f[s->top];
	if (node_key(f->n, f->i) >= d->end)
		return -2;
	return f->height ? (int)f->height - 1 : -1;
}

static uint64_t min3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* [p, up to) is the same on both sides. Returns the callback's verdict. */
static int report_same(struct diff *d, uint64_t upto, uint64_t block)
{
	uint64_t from = d->p;

	d->p = upto > from ? upto : from;
	return d->ops->same && from < upto ? d->ops->same(d->ctx, from, upto, block) : 0;
}

/* The current nodes are one block: the rest of it is identical. */
static int skip_same_node(struct diff *d)
{
	struct frame *fa = &d->s[0].f[d->s[0].top], *fb = &d->s[1].f[d->s[1].top];
	uint64_t b = fa->b, upto = min3(fa->hi, fb->hi, d->end);

	leave_node(&d->s[0]);
	leave_node(&d->s[1]);
	return report_same(d, upto, b);
}

static int skip_same_child(struct diff *d)
{
	struct frame *fa = &d->s[0].f[d->s[0].top], *fb = &d->s[1].f[d->s[1].top];
	uint64_t b = node_value64(fa->n, fa->i), upto = min3(child_hi(fa), child_hi(fb), d->end);

	advance(&d->s[0]);
	advance(&d->s[1]);
	return report_same(d, upto, b);
}

static const void *peek(const struct side *s, uint64_t *key)
{
	const struct frame *f = &s->f[s->top];

	*key = node_key(f->n, f->i);
	return node_value(f->n, f->i);
}

static int check_order(struct side *s, uint64_t key)
{
	if (s->have_last && key <= s->last)
		return corrupt(s, s->f[s->top].b, "keys out of order across leaves");
	s->have_last = true;
	s->last = key;
	return 0;
}

/* Both sides are at keys (or one is done): report the smaller. The values
 * point into the locked leaves, so the callback runs before moving on. */
static int merge_keys(struct diff *d, bool a_key, bool b_key)
{
	uint64_t ka = 0, kb = 0, k;
	const void *va = a_key ? peek(&d->s[0], &ka) : NULL;
	const void *vb = b_key ? peek(&d->s[1], &kb) : NULL;
	int r = 0;

	if (va && vb && ka != kb) {
		if (ka < kb)
			vb = NULL;
		else
			va = NULL;
	}
	k = va ? ka : kb;
	if (va)
		r = check_order(&d->s[0], k);
	if (!r && vb)
		r = check_order(&d->s[1], k);
	if (r)
		return r;
	r = d->ops->entry(d->ctx, k, va, vb);
	if (va)
		advance(&d->s[0]);
	if (vb)
		advance(&d->s[1]);
	d->p = k + 1;
	return r;
}

/*
 * How many of the n entries of `size` bytes at a and b are byte for byte
 * equal, in order. Whole chunks go through memcmp (vectorised in libc): the
 * leaves compared are copies with a few entries changed, so most chunks agree.
 */
static uint32_t equal_prefix(const char *a, const char *b, uint32_t n, uint32_t size)
{
	const size_t chunk = 256;
	size_t len = (size_t)n * size, off = 0;

	while (off + chunk <= len && !memcmp(a + off, b + off, chunk))
		off += chunk;
	for (uint64_t x, y; off + 8 <= len; off += 8) {
		memcpy(&x, a + off, 8);
		memcpy(&y, b + off, 8);
		if (x != y)
			break;
	}
	while (off < len && a[off] == b[off])
		off++;
	return (uint32_t)(off / size);
}

/*
 * Both sides at leaf entries in leaves that differ (a leaf a snapshot copied
 * and then changed in a few entries): pass over the stretch whose keys and
 * value bytes agree, with no callback per entry. Equal keys are equal bytes
 * (one encoding), so keys and values are compared as byte arrays. Keys
 * increase within a validated node, so checking the first against the
 * previous leaf's orders the whole stretch. *moved says whether it passed
 * over anything.
 */
static int skip_identical(struct diff *d, bool *moved)
{
	struct frame *fa = &d->s[0].f[d->s[0].top], *fb = &d->s[1].f[d->s[1].top];
	uint32_t vsize = node_vsize(fa->n), n = THINP_MIN(fa->nr - fa->i, fb->nr - fb->i), k;
	uint64_t last;
	int r;

	*moved = false;
	if (vsize != node_vsize(fb->n))
		return 0;
	/* Values first: they are what a copied leaf changed, so they bound
	 * the stretch soonest, and keys are compared only that far. */
	k = equal_prefix(node_value(fa->n, fa->i), node_value(fb->n, fb->i), n, vsize);
	if (k)
		k = equal_prefix((const char *)fa->n + BTREE_HEADER_SIZE + 8u * fa->i,
				 (const char *)fb->n + BTREE_HEADER_SIZE + 8u * fb->i, k, 8);
	/* Keys increase: only a stretch reaching the clip needs cutting. */
	if (k && node_key(fa->n, fa->i + k - 1) >= d->end)
		k = node_first_ge(fa->n, d->end) - fa->i;
	if (!k)
		return 0;
	r = check_order(&d->s[0], node_key(fa->n, fa->i));
	if (!r)
		r = check_order(&d->s[1], node_key(fb->n, fb->i));
	if (r)
		return r;
	last = node_key(fa->n, fa->i + k - 1);
	d->s[0].last = d->s[1].last = last;
	fa->i += k;
	fb->i += k;
	normalize(&d->s[0]);
	normalize(&d->s[1]);
	d->p = last + 1;
	*moved = true;
	return 0;
}

static bool same_top_node(const struct diff *d)
{
	const struct side *a = &d->s[0], *b = &d->s[1];

	return a->top >= 0 && b->top >= 0 && a->f[a->top].b == b->f[b->top].b &&
	       a->f[a->top].i == b->f[b->top].i;
}

static bool same_child(const struct diff *d, int ha, int hb)
{
	const struct frame *fa = &d->s[0].f[d->s[0].top], *fb = &d->s[1].f[d->s[1].top];

	return ha >= 0 && hb >= 0 && node_value64(fa->n, fa->i) == node_value64(fb->n, fb->i);
}

/* One step of the walk (diff.h); 0 to go on, > 0 stop, < 0 error. */
static int step(struct diff *d)
{
	int ha = entry_height(d, &d->s[0]), hb = entry_height(d, &d->s[1]);
	int h = ha > hb ? ha : hb, r = 0;

	if (!d->expand_same && ha > -2 && hb > -2) {
		bool moved;

		if (same_top_node(d))
			return skip_same_node(d);
		if (same_child(d, ha, hb))
			return skip_same_child(d);
		if (ha == -1 && hb == -1 && ((r = skip_identical(d, &moved)) || moved))
			return r;
	}
	if (h >= 0) {
		/* Both before either descends: each looks at the other's node. */
		if (ha == h)
			read_ahead(d, &d->s[0]);
		if (hb == h)
			read_ahead(d, &d->s[1]);
		if (ha == h)
			r = descend(&d->s[0]);
		if (!r && hb == h)
			r = descend(&d->s[1]);
		return r;
	}
	return merge_keys(d, ha == -1, hb == -1);
}

int btree_diff(struct btree_info *info, uint64_t a, uint64_t b, uint64_t begin, uint64_t end,
	       bool expand_same, const struct btree_diff_ops *ops, void *ctx, uint64_t *next)
{
	struct level lv;
	/* On the heap: two paths of frames are 2.5 KiB, too much for a
	 * kernel stack frame. */
	struct diff *d = thinp_os_zalloc(sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	*d = (struct diff){ .ops = ops, .ctx = ctx, .expand_same = expand_same, .p = begin,
			    .end = end };
	r = level_init(&lv, info, 0);
	d->s[0].lv = d->s[1].lv = &lv;
	d->s[0].top = d->s[1].top = -1;
	if (!r)
		r = seek(&d->s[0], a, begin);
	if (!r)
		r = seek(&d->s[1], b, begin);
	while (!r && (entry_height(d, &d->s[0]) > -2 || entry_height(d, &d->s[1]) > -2))
		r = step(d);
	if (!r && d->p < end)
		d->p = end;
	*next = d->p;
	side_release(&d->s[0]);
	side_release(&d->s[1]);
	thinp_os_free(d);
	return r < 0 ? r : r > 0;
}
