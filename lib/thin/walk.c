/*
 * Walks for tools: every device with its details, every mapping of a device
 * as coalesced runs, from the live metadata or from a metadata snapshot.
 *
 * Runs are coalesced exactly as thin_dump 0.9.0 does (FORMAT.md 12.2): a
 * mapping extends the current run iff its virtual block and its data block
 * both follow the run's last ones and its time is equal, so a dump built on
 * these runs is byte-identical to thin_dump's.
 *
 * Devices come in ascending id order from the details tree; the walk also
 * reads the top level of the mapping tree and refuses (-EILSEQ) when the two
 * key sets differ, since a dump of such metadata would silently lose either
 * mappings or details.
 */
#include "os/os.h"

#include "thin/meta_internal.h"

struct id_list {
	uint64_t *ids;
	struct thin_details *details; /* NULL for the top-level list */
	size_t n, cap;
};

static int list_push(struct id_list *l, uint64_t id, const struct thin_details *d)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *ids = thinp_os_realloc(l->ids, l->cap * sizeof(*ids), cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		l->ids = ids;
		if (d) {
			struct thin_details *ds = thinp_os_realloc(l->details, l->cap * sizeof(*ds), cap * sizeof(*ds));

			if (!ds)
				return -ENOMEM;
			l->details = ds;
		}
		l->cap = cap;
	}
	l->ids[l->n] = id;
	if (d)
		l->details[l->n] = *d;
	l->n++;
	return 0;
}

static void list_free(struct id_list *l)
{
	thinp_os_free(l->ids);
	thinp_os_free(l->details);
}

static int details_fn(void *ctx, uint64_t key, const void *value)
{
	struct thin_details d;

	thin_details_decode(value, &d);
	return list_push(ctx, key, &d);
}

static int top_fn(void *ctx, uint64_t key, const void *value)
{
	return list_push(ctx, key, NULL);
}

static int collect_devices(struct thinp_meta *meta, const struct thin_sb *sb,
			   struct id_list *details, struct id_list *top)
{
	int r;

	r = btree_walk(&meta->details_info, sb->device_details_root, details_fn, details);
	if (!r)
		r = btree_walk(&meta->tl_info, sb->data_mapping_root, top_fn, top);
	if (r)
		return thin_err(meta, r, "walking the device trees: %s", thinp_strerror(r));
	if (details->n != top->n ||
	    (top->n && memcmp(details->ids, top->ids, top->n * sizeof(uint64_t))))
		return thin_err(meta, THINP_CORRUPT(&meta->log, sb->device_details_root,
						    "device details", "keys differ from the "
						    "mapping tree's top level"),
				"details tree and mapping tree list different devices");
	return 0;
}

static void fill_device(thinp_meta_device *out, uint64_t id, const struct thin_details *d)
{
	memset(out, 0, sizeof(*out));
	out->struct_size = sizeof(*out);
	out->dev_id = id;
	out->mapped_blocks = d->mapped_blocks;
	out->transaction_id = d->transaction_id;
	out->creation_time = d->creation_time;
	out->snapshotted_time = d->snapshotted_time;
}

/* Collect the devices under the lock; the callbacks run after it is
 * released, so they may call anything on the handle. */
static int collect_devices_locked(struct thinp_meta *meta, uint64_t source,
				  struct id_list *details)
{
	struct id_list top = { 0 };
	struct thin_sb sb;
	size_t i;
	int r;

	r = thin_read_source_sb_locked(meta, source, &sb);
	if (!r)
		r = collect_devices(meta, &sb, details, &top);
	for (i = 0; !r && source == THINP_META_LIVE && i < details->n; i++) {
		struct thin_dev *td = thin_dev_cached(meta, details->ids[i]);

		if (td)
			details->details[i] = td->d;
	}
	list_free(&top);
	return r;
}

int thinp_meta_walk_devices(thinp_meta *meta, uint64_t source, thinp_meta_device_fn fn,
			    void *ctx)
{
	struct id_list details = { 0 };
	thinp_meta_device dev;
	size_t i;
	int r;

	if (!fn)
		return thin_err(meta, -EINVAL, "no callback");
	r = thin_rlock(meta);
	if (r)
		return r;
	r = collect_devices_locked(meta, source, &details);
	thin_unlock(meta);
	for (i = 0; !r && i < details.n; i++) {
		fill_device(&dev, details.ids[i], &details.details[i]);
		r = fn(&dev, ctx);
	}
	list_free(&details);
	return r;
}

/* ---- mappings as runs ------------------------------------------------------ */

struct run_state {
	thinp_meta_run run;
	bool open;
	thinp_meta_run *runs; /* completed runs, delivered after the walk */
	size_t n, cap;
};

static int push_run(struct run_state *s)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		thinp_meta_run *n = thinp_os_realloc(s->runs, s->cap * sizeof(*n), cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->runs = n;
		s->cap = cap;
	}
	s->runs[s->n++] = s->run;
	return 0;
}

static bool extends(const thinp_meta_run *run, uint64_t vblock, uint64_t data, uint32_t time)
{
	return vblock == run->virt_begin + run->length &&
	       data == run->data_begin + run->length && time == run->time;
}

static int run_fn(void *ctx, uint64_t key, const void *value)
{
	struct run_state *s = ctx;
	uint64_t v = load_le64(value);
	uint64_t data = thin_mapping_block(v);
	uint32_t time = thin_mapping_time(v);
	int r;

	if (s->open && extends(&s->run, key, data, time)) {
		s->run.length++;
		return 0;
	}
	if (s->open) {
		r = push_run(s);
		if (r)
			return r;
	}
	s->run.virt_begin = key;
	s->run.data_begin = data;
	s->run.time = time;
	s->run.length = 1;
	s->open = true;
	return 0;
}

/* The root of dev's mapping tree in source. */
static int source_subtree_locked(struct thinp_meta *meta, uint64_t source, uint64_t dev,
				 uint64_t *sub)
{
	struct thin_sb sb;
	int r;

	r = thin_read_source_sb_locked(meta, source, &sb);
	if (r)
		return r;
	r = thin_subtree_root_locked(meta, sb.data_mapping_root, dev, sub);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev,
				r == -ENODATA ? "no such device" : thinp_strerror(r));
	return 0;
}

static int walk_mappings_locked(struct thinp_meta *meta, uint64_t source, uint64_t dev,
				struct run_state *s)
{
	uint64_t sub;
	int r;

	r = source_subtree_locked(meta, source, dev, &sub);
	if (r)
		return r;
	s->run.struct_size = sizeof(s->run);
	r = btree_walk(&meta->bl_info, sub, run_fn, s);
	if (!r && s->open)
		r = push_run(s);
	return r;
}

/*
 * The runs are gathered under the lock and handed to the callback after it is
 * released (O(runs) memory): a callback holding the lock would deadlock
 * against a waiting writer (the lock prefers writers) as soon as it called
 * back into the handle.
 */
int thinp_meta_walk_mappings(thinp_meta *meta, uint64_t source, uint64_t dev,
			     thinp_meta_run_fn fn, void *ctx)
{
	struct run_state s;
	size_t i;
	int r;

	if (!fn)
		return thin_err(meta, -EINVAL, "no callback");
	memset(&s, 0, sizeof(s));
	r = thin_rlock(meta);
	if (r)
		return r;
	r = walk_mappings_locked(meta, source, dev, &s);
	thin_unlock(meta);
	for (i = 0; !r && i < s.n; i++)
		r = fn(&s.runs[i], ctx);
	thinp_os_free(s.runs);
	return r;
}

int thinp_meta_highest_mapped(thinp_meta *meta, uint64_t source, uint64_t dev, uint64_t *vblock)
{
	uint64_t sub;
	int r;

	if (!vblock)
		return thin_err(meta, -EINVAL, "no place for the block");
	r = thin_rlock(meta);
	if (r)
		return r;
	r = source_subtree_locked(meta, source, dev, &sub);
	if (!r) {
		r = btree_last(&meta->bl_info, sub, NULL, vblock, NULL);
		if (r)
			r = thin_err(meta, r, "device %" PRIu64 ": %s", dev,
				     r == -ENODATA ? "nothing mapped" : thinp_strerror(r));
	}
	thin_unlock(meta);
	return r;
}
