/*
 * The full metadata check (thinp_meta_check_io), stricter than thin_check
 * 0.9.0 (FORMAT.md 13).
 *
 * Method: the checker shares no code with the writer above the CRC. It reads
 * raw blocks from the io, verifies each block type's checksum and location
 * itself, and walks everything reachable from the superblock and from the
 * held metadata snapshot, applying every node rule of FORMAT.md 4.4. While
 * walking it recomputes what the space maps must say:
 *
 *  - metadata counts: one per pointer held in a distinct place (7.1) — the
 *    superblock roots, internal-node children, top-level subtree roots, index
 *    entries — where a node reached again is counted but not descended again;
 *  - data counts: one per mapping in each distinct physical leaf (7.2);
 *  - mapped_blocks: the number of keys under each device's subtree root,
 *    memoised per node so shared subtrees are not walked twice.
 *
 * Then it decodes both space maps (index, bitmaps, overflow trees) itself and
 * compares every count, and nr_allocated. Every problem becomes one finding;
 * the check goes on after a problem whenever the structure allows. A finding
 * is an error unless nothing reads what is wrong (padding, hints) or a known
 * writer's harmless artefact explains it: those are warnings, which leave
 * the verdict clean, so that the check and a read-write open agree.
 */
#include "os/os.h"

#include "thin/meta_internal.h"
#include "util/abi_struct.h"

#define NODE_INTERNAL 1u
#define NODE_LEAF 2u
#define NODE_HEADER 32u
#define MAX_DEPTH 16u
#define ENTRIES_PER_BITMAP 16320u
#define MAX_INDEX_ENTRIES 255u

enum tree_kind {
	KIND_NONE = 0,
	KIND_DETAILS,  /* device details: 24-byte values */
	KIND_TOP,      /* mapping top level: subtree roots */
	KIND_BOTTOM,   /* a device's mappings: block/time */
	KIND_DINDEX,   /* data space-map index: 16-byte index entries */
	KIND_RC,       /* ref-count overflow tree: le32 counts */
	/* Blocks that are not btree nodes; each has exactly one owner. */
	KIND_SNAPSHOT, /* a metadata-snapshot superblock */
	KIND_INDEX,    /* the metadata space map's index block */
	KIND_BITMAP,   /* a space-map bitmap */
};

static const uint32_t leaf_value_size[] = {
	[KIND_DETAILS] = 24, [KIND_TOP] = 8, [KIND_BOTTOM] = 8, [KIND_DINDEX] = 16, [KIND_RC] = 4,
};

static const char *const kind_name[] = {
	[KIND_NONE] = "?", [KIND_DETAILS] = "details tree", [KIND_TOP] = "mapping tree",
	[KIND_BOTTOM] = "device mapping tree", [KIND_DINDEX] = "data space map index",
	[KIND_RC] = "ref-count tree", [KIND_SNAPSHOT] = "metadata snapshot",
	[KIND_INDEX] = "metadata space map index", [KIND_BITMAP] = "space map bitmap",
};

struct u64_vec {
	uint64_t *v;
	size_t n, cap;
};

/* (key, value) pairs: device ids with counts/details, ref-count entries... */
struct kv {
	uint64_t key, a, b;
	struct thin_details d;
};

struct kv_vec {
	struct kv *v;
	size_t n, cap;
};

struct checker {
	thinp_io *io;
	const struct tlog *log;
	thinp_meta_finding_fn fn;
	void *ctx;
	unsigned errors;
	int fatal;               /* an error that stops the check (-EIO, -ENOMEM) */

	uint64_t nr_dev_blocks;  /* whole blocks on the device */
	uint64_t nr_meta;        /* metadata space map size */
	uint64_t nr_data;        /* data space map size */
	uint32_t *meta_refs;     /* expected metadata counts, [nr_meta] */
	uint64_t *nkeys;         /* per node: keys in its subtree (memo) */
	uint8_t *kind;           /* per node: the tree kind it was walked as */
	struct u64_vec data_refs; /* one entry per mapping in a distinct leaf */
};

/* What one walk collects at its leaves. */
struct walk {
	enum tree_kind kind;
	const char *what;        /* for messages: "details tree", "device 3" ... */
	int leaf_depth;          /* -1 until the first leaf */
	struct kv_vec *out;      /* leaf entries (details, top, dindex, rc) */
};

#define LINE_MAX_CHARS 512
#define WARNING_PREFIX "warning: "

static void emit(struct checker *ck, uint32_t severity, const char *fmt, va_list ap)
	THINP_PRINTF(3, 0);

static void emit(struct checker *ck, uint32_t severity, const char *fmt, va_list ap)
{
	char line[LINE_MAX_CHARS];
	thinp_meta_finding f = { sizeof(f), severity, line };

	thinp_os_vsnprintf(line, sizeof(line), fmt, ap);
	if (severity == THINP_META_CHECK_ERROR)
		ck->errors++;
	if (ck->fn)
		ck->fn(&f, ck->ctx);
	tlog(ck->log, THINP_LOG_DEBUG, "check: %s%s",
	     severity == THINP_META_CHECK_WARNING ? WARNING_PREFIX : "", line);
}

/* An error: the check fails. */
static void report(struct checker *ck, const char *fmt, ...) THINP_PRINTF(2, 3);

static void report(struct checker *ck, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(ck, THINP_META_CHECK_ERROR, fmt, ap);
	va_end(ap);
}

/* A warning (THINP_META_CHECK_WARNING): harmless, the verdict stays clean. */
static void warn(struct checker *ck, const char *fmt, ...) THINP_PRINTF(2, 3);

static void warn(struct checker *ck, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(ck, THINP_META_CHECK_WARNING, fmt, ap);
	va_end(ap);
}

static int push_u64(struct checker *ck, struct u64_vec *v, uint64_t x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 1024;
		uint64_t *n = thinp_os_realloc(v->v, v->cap * sizeof(*n), cap * sizeof(*n));

		if (!n)
			return ck->fatal = -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = x;
	return 0;
}

static int push_kv(struct checker *ck, struct kv_vec *v, const struct kv *x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 64;
		struct kv *n = thinp_os_realloc(v->v, v->cap * sizeof(*n), cap * sizeof(*n));

		if (!n)
			return ck->fatal = -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = *x;
	return 0;
}

/* ---- raw blocks ------------------------------------------------------------- */

/* Read block b; bounds-checked against the metadata size. Returns 0, or -1
 * after reporting (or a fatal error). */
static int read_raw(struct checker *ck, uint64_t b, void *buf, const char *what)
{
	int r;

	if (b >= ck->nr_meta || b >= ck->nr_dev_blocks) {
		report(ck, "%s: block %" PRIu64 " is beyond the metadata device (%" PRIu64
		       " blocks)", what, b, ck->nr_meta);
		return -1;
	}
	r = thinp_io_read(ck->io, buf, THINP_BLOCK_SIZE, b << THINP_BLOCK_SHIFT, 0);
	if (r) {
		ck->fatal = r;
		return -1;
	}
	return 0;
}

/* Checksum with the type's salt and the self-location at offset 8. */
static int check_stamp(struct checker *ck, uint64_t b, const uint8_t *buf, uint32_t salt,
		       const char *what)
{
	if (load_le32(buf) != block_csum(buf, salt)) {
		report(ck, "%s: block %" PRIu64 ": checksum mismatch", what, b);
		return -1;
	}
	if (load_le64(buf + 8) != b) {
		report(ck, "%s: block %" PRIu64 ": records location %" PRIu64, what, b,
		       load_le64(buf + 8));
		return -1;
	}
	return 0;
}

/* Count one pointer to b. Returns true if b is seen for the first time (and
 * should be walked). */
static bool ref_meta(struct checker *ck, uint64_t b, const char *what)
{
	if (b >= ck->nr_meta) {
		report(ck, "%s: pointer to block %" PRIu64 " beyond the metadata space map (%"
		       PRIu64 " blocks)", what, b, ck->nr_meta);
		return false;
	}
	if (b == THIN_SUPERBLOCK_LOCATION && ck->meta_refs[b]) {
		report(ck, "%s: pointer to the superblock (block 0)", what);
		return false;
	}
	return ck->meta_refs[b]++ == 0;
}

/*
 * Count the pointer to a block that only one pointer may name (a snapshot
 * superblock, an index block, a bitmap) and record what it is. Returns true
 * if b is to be read; a block already in use is reported here, since nothing
 * else would notice that it is not what this pointer expects.
 */
static bool claim_block(struct checker *ck, uint64_t b, enum tree_kind kind, const char *what)
{
	if (ref_meta(ck, b, what)) {
		ck->kind[b] = (uint8_t)kind;
		return true;
	}
	if (b < ck->nr_meta && b != THIN_SUPERBLOCK_LOCATION)
		report(ck, "%s: block %" PRIu64 " is already used in a %s", what, b,
		       kind_name[ck->kind[b]]);
	return false;
}

/* ---- btree nodes -------------------------------------------------------------- */

struct node {
	uint64_t b;
	uint32_t flags, nr, max, vsize;
	const uint8_t *keys, *values;
};

static uint32_t expected_max(uint32_t vsize)
{
	return 3 * (((THINP_BLOCK_SIZE - NODE_HEADER) / (8 + vsize)) / 3);
}

/* FORMAT.md 4.4 rules 1-8 for one node. */
static int check_node(struct checker *ck, const struct walk *w, uint64_t b, const uint8_t *buf,
		      bool is_root, struct node *n)
{
	uint32_t want;
	uint32_t i;

	if (check_stamp(ck, b, buf, THIN_BTREE_CSUM_SALT, w->what))
		return -1;
	n->b = b;
	n->flags = load_le32(buf + 4);
	n->nr = load_le32(buf + 16);
	n->max = load_le32(buf + 20);
	n->vsize = load_le32(buf + 24);
	if (n->flags != NODE_INTERNAL && n->flags != NODE_LEAF) {
		report(ck, "%s: node %" PRIu64 ": flags %#x (need exactly one of internal/leaf)",
		       w->what, b, n->flags);
		return -1;
	}
	want = n->flags == NODE_INTERNAL ? 8 : leaf_value_size[w->kind];
	if (n->vsize != want) {
		report(ck, "%s: node %" PRIu64 ": value size %u, expected %u", w->what, b,
		       n->vsize, want);
		return -1;
	}
	if (n->max != expected_max(want)) {
		report(ck, "%s: node %" PRIu64 ": max_entries %u, expected %u", w->what, b,
		       n->max, expected_max(want));
		return -1;
	}
	if (n->nr > n->max) {
		report(ck, "%s: node %" PRIu64 ": %u entries exceed max %u", w->what, b, n->nr,
		       n->max);
		return -1;
	}
	if (!is_root && n->nr < n->max / 3)
		report(ck, "%s: node %" PRIu64 ": too few entries (%u < %u) in a non-root node",
		       w->what, b, n->nr, n->max / 3);
	if (n->flags == NODE_INTERNAL && n->nr == 0) {
		report(ck, "%s: node %" PRIu64 ": internal node with no entries", w->what, b);
		return -1;
	}
	if (load_le32(buf + 28))
		warn(ck, "%s: node %" PRIu64 ": padding not zero (ignored by readers)", w->what, b);
	n->keys = buf + NODE_HEADER;
	n->values = n->keys + 8 * (size_t)n->max;
	for (i = 1; i < n->nr; i++)
		if (load_le64(n->keys + 8 * i) <= load_le64(n->keys + 8 * (i - 1))) {
			report(ck, "%s: node %" PRIu64 ": keys not strictly increasing at %u",
			       w->what, b, i);
			return -1;
		}
	return 0;
}

/* The header fields of a node already checked; -1 if it did not pass. */
static int parse_node(const struct walk *w, uint64_t b, const uint8_t *buf, struct node *n)
{
	n->b = b;
	n->flags = load_le32(buf + 4);
	n->nr = load_le32(buf + 16);
	n->max = load_le32(buf + 20);
	n->vsize = load_le32(buf + 24);
	if ((n->flags != NODE_INTERNAL && n->flags != NODE_LEAF) ||
	    n->vsize != (n->flags == NODE_INTERNAL ? 8 : leaf_value_size[w->kind]) ||
	    n->max != expected_max(n->vsize) || n->nr > n->max)
		return -1;
	n->keys = buf + NODE_HEADER;
	n->values = n->keys + 8 * (size_t)n->max;
	return 0;
}

/* Keys of the node must lie in [lo, hi) (hi == 0 with !has_hi: no bound). */
static void check_bounds(struct checker *ck, const struct walk *w, const struct node *n,
			 uint64_t lo, uint64_t hi, bool has_hi)
{
	uint64_t first, last;

	if (!n->nr)
		return;
	first = load_le64(n->keys);
	last = load_le64(n->keys + 8 * (n->nr - 1));
	if (first < lo)
		report(ck, "%s: node %" PRIu64 ": key %" PRIu64 " below its parent's key %"
		       PRIu64, w->what, n->b, first, lo);
	if (has_hi && last >= hi)
		report(ck, "%s: node %" PRIu64 ": key %" PRIu64 " not below the next parent key %"
		       PRIu64, w->what, n->b, last, hi);
}

static int leaf_entry(struct checker *ck, struct walk *w, const struct node *n, uint32_t i,
		      bool counting);

static uint64_t walk_node(struct checker *ck, struct walk *w, uint64_t b, uint64_t lo,
			  uint64_t hi, bool has_hi, unsigned depth, bool is_root, bool counting);

static uint64_t walk_children(struct checker *ck, struct walk *w, const struct node *n,
			      uint64_t hi, bool has_hi, unsigned depth, bool counting)
{
	uint64_t total = 0;
	uint32_t i;

	for (i = 0; i < n->nr && !ck->fatal; i++) {
		uint64_t child = load_le64(n->values + 8 * i);
		uint64_t k = load_le64(n->keys + 8 * i);
		bool last = i + 1 == n->nr;
		uint64_t khi = last ? hi : load_le64(n->keys + 8 * (i + 1));

		total += walk_node(ck, w, child, k, khi, last ? has_hi : true, depth + 1, false,
				   counting);
	}
	return total;
}

/* Silent re-read of a node already checked, to collect its entries again
 * (details and top-level entries are needed per superblock even where the
 * held snapshot shares nodes with the live trees). */
static uint64_t collect_again(struct checker *ck, struct walk *w, uint64_t b, unsigned depth)
{
	return walk_node(ck, w, b, 0, 0, false, depth, true, false);
}

static void check_leaf_depth(struct checker *ck, struct walk *w, uint64_t b, unsigned depth)
{
	if (w->leaf_depth < 0)
		w->leaf_depth = (int)depth;
	else if (w->leaf_depth != (int)depth)
		report(ck, "%s: leaf %" PRIu64 " at depth %u, others at %d", w->what, b, depth,
		       w->leaf_depth);
}

/*
 * Walk the node at b and return the number of keys below it. `counting`: the
 * pointer to b is counted here, and a node seen before is not walked again
 * (its memoised key count is returned); otherwise the walk only collects
 * leaf entries from nodes already checked, reporting nothing twice.
 */
static uint64_t walk_node(struct checker *ck, struct walk *w, uint64_t b, uint64_t lo,
			  uint64_t hi, bool has_hi, unsigned depth, bool is_root, bool counting)
{
	uint8_t *buf;
	struct node n;
	uint64_t total = 0;
	uint32_t i;

	if (counting && !ref_meta(ck, b, w->what)) {
		if (b >= ck->nr_meta)
			return 0;
		if (ck->kind[b] && ck->kind[b] != w->kind)
			report(ck, "block %" PRIu64 " is used both in a %s and in a %s", b,
			       kind_name[ck->kind[b]], kind_name[w->kind]);
		else if (w->kind == KIND_DETAILS || w->kind == KIND_TOP)
			collect_again(ck, w, b, depth);
		return ck->nkeys[b];
	}
	if (!counting && (b >= ck->nr_meta || ck->kind[b] != w->kind))
		return 0;
	if (counting)
		ck->kind[b] = (uint8_t)w->kind;
	if (depth > MAX_DEPTH) {
		if (counting)
			report(ck, "%s: tree deeper than %u levels at block %" PRIu64, w->what,
			       MAX_DEPTH, b);
		return 0;
	}
	buf = thinp_os_alloc(THINP_BLOCK_SIZE);
	if (!buf) {
		ck->fatal = -ENOMEM;
		return 0;
	}
	if (read_raw(ck, b, buf, w->what))
		goto out;
	if (counting ? check_node(ck, w, b, buf, is_root, &n) : parse_node(w, b, buf, &n))
		goto out;
	if (counting)
		check_bounds(ck, w, &n, lo, hi, has_hi);
	if (n.flags == NODE_INTERNAL) {
		total = walk_children(ck, w, &n, hi, has_hi, depth, counting);
	} else {
		if (counting)
			check_leaf_depth(ck, w, b, depth);
		for (i = 0; i < n.nr && !ck->fatal; i++)
			leaf_entry(ck, w, &n, i, counting);
		total = n.nr;
	}
	if (counting)
		ck->nkeys[b] = total;
out:
	thinp_os_free(buf);
	return total;
}

static int walk_tree(struct checker *ck, struct walk *w, uint64_t b, bool is_root)
{
	w->leaf_depth = -1;
	walk_node(ck, w, b, 0, 0, false, 0, is_root, true);
	return ck->fatal;
}

/* ---- space-map index entries ------------------------------------------------ */

/*
 * nr_free and none_free_before only guide the allocator (FORMAT.md 6.4):
 * nobody checks them against the bitmap and open ignores values out of
 * range, but no writer leaves such values, so they are worth a warning.
 */
static void check_index_hints(struct checker *ck, const char *what, uint64_t index,
			      const uint8_t *entry)
{
	uint32_t nr_free = load_le32(entry + 8), none_free_before = load_le32(entry + 12);

	if (nr_free > ENTRIES_PER_BITMAP || none_free_before > ENTRIES_PER_BITMAP)
		warn(ck, "%s: entry %" PRIu64 ": hint out of range (nr_free %u, "
		     "none_free_before %u; at most %u): ignored", what, index, nr_free,
		     none_free_before, ENTRIES_PER_BITMAP);
}

/* ---- leaf values --------------------------------------------------------------- */

static void bottom_entry(struct checker *ck, struct walk *w, uint64_t key, uint64_t v)
{
	uint64_t data = thin_mapping_block(v);

	if (data >= ck->nr_data)
		report(ck, "%s: block %" PRIu64 " maps to data block %" PRIu64 " beyond the data "
		       "device (%" PRIu64 " blocks)", w->what, key, data, ck->nr_data);
	else
		push_u64(ck, &ck->data_refs, data);
}

static int leaf_entry(struct checker *ck, struct walk *w, const struct node *n, uint32_t i,
		      bool counting)
{
	const uint8_t *val = n->values + (size_t)n->vsize * i;
	struct kv e;

	memset(&e, 0, sizeof(e));
	e.key = load_le64(n->keys + 8 * i);
	switch (w->kind) {
	case KIND_BOTTOM:
		if (counting)
			bottom_entry(ck, w, e.key, load_le64(val));
		return 0;
	case KIND_DETAILS:
		thin_details_decode(val, &e.d);
		break;
	case KIND_TOP:
		e.a = load_le64(val); /* the subtree root, walked by the caller */
		e.b = counting;       /* is the pointer to it still to be counted? */
		break;
	case KIND_DINDEX:
		e.a = load_le64(val); /* the bitmap block */
		if (counting)
			check_index_hints(ck, w->what, e.key, val);
		break;
	case KIND_RC:
		e.a = load_le32(val); /* the exact count */
		break;
	default:
		return 0;
	}
	return push_kv(ck, w->out, &e);
}

/* ---- the thin trees ------------------------------------------------------------ */

/* The mapping tree of each device listed at the top level; e.b gets the
 * number of mappings under it. */
static void walk_subtrees(struct checker *ck, struct kv_vec *top, const char *prefix)
{
	char what[96];
	size_t i;

	for (i = 0; i < top->n && !ck->fatal; i++) {
		struct walk w = { .kind = KIND_BOTTOM, .what = what, .leaf_depth = -1 };

		uint64_t root = top->v[i].a;

		snprintf(what, sizeof(what), "%sdevice %" PRIu64, prefix, top->v[i].key);
		if (top->v[i].b)
			top->v[i].b = walk_node(ck, &w, root, 0, 0, false, 0, true, true);
		else /* from a leaf shared with the live tree: walked already */
			top->v[i].b = root < ck->nr_meta ? ck->nkeys[root] : 0;
	}
}

/* Details keys == top-level keys, and mapped_blocks exact. */
static void compare_devices(struct checker *ck, const struct kv_vec *details,
			    const struct kv_vec *top, const char *prefix)
{
	size_t i = 0, j = 0;

	while (i < details->n || j < top->n) {
		if (j == top->n || (i < details->n && details->v[i].key < top->v[j].key)) {
			report(ck, "%sdevice %" PRIu64 " has details but no mapping tree", prefix,
			       details->v[i].key);
			i++;
		} else if (i == details->n || top->v[j].key < details->v[i].key) {
			report(ck, "%sdevice %" PRIu64 " has a mapping tree but no details", prefix,
			       top->v[j].key);
			j++;
		} else {
			if (details->v[i].d.mapped_blocks != top->v[j].b)
				report(ck, "%sdevice %" PRIu64 ": mapped_blocks is %" PRIu64
				       " but it has %" PRIu64 " mappings", prefix, top->v[j].key,
				       details->v[i].d.mapped_blocks, top->v[j].b);
			i++;
			j++;
		}
	}
}

/* Walk the details and mapping trees named by a superblock (live or held). */
static void check_thin_trees(struct checker *ck, const struct thin_sb *sb, const char *prefix)
{
	struct kv_vec details = { 0 }, top = { 0 };
	char what_d[64], what_t[64];
	struct walk wd = { .kind = KIND_DETAILS, .what = what_d, .out = &details };
	struct walk wt = { .kind = KIND_TOP, .what = what_t, .out = &top };

	snprintf(what_d, sizeof(what_d), "%sdetails tree", prefix);
	snprintf(what_t, sizeof(what_t), "%smapping tree", prefix);
	/* A root shared with the live trees (held snapshot) is counted but not
	 * walked again: its devices were checked with the live ones. */
	walk_tree(ck, &wd, sb->device_details_root, true);
	if (!ck->fatal)
		walk_tree(ck, &wt, sb->data_mapping_root, true);
	if (!ck->fatal)
		walk_subtrees(ck, &top, prefix);
	if (!ck->fatal)
		compare_devices(ck, &details, &top, prefix);
	thinp_os_free(details.v);
	thinp_os_free(top.v);
}

/* ---- space maps ------------------------------------------------------------- */

struct sm_view {
	const char *name;
	uint64_t nr_blocks, nr_allocated, bitmap_root, ref_count_root;
	struct kv_vec bitmaps; /* key = bitmap index, a = block */
	struct kv_vec overflow; /* key = block, a = count */
};

static void sm_view_free(struct sm_view *v)
{
	thinp_os_free(v->bitmaps.v);
	thinp_os_free(v->overflow.v);
}

static uint64_t nr_bitmaps(uint64_t nr_blocks)
{
	return (nr_blocks + ENTRIES_PER_BITMAP - 1) / ENTRIES_PER_BITMAP;
}

static void walk_overflow(struct checker *ck, struct sm_view *v)
{
	char what[64];
	struct walk w = { .kind = KIND_RC, .what = what, .out = &v->overflow };

	snprintf(what, sizeof(what), "%s ref-count tree", v->name);
	walk_tree(ck, &w, v->ref_count_root, true);
}

/* The metadata space map's index block, read into buf; -1 if unusable. */
static int read_metadata_index(struct checker *ck, uint64_t b, uint8_t *buf)
{
	const char *what = "metadata space map index";

	if (!claim_block(ck, b, KIND_INDEX, what) || read_raw(ck, b, buf, what) ||
	    check_stamp(ck, b, buf, THIN_INDEX_CSUM_SALT, what))
		return -1;
	if (load_le32(buf + 4))
		warn(ck, "%s: block %" PRIu64 ": padding not zero (ignored by readers)", what, b);
	return 0;
}

/* Metadata space map: one index block holding up to 255 entries. */
static void collect_metadata_sm(struct checker *ck, struct sm_view *v)
{
	uint8_t *buf = thinp_os_alloc(THINP_BLOCK_SIZE);
	uint64_t i, n = nr_bitmaps(v->nr_blocks);

	if (!buf) {
		ck->fatal = -ENOMEM;
		return;
	}
	if (!read_metadata_index(ck, v->bitmap_root, buf)) {
		for (i = 0; i < n && i < MAX_INDEX_ENTRIES; i++) {
			const uint8_t *entry = buf + 16 + 16 * i;
			struct kv e = { .key = i, .a = load_le64(entry) };

			check_index_hints(ck, "metadata space map index", i, entry);
			if (claim_block(ck, e.a, KIND_BITMAP, "metadata space map bitmap"))
				push_kv(ck, &v->bitmaps, &e);
		}
	}
	thinp_os_free(buf);
	if (!ck->fatal)
		walk_overflow(ck, v);
}

/* Data space map: a btree of index entries keyed 0..n-1. */
static void collect_data_sm(struct checker *ck, struct sm_view *v)
{
	struct kv_vec idx = { 0 };
	struct walk w = { .kind = KIND_DINDEX, .what = "data space map index", .out = &idx };
	size_t i;

	walk_tree(ck, &w, v->bitmap_root, true);
	if (!ck->fatal && idx.n != nr_bitmaps(v->nr_blocks))
		report(ck, "data space map: %zu index entries for %" PRIu64 " blocks (need %"
		       PRIu64 ")", idx.n, v->nr_blocks, nr_bitmaps(v->nr_blocks));
	for (i = 0; i < idx.n && !ck->fatal; i++) {
		if (idx.v[i].key != i) {
			report(ck, "data space map index: key %" PRIu64 " where %zu was expected",
			       idx.v[i].key, i);
			break;
		}
		if (claim_block(ck, idx.v[i].a, KIND_BITMAP, "data space map bitmap"))
			push_kv(ck, &v->bitmaps, &idx.v[i]);
	}
	thinp_os_free(idx.v);
	if (!ck->fatal)
		walk_overflow(ck, v);
}

static uint32_t bitmap_entry(const uint8_t *buf, uint32_t e)
{
	uint64_t word = load_le64(buf + 16 + 8 * (e / 32));
	unsigned p = 2 * (e % 32);

	/* The even bit of each pair is the HIGH bit (FORMAT.md 6.2). */
	return (uint32_t)(((word >> p) & 1) << 1 | ((word >> (p + 1)) & 1));
}

static const struct kv *find_overflow(const struct sm_view *v, uint64_t b)
{
	size_t lo = 0, hi = v->overflow.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->overflow.v[mid].key < b)
			lo = mid + 1;
		else if (v->overflow.v[mid].key > b)
			hi = mid;
		else
			return &v->overflow.v[mid];
	}
	return NULL;
}

/* Called with each block's stored count, in ascending block order. */
typedef void (*count_fn)(struct checker *ck, void *ctx, uint64_t b, uint32_t count);

static void decode_bitmap(struct checker *ck, struct sm_view *v, const struct kv *bm,
			  const uint8_t *buf, count_fn fn, void *ctx, uint64_t *allocated,
			  uint64_t *overflow_used)
{
	uint64_t base = bm->key * ENTRIES_PER_BITMAP;
	uint32_t e;

	for (e = 0; e < ENTRIES_PER_BITMAP; e++) {
		uint64_t b = base + e;
		uint32_t c = bitmap_entry(buf, e);
		const struct kv *o;

		if (b >= v->nr_blocks) {
			if (c)
				report(ck, "%s: bitmap %" PRIu64 " marks block %" PRIu64 " beyond "
				       "the end (%" PRIu64 " blocks)", v->name, bm->a, b,
				       v->nr_blocks);
			continue;
		}
		if (c == 3) {
			o = find_overflow(v, b);
			if (!o) {
				report(ck, "%s: block %" PRIu64 " has count >= 3 but no ref-count "
				       "entry", v->name, b);
				c = 3;
			} else {
				c = (uint32_t)o->a;
				(*overflow_used)++;
				if (c < 3)
					report(ck, "%s: block %" PRIu64 ": ref-count entry %u "
					       "below 3", v->name, b, c);
			}
		}
		if (c)
			(*allocated)++;
		fn(ck, ctx, b, c);
	}
}

/* Decode every count of a space map, in block order, and check its totals. */
static void decode_sm(struct checker *ck, struct sm_view *v, count_fn fn, void *ctx)
{
	uint8_t *buf = thinp_os_alloc(THINP_BLOCK_SIZE);
	uint64_t allocated = 0, overflow_used = 0;
	bool complete = true;
	size_t i;

	if (!buf) {
		ck->fatal = -ENOMEM;
		return;
	}
	for (i = 0; i < v->bitmaps.n && !ck->fatal; i++) {
		const struct kv *bm = &v->bitmaps.v[i];

		if (read_raw(ck, bm->a, buf, v->name) ||
		    check_stamp(ck, bm->a, buf, THIN_BITMAP_CSUM_SALT, v->name)) {
			complete = false;
			continue;
		}
		if (load_le32(buf + 4))
			warn(ck, "%s: bitmap %" PRIu64 ": not_used field not zero (ignored by "
			     "readers)", v->name, bm->a);
		decode_bitmap(ck, v, bm, buf, fn, ctx, &allocated, &overflow_used);
	}
	thinp_os_free(buf);
	/* Totals only mean something when every bitmap was read. */
	if (ck->fatal || !complete || v->bitmaps.n != nr_bitmaps(v->nr_blocks))
		return;
	/* Counting free blocks as allocated only makes the free space look
	 * smaller (as a leak does); thin_restore 0.9.0 leaves one such block
	 * (FORMAT.md 15) and the kernel keeps the count as it finds it. Counting
	 * fewer than are in use would promise space that is not there. */
	if (allocated > v->nr_allocated)
		report(ck, "%s: nr_allocated is %" PRIu64 " but %" PRIu64 " blocks are in use",
		       v->name, v->nr_allocated, allocated);
	else if (allocated < v->nr_allocated)
		warn(ck, "%s: nr_allocated is %" PRIu64 " but %" PRIu64 " blocks are in use "
		     "(free space is reported %" PRIu64 " block%s low; thin_restore 0.9.0 "
		     "leaves this)", v->name, v->nr_allocated, allocated,
		     v->nr_allocated - allocated, v->nr_allocated - allocated == 1 ? "" : "s");
	if (overflow_used != v->overflow.n)
		report(ck, "%s: %zu ref-count entries, but only %" PRIu64 " blocks have count 3 "
		       "in the bitmaps", v->name, v->overflow.n, overflow_used);
}

static void compare_meta_count(struct checker *ck, void *ctx, uint64_t b, uint32_t count)
{
	uint32_t want = ck->meta_refs[b];

	if (count != want)
		report(ck, "metadata block %" PRIu64 ": space map count %u, but %u reference%s",
		       b, count, want, want == 1 ? "" : "s");
}

struct data_cursor {
	size_t i; /* into the sorted data_refs */
};

static void compare_data_count(struct checker *ck, void *ctx, uint64_t b, uint32_t count)
{
	struct data_cursor *c = ctx;
	uint32_t want = 0;

	while (c->i < ck->data_refs.n && ck->data_refs.v[c->i] == b) {
		want++;
		c->i++;
	}
	if (count != want)
		report(ck, "data block %" PRIu64 ": space map count %u, but %u reference%s", b,
		       count, want, want == 1 ? "" : "s");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- driver ------------------------------------------------------------------ */

static int read_superblock(struct checker *ck, uint64_t b, struct thin_sb *sb, bool snapshot)
{
	uint8_t *buf = thinp_os_alloc(THINP_BLOCK_SIZE);
	const char *why = NULL;
	int r = 0;

	if (!buf)
		return ck->fatal = -ENOMEM;
	if (thinp_io_read(ck->io, buf, THINP_BLOCK_SIZE, b << THINP_BLOCK_SHIFT, 0)) {
		thinp_os_free(buf);
		return ck->fatal = -EIO;
	}
	if (!snapshot && thin_block_is_zero(buf)) {
		thinp_os_free(buf);
		return -ENODATA;
	}
	thin_sb_decode(buf, sb);
	if (load_le32(buf) != block_csum(buf, THIN_SUPERBLOCK_CSUM_SALT)) {
		report(ck, "%s at block %" PRIu64 ": checksum mismatch",
		       snapshot ? "metadata snapshot" : "superblock", b);
		r = -EILSEQ;
	} else if (thin_sb_check_fields(sb, b, snapshot, false, snapshot ? ck->nr_meta : 0,
					&why)) {
		report(ck, "%s at block %" PRIu64 ": %s",
		       snapshot ? "metadata snapshot" : "superblock", b, why);
		r = -EILSEQ;
	}
	thinp_os_free(buf);
	return r;
}

static void sm_view_init(struct sm_view *v, const char *name, const uint8_t *root)
{
	memset(v, 0, sizeof(*v));
	v->name = name;
	thin_sm_root_decode(root, &v->nr_blocks, &v->nr_allocated, &v->bitmap_root,
			    &v->ref_count_root);
}

static int alloc_arrays(struct checker *ck)
{
	ck->meta_refs = thinp_os_zalloc_array(ck->nr_meta, sizeof(*ck->meta_refs));
	ck->nkeys = thinp_os_zalloc_array(ck->nr_meta, sizeof(*ck->nkeys));
	ck->kind = thinp_os_zalloc_array(ck->nr_meta, 1);
	if (!ck->meta_refs || !ck->nkeys || !ck->kind)
		return ck->fatal = -ENOMEM;
	return 0;
}

static void check_held_snapshot(struct checker *ck, uint64_t held)
{
	struct thin_sb snap;

	if (!claim_block(ck, held, KIND_SNAPSHOT, "held metadata snapshot"))
		return;
	if (read_superblock(ck, held, &snap, true))
		return;
	check_thin_trees(ck, &snap, "metadata snapshot: ");
}

static void check_all(struct checker *ck, const struct thin_sb *sb)
{
	struct sm_view msm, dsm;
	struct data_cursor cur = { 0 };

	sm_view_init(&msm, "metadata space map", sb->metadata_sm_root);
	sm_view_init(&dsm, "data space map", sb->data_sm_root);
	ck->nr_data = dsm.nr_blocks;
	ref_meta(ck, THIN_SUPERBLOCK_LOCATION, "superblock");
	check_thin_trees(ck, sb, "");
	if (!ck->fatal && sb->held_root)
		check_held_snapshot(ck, sb->held_root);
	if (!ck->fatal)
		collect_metadata_sm(ck, &msm);
	if (!ck->fatal)
		collect_data_sm(ck, &dsm);
	if (!ck->fatal)
		decode_sm(ck, &msm, compare_meta_count, NULL);
	if (!ck->fatal) {
		if (ck->data_refs.n)
			thinp_os_sort(ck->data_refs.v, ck->data_refs.n, sizeof(uint64_t), cmp_u64);
		decode_sm(ck, &dsm, compare_data_count, &cur);
	}
	sm_view_free(&msm);
	sm_view_free(&dsm);
}

static int device_blocks(thinp_io *io, uint64_t *nr)
{
	uint64_t bytes;
	int r = thinp_io_size(io, &bytes);

	*nr = bytes >> THINP_BLOCK_SHIFT;
	return r;
}

int thinp_meta_check_io(thinp_io *io, const thinp_meta_options *opts,
			thinp_meta_finding_fn fn, void *ctx)
{
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	struct tlog log;
	struct checker ck;
	struct thin_sb sb;
	uint64_t ignore;
	int r;

	if (!io || (opts && thinp_abi_copy_in(&o, sizeof(o), opts,
					      offsetof(thinp_meta_options, cache_bytes), 0)))
		return -EINVAL;
	log.fn = o.log_fn;
	log.ctx = o.log_ctx;
	memset(&ck, 0, sizeof(ck));
	ck.io = io;
	ck.log = &log;
	ck.fn = fn;
	ck.ctx = ctx;
	r = device_blocks(io, &ck.nr_dev_blocks);
	if (r)
		return r;
	if (ck.nr_dev_blocks == 0) {
		report(&ck, "metadata device is smaller than one block");
		return -EILSEQ;
	}
	r = read_superblock(&ck, THIN_SUPERBLOCK_LOCATION, &sb, false);
	if (r)
		return r == -ENODATA || ck.fatal ? r : -EILSEQ;
	thin_sm_root_decode(sb.metadata_sm_root, &ck.nr_meta, &ignore, &ignore, &ignore);
	if (ck.nr_meta > ck.nr_dev_blocks) {
		report(&ck, "metadata space map has %" PRIu64 " blocks, the device only %" PRIu64,
		       ck.nr_meta, ck.nr_dev_blocks);
		ck.nr_meta = ck.nr_dev_blocks;
	}
	if (!alloc_arrays(&ck))
		check_all(&ck, &sb);
	thinp_os_free(ck.meta_refs);
	thinp_os_free(ck.nkeys);
	thinp_os_free(ck.kind);
	thinp_os_free(ck.data_refs.v);
	if (ck.fatal)
		return ck.fatal;
	return ck.errors ? -EILSEQ : 0;
}

int thinp_meta_check(thinp_meta *meta, thinp_meta_finding_fn fn, void *ctx)
{
	thinp_meta_options o = THINP_META_OPTIONS_INIT;
	int r = thin_need_space_maps(meta);

	if (r)
		return r;
	o.log_fn = meta->log.fn;
	o.log_ctx = meta->log.ctx;
	return thinp_meta_check_io(meta->io, &o, fn, ctx);
}
