#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thin/helpers.h"
#include "thin/model.h"

bool model_quiet;

#define say(...) do { if (!model_quiet) fprintf(stderr, __VA_ARGS__); } while (0)

struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));
	int d, v;

	for (d = 0; d < M_DEVS; d++)
		for (v = 0; v < M_VBLOCKS; v++)
			m->dev[d].data[v] = M_UNMAPPED;
	return m;
}

void model_copy(struct model *dst, const struct model *src)
{
	memcpy(dst, src, sizeof(*dst));
}

static int pick_dev(const struct model *m, struct test_rng *rng, bool exists)
{
	int d, tries;

	for (tries = 0; tries < 16; tries++) {
		d = (int)test_rng_below(rng, M_DEVS);
		if (m->dev[d].exists == exists)
			return d;
	}
	return -1;
}

static int msg(thinp_meta *meta, const char *fmt, int a, int b)
{
	char buf[64];

	snprintf(buf, sizeof(buf), fmt, a, b);
	return thinp_meta_message(meta, buf);
}

static void clear_dev(struct mdev *d)
{
	int v;

	memset(d, 0, sizeof(*d));
	for (v = 0; v < M_VBLOCKS; v++)
		d->data[v] = M_UNMAPPED;
}

static struct mop op_create_thin(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "create_thin", .commits = true };
	int d = (int)test_rng_below(rng, M_DEVS);

	o.expected = m->dev[d].exists ? -EEXIST : 0;
	o.r = msg(meta, "create_thin %d", d, 0);
	if (o.r == 0 && o.expected == 0) {
		clear_dev(&m->dev[d]);
		m->dev[d].exists = true;
		m->dev[d].trans_id = m->trans_id;
		m->dev[d].ctime = m->dev[d].stime = m->time;
	}
	return o;
}

static struct mop op_create_snap(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "create_snap", .commits = true };
	int d = (int)test_rng_below(rng, M_DEVS), s = (int)test_rng_below(rng, M_DEVS);

	o.expected = m->dev[d].exists ? -EEXIST : !m->dev[s].exists ? -ENODATA : 0;
	o.r = msg(meta, "create_snap %d %d", d, s);
	if (o.r == 0 && o.expected == 0) {
		m->time++;
		m->dev[d] = m->dev[s];
		m->dev[d].trans_id = m->trans_id;
		m->dev[d].ctime = m->dev[d].stime = m->time;
		m->dev[s].stime = m->time;
	}
	return o;
}

static struct mop op_delete(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "delete", .commits = true };
	int d = (int)test_rng_below(rng, M_DEVS);

	o.expected = m->dev[d].exists ? 0 : -ENODATA;
	o.r = msg(meta, "delete %d", d, 0);
	if (o.r == 0 && o.expected == 0)
		clear_dev(&m->dev[d]);
	return o;
}

static struct mop op_trans(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "set_transaction_id", .commits = true };
	uint64_t cur = test_rng_below(rng, 4) ? m->trans_id : m->trans_id + 1;
	uint64_t next = test_rng_next(rng) % 1000;
	char buf[80];

	o.expected = cur == m->trans_id ? 0 : -EINVAL;
	snprintf(buf, sizeof(buf), "set_transaction_id %llu %llu", (unsigned long long)cur,
		 (unsigned long long)next);
	o.r = thinp_meta_message(meta, buf);
	if (o.r == 0 && o.expected == 0)
		m->trans_id = next;
	return o;
}

static struct mop op_snap_meta(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .commits = true };

	if (test_rng_below(rng, 2)) {
		o.name = "reserve_metadata_snap";
		o.expected = m->held ? -EBUSY : 0;
		o.r = thinp_meta_message(meta, o.name);
		if (o.r == 0 && o.expected == 0)
			m->held = true;
	} else {
		o.name = "release_metadata_snap";
		o.expected = m->held ? 0 : -EINVAL;
		o.r = thinp_meta_message(meta, o.name);
		if (o.r == 0 && o.expected == 0)
			m->held = false;
	}
	return o;
}

static struct mop op_insert(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "insert" };
	int d = pick_dev(m, rng, true);
	uint64_t v, b;

	if (d < 0) {
		o.skipped = true;
		return o;
	}
	v = test_rng_below(rng, M_VBLOCKS);
	o.r = thin_alloc_data_block_locked(meta, &b);
	if (o.r == -ENOSPC) {
		o.skipped = true;
		o.r = 0;
		return o;
	}
	if (o.r)
		return o;
	o.r = th_insert_now(meta, (uint64_t)d, v, b);
	if (o.r == 0) {
		if (m->dev[d].data[v] == M_UNMAPPED)
			m->dev[d].mapped++;
		m->dev[d].data[v] = b;
		m->dev[d].time[v] = m->time;
	}
	return o;
}

static struct mop op_remove(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "remove" };
	int d = pick_dev(m, rng, true);
	uint64_t v;

	if (d < 0) {
		o.skipped = true;
		return o;
	}
	v = test_rng_below(rng, M_VBLOCKS);
	o.expected = m->dev[d].data[v] == M_UNMAPPED ? -ENODATA : 0;
	o.r = th_remove(meta, (uint64_t)d, v);
	if (o.r == 0 && o.expected == 0) {
		m->dev[d].data[v] = M_UNMAPPED;
		m->dev[d].mapped--;
	}
	return o;
}

static struct mop op_remove_range(struct model *m, thinp_meta *meta, struct test_rng *rng)
{
	struct mop o = { .name = "remove_range" };
	int d = pick_dev(m, rng, true);
	uint64_t b, e, v, n = 0, want = 0;

	if (d < 0) {
		o.skipped = true;
		return o;
	}
	b = test_rng_below(rng, M_VBLOCKS);
	e = b + test_rng_below(rng, 300);
	for (v = b; v < e && v < M_VBLOCKS; v++)
		want += m->dev[d].data[v] != M_UNMAPPED;
	o.r = thin_remove_range_locked(meta, (uint64_t)d, b, e, &n);
	if (o.r == 0 && n != want) {
		fprintf(stderr, "remove_range removed %llu, model says %llu\n",
			(unsigned long long)n, (unsigned long long)want);
		o.expected = -1000;
		return o;
	}
	if (o.r == 0) {
		for (v = b; v < e && v < M_VBLOCKS; v++)
			m->dev[d].data[v] = M_UNMAPPED;
		m->dev[d].mapped -= n;
	}
	return o;
}

struct mop model_op(struct model *m, thinp_meta *meta, struct test_rng *rng, bool abort_ok)
{
	unsigned x = (unsigned)test_rng_below(rng, 100);
	struct mop o;

	if (x < 6)
		return op_create_thin(m, meta, rng);
	if (x < 10)
		return op_create_snap(m, meta, rng);
	if (x < 13)
		return op_delete(m, meta, rng);
	if (x < 15)
		return op_trans(m, meta, rng);
	if (x < 17)
		return op_snap_meta(m, meta, rng);
	if (x < 65)
		return op_insert(m, meta, rng);
	if (x < 80)
		return op_remove(m, meta, rng);
	if (x < 83)
		return op_remove_range(m, meta, rng);
	if (x < 85 && abort_ok) {
		o = (struct mop){ .name = "abort" };
		o.r = thinp_meta_abort(meta);
		return o;
	}
	o = (struct mop){ .name = "commit", .commits = true };
	o.r = thinp_meta_commit(meta);
	return o;
}

struct walk_ctx {
	const struct mdev *d;
	uint64_t next; /* walks are ascending */
	unsigned bad, seen;
};

static int run_cb(const thinp_meta_run *r, void *ctx)
{
	struct walk_ctx *w = ctx;
	uint64_t i;

	if (r->virt_begin < w->next && w->seen) {
		w->bad++;
		return 0;
	}
	for (i = 0; i < r->length; i++) {
		uint64_t v = r->virt_begin + i;

		if (v >= M_VBLOCKS || w->d->data[v] != r->data_begin + i ||
		    w->d->time[v] != r->time) {
			if (w->bad++ < 5)
				say("  mapping %llu -> %llu t%u, model %llu t%u\n",
					(unsigned long long)v,
					(unsigned long long)(r->data_begin + i), r->time,
					v < M_VBLOCKS ? (unsigned long long)w->d->data[v] : 0ull,
					v < M_VBLOCKS ? w->d->time[v] : 0);
		}
		w->seen++;
	}
	w->next = r->virt_begin + r->length;
	return 0;
}

static unsigned verify_dev(const struct mdev *d, int id, thinp_meta *meta, uint64_t source)
{
	struct walk_ctx w = { .d = d };
	int r;

	r = thinp_meta_walk_mappings(meta, source, (uint64_t)id, run_cb, &w);
	if (r) {
		say("  walk of device %d: %d\n", id, r);
		return 1;
	}
	if (w.seen != d->mapped) {
		say("  device %d: walk saw %u mappings, model %llu\n", id, w.seen,
			(unsigned long long)d->mapped);
		w.bad++;
	}
	return w.bad;
}

struct dev_list {
	const struct model *m;
	unsigned bad;
	int count;
};

static int dev_cb(const thinp_meta_device *dev, void *ctx)
{
	struct dev_list *l = ctx;
	const struct mdev *d;

	l->count++;
	if (dev->dev_id >= M_DEVS || !l->m->dev[dev->dev_id].exists) {
		say("  unexpected device %llu\n", (unsigned long long)dev->dev_id);
		l->bad++;
		return 0;
	}
	d = &l->m->dev[dev->dev_id];
	if (dev->mapped_blocks != d->mapped || dev->transaction_id != d->trans_id ||
	    dev->creation_time != d->ctime || dev->snapshotted_time != d->stime) {
		say("  device %llu details differ: mapped %llu/%llu trans %llu/%llu "
			"ctime %u/%u stime %u/%u\n", (unsigned long long)dev->dev_id,
			(unsigned long long)dev->mapped_blocks, (unsigned long long)d->mapped,
			(unsigned long long)dev->transaction_id, (unsigned long long)d->trans_id,
			dev->creation_time, d->ctime, dev->snapshotted_time, d->stime);
		l->bad++;
	}
	return 0;
}

static unsigned verify_source(const struct model *m, thinp_meta *meta, uint64_t source)
{
	struct dev_list l = { .m = m };
	int d, expect = 0, r;

	r = thinp_meta_walk_devices(meta, source, dev_cb, &l);
	if (r) {
		say("  device walk: %d\n", r);
		return 1;
	}
	for (d = 0; d < M_DEVS; d++) {
		if (!m->dev[d].exists)
			continue;
		expect++;
		l.bad += verify_dev(&m->dev[d], d, meta, source);
	}
	if (expect != l.count) {
		say("  %d devices, model %d\n", l.count, expect);
		l.bad++;
	}
	return l.bad;
}

unsigned model_verify(const struct model *m, thinp_meta *meta)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	unsigned bad = verify_source(m, meta, THINP_META_LIVE);
	int d;

	if (thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb) || sb.time != m->time ||
	    sb.transaction_id != m->trans_id || (sb.held_root != 0) != m->held) {
		say("  superblock: time %u/%u trans %llu/%llu held %llu/%d\n", sb.time,
			m->time, (unsigned long long)sb.transaction_id,
			(unsigned long long)m->trans_id, (unsigned long long)sb.held_root, m->held);
		bad++;
	}
	/* Point lookups, including the sharing test. */
	for (d = 0; d < M_DEVS; d++) {
		const struct mdev *md = &m->dev[d];
		uint64_t v;

		if (!md->exists)
			continue;
		for (v = 0; v < M_VBLOCKS; v += 37) {
			uint64_t b;
			uint32_t t;
			bool shared;
			int r = thinp_meta_lookup(meta, (uint64_t)d, v, &b, &t, &shared);

			if (md->data[v] == M_UNMAPPED ? r != -ENODATA
			    : (r || b != md->data[v] || t != md->time[v] ||
			       shared != (md->stime > md->time[v]))) {
				say("  lookup %d/%llu: r %d\n", d, (unsigned long long)v, r);
				bad++;
			}
		}
	}
	return bad;
}

unsigned model_verify_held(const struct model *held, thinp_meta *meta)
{
	return verify_source(held, meta, THINP_META_HELD_ROOT);
}
