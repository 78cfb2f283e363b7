/*
 * The metadata model behind the pool tests (see md_model.h). Deliberately
 * simple: each volume is a sorted array of mappings, a snapshot copies the
 * array, data reference counts count the volumes mapping a block, and a
 * commit deep-copies the live state into the store.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pool/md_model.h"

struct map {
	uint64_t vb, db;
	uint32_t time;
};

struct mdev {
	uint64_t id, trans_id;
	uint32_t ctime, stime;
	struct map *maps;
	size_t n, cap;
};

struct state {
	struct mdev *devs;
	size_t ndev;
	uint32_t *refs;
	uint64_t nr_data, nr_used, nr_meta, trans_id, held, nr_mappings;
	uint32_t time, dbs;
	bool needs_check;
};

struct md_store {
	struct state committed;
	struct md_faults faults;
	uint64_t commits;
};

struct model {
	struct pool_md md;
	struct md_store *store;
	struct state live;
	uint64_t cursor;
	/* Failure facts (pool_md.h), cleared by abort: */
	bool meta_out_of_space; /* the metadata ran out (max_mappings, meta_full_at_alloc) */
	bool tx_damaged;        /* a change failed after it began (and commit failures) */
};

/* The model fails before it changes anything, but the real metadata would
 * have begun the change: report what the real one reports. */
static int damaged(struct model *m, int r)
{
	m->tx_damaged = true;
	m->meta_out_of_space = m->meta_out_of_space || r == -ENOSPC;
	return r;
}

static void free_state(struct state *s)
{
	for (size_t i = 0; i < s->ndev; i++)
		free(s->devs[i].maps);
	free(s->devs);
	free(s->refs);
	memset(s, 0, sizeof(*s));
}

static int copy_state(struct state *dst, const struct state *src)
{
	*dst = *src;
	dst->devs = calloc(src->ndev + 1, sizeof(*dst->devs));
	dst->refs = calloc(src->nr_data + 1, sizeof(*dst->refs));
	if (!dst->devs || !dst->refs)
		return -ENOMEM;
	memcpy(dst->refs, src->refs, src->nr_data * sizeof(*src->refs));
	for (size_t i = 0; i < src->ndev; i++) {
		struct mdev *d = &dst->devs[i];

		*d = src->devs[i];
		d->cap = d->n ? d->n : 1;
		d->maps = malloc(d->cap * sizeof(*d->maps));
		if (!d->maps)
			return -ENOMEM;
		if (d->n) /* an empty device's maps may be NULL */
			memcpy(d->maps, src->devs[i].maps, d->n * sizeof(*d->maps));
	}
	return 0;
}

struct md_store *md_store_new(uint32_t dbs, uint64_t data_blocks, uint64_t meta_blocks)
{
	struct md_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->committed.dbs = dbs;
	s->committed.nr_data = data_blocks;
	s->committed.nr_meta = meta_blocks;
	s->committed.refs = calloc(data_blocks + 1, sizeof(uint32_t));
	s->faults.max_mappings = UINT64_MAX;
	return s;
}

void md_store_free(struct md_store *s)
{
	if (!s)
		return;
	free_state(&s->committed);
	free(s);
}

uint64_t md_store_commits(const struct md_store *s)
{
	return s->commits;
}

struct md_faults *md_store_faults(struct md_store *s)
{
	return &s->faults;
}

static struct model *M(struct pool_md *md)
{
	return (struct model *)md;
}

static struct mdev *find_dev(struct state *s, uint64_t id)
{
	for (size_t i = 0; i < s->ndev; i++)
		if (s->devs[i].id == id)
			return &s->devs[i];
	return NULL;
}

/* Index of the first mapping with vb >= key. */
static size_t lower_bound(const struct mdev *d, uint64_t key)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d->maps[mid].vb < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ref_inc(struct state *s, uint64_t b)
{
	if (s->refs[b]++ == 0)
		s->nr_used++;
}

static void ref_dec(struct state *s, uint64_t b)
{
	if (--s->refs[b] == 0)
		s->nr_used--;
}

static void md_destroy(struct pool_md *md)
{
	free_state(&M(md)->live);
	free(md);
}

static uint64_t meta_used(const struct state *s)
{
	return 16 + s->ndev + s->nr_mappings / 64;
}

static int md_info(struct pool_md *md, struct pool_md_info *out)
{
	struct state *s = &M(md)->live;

	memset(out, 0, sizeof(*out));
	out->trans_id = s->trans_id;
	out->held_root = s->held;
	out->data_nr_blocks = s->nr_data;
	out->data_nr_free = s->nr_data - s->nr_used;
	out->meta_nr_blocks = s->nr_meta;
	out->meta_nr_free = s->nr_meta > meta_used(s) ? s->nr_meta - meta_used(s) : 0;
	out->data_block_sectors = s->dbs;
	out->time = s->time;
	out->needs_check = s->needs_check;
	out->meta_out_of_space = M(md)->meta_out_of_space;
	out->tx_damaged = M(md)->tx_damaged;
	return 0;
}

static int md_commit(struct pool_md *md)
{
	struct model *m = M(md);
	struct state copy;
	int r;

	if (m->store->faults.fail_commit_at && --m->store->faults.fail_commit_at == 0)
		return damaged(m, -EIO);
	r = copy_state(&copy, &m->live);
	if (r) {
		free_state(&copy);
		return r;
	}
	free_state(&m->store->committed);
	m->store->committed = copy;
	m->store->commits++;
	return 0;
}

static int md_abort(struct pool_md *md)
{
	struct model *m = M(md);
	struct state copy;
	int r = copy_state(&copy, &m->store->committed);

	if (r) {
		free_state(&copy);
		return r;
	}
	free_state(&m->live);
	m->live = copy;
	m->meta_out_of_space = false;
	m->tx_damaged = false;
	return 0;
}

static int md_set_needs_check(struct pool_md *md)
{
	M(md)->live.needs_check = true;
	M(md)->store->committed.needs_check = true;
	return 0;
}

static int md_set_trans_id(struct pool_md *md, uint64_t old, uint64_t new_id)
{
	if (M(md)->live.trans_id != old)
		return -EINVAL;
	M(md)->live.trans_id = new_id;
	return 0;
}

static struct mdev *add_dev(struct state *s, uint64_t id)
{
	struct mdev *devs = realloc(s->devs, (s->ndev + 1) * sizeof(*devs));
	struct mdev *d;

	if (!devs)
		return NULL;
	s->devs = devs;
	d = &devs[s->ndev++];
	memset(d, 0, sizeof(*d));
	d->id = id;
	d->trans_id = s->trans_id;
	return d;
}

static int md_create_thin(struct pool_md *md, uint64_t id)
{
	struct state *s = &M(md)->live;
	struct mdev *d;

	if (find_dev(s, id))
		return -EEXIST;
	d = add_dev(s, id);
	if (!d)
		return -ENOMEM;
	d->ctime = d->stime = s->time;
	return 0;
}

static int md_create_snap(struct pool_md *md, uint64_t id, uint64_t origin)
{
	struct state *s = &M(md)->live;
	struct mdev *o, *d;
	size_t oi;

	if (find_dev(s, id))
		return -EEXIST;
	o = find_dev(s, origin);
	if (!o)
		return -ENODATA;
	if (s->nr_mappings + o->n > M(md)->store->faults.max_mappings)
		return damaged(M(md), -ENOSPC);
	oi = (size_t)(o - s->devs);
	d = add_dev(s, id); /* may move the array */
	if (!d)
		return -ENOMEM;
	o = &s->devs[oi];
	d->cap = o->n ? o->n : 1;
	d->maps = malloc(d->cap * sizeof(*d->maps));
	if (!d->maps)
		return -ENOMEM;
	if (o->n) /* an empty origin's maps may be NULL */
		memcpy(d->maps, o->maps, o->n * sizeof(*d->maps));
	d->n = o->n;
	for (size_t i = 0; i < d->n; i++)
		ref_inc(s, d->maps[i].db);
	s->nr_mappings += d->n;
	s->time++;
	d->ctime = d->stime = o->stime = s->time;
	return 0;
}

static int md_delete_thin(struct pool_md *md, uint64_t id)
{
	struct state *s = &M(md)->live;
	struct mdev *d = find_dev(s, id);

	if (!d)
		return -ENODATA;
	for (size_t i = 0; i < d->n; i++)
		ref_dec(s, d->maps[i].db);
	s->nr_mappings -= d->n;
	free(d->maps);
	*d = s->devs[--s->ndev];
	return 0;
}

static int md_thin_info(struct pool_md *md, uint64_t id, struct pool_md_thin_info *out)
{
	struct mdev *d = find_dev(&M(md)->live, id);

	if (!d)
		return -ENODATA;
	out->mapped_blocks = d->n;
	out->trans_id = d->trans_id;
	out->creation_time = d->ctime;
	out->snapshotted_time = d->stime;
	return 0;
}

static void fill(const struct mdev *d, const struct map *mp, struct pool_md_mapping *out)
{
	out->data_block = mp->db;
	out->time = mp->time;
	out->shared = d->stime > mp->time;
	out->mapped = true;
}

/* The armed lookup failure, once. Lookups run concurrently: only an armed
 * knob (set by a single-threaded test) is written. */
static int lookup_fault(struct model *m)
{
	int r = m->store->faults.fail_lookup_err;

	if (r)
		m->store->faults.fail_lookup_err = 0;
	return r;
}

static int md_lookup(struct pool_md *md, uint64_t id, uint64_t vb, struct pool_md_mapping *out)
{
	struct mdev *d = find_dev(&M(md)->live, id);
	size_t i;
	int r = lookup_fault(M(md));

	if (r)
		return r;
	if (!d)
		return -ENODATA;
	i = lower_bound(d, vb);
	if (i == d->n || d->maps[i].vb != vb)
		return -ENODATA;
	fill(d, &d->maps[i], out);
	return 0;
}

static int md_lookup_run(struct pool_md *md, uint64_t id, uint64_t vb, uint32_t n,
			 struct pool_md_mapping *out)
{
	struct mdev *d = find_dev(&M(md)->live, id);
	int r = lookup_fault(M(md));

	if (r)
		return r;
	if (!d)
		return -ENODATA;
	memset(out, 0, n * sizeof(*out));
	for (size_t i = lower_bound(d, vb); i < d->n && d->maps[i].vb - vb < n; i++)
		fill(d, &d->maps[i], &out[d->maps[i].vb - vb]);
	return 0;
}

static int md_next_mapping(struct pool_md *md, uint64_t id, uint64_t vb, uint64_t *vb_out,
			   struct pool_md_mapping *out)
{
	struct mdev *d = find_dev(&M(md)->live, id);
	size_t i;

	if (!d)
		return -ENODATA;
	i = lower_bound(d, vb);
	if (i == d->n)
		return -ENODATA;
	*vb_out = d->maps[i].vb;
	fill(d, &d->maps[i], out);
	return 0;
}

static int md_highest_mapped(struct pool_md *md, uint64_t id, uint64_t *vb_out)
{
	struct mdev *d = find_dev(&M(md)->live, id);

	if (!d || !d->n)
		return -ENODATA;
	*vb_out = d->maps[d->n - 1].vb;
	return 0;
}

static int md_insert(struct pool_md *md, uint64_t id, uint64_t vb, uint64_t db)
{
	struct state *s = &M(md)->live;
	struct mdev *d = find_dev(s, id);
	struct md_faults *f = &M(md)->store->faults;
	size_t i;

	if (f->fail_insert_err) {
		int r = f->fail_insert_err;

		f->fail_insert_err = 0;
		M(md)->tx_damaged = f->insert_damages;
		return r;
	}
	if (!d)
		return -ENODATA;
	if (db >= s->nr_data || !s->refs[db])
		return -EINVAL; /* the caller must hold a reference */
	i = lower_bound(d, vb);
	if (i < d->n && d->maps[i].vb == vb) {
		ref_dec(s, d->maps[i].db);
		d->maps[i].db = db;
		d->maps[i].time = s->time;
		return 0;
	}
	if (s->nr_mappings + 1 > M(md)->store->faults.max_mappings)
		return damaged(M(md), -ENOSPC);
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct map *maps = realloc(d->maps, cap * sizeof(*maps));

		if (!maps)
			return -ENOMEM;
		d->maps = maps;
		d->cap = cap;
	}
	memmove(&d->maps[i + 1], &d->maps[i], (d->n - i) * sizeof(*d->maps));
	d->maps[i] = (struct map){ vb, db, s->time };
	d->n++;
	s->nr_mappings++;
	return 0;
}

static int md_insert_run(struct pool_md *md, uint64_t id, const uint64_t *vbs,
			 const uint64_t *dbs, uint32_t n)
{
	struct state *s = &M(md)->live;
	int r = 0;

	if (!find_dev(s, id))
		return -ENODATA;
	for (uint32_t i = 0; i < n; i++)
		if (dbs[i] >= s->nr_data)
			return -EINVAL;
	for (uint32_t i = 0; !r && i < n; i++)
		r = md_insert(md, id, vbs[i], dbs[i]);
	return r;
}

static int md_remove_range(struct pool_md *md, uint64_t id, uint64_t begin, uint64_t end)
{
	struct state *s = &M(md)->live;
	struct mdev *d = find_dev(s, id);
	size_t i, j;

	if (!d)
		return -ENODATA;
	i = lower_bound(d, begin);
	j = lower_bound(d, end);
	for (size_t k = i; k < j; k++)
		ref_dec(s, d->maps[k].db);
	memmove(&d->maps[i], &d->maps[j], (d->n - j) * sizeof(*d->maps));
	d->n -= j - i;
	s->nr_mappings -= j - i;
	return 0;
}

/* Free now and in the last commit (FORMAT.md 6.7). */
static bool allocatable(struct model *m, uint64_t b)
{
	const struct state *c = &m->store->committed;

	return !m->live.refs[b] && (b >= c->nr_data || !c->refs[b]);
}

static int md_alloc_data(struct pool_md *md, uint64_t *block)
{
	struct model *m = M(md);
	struct md_faults *f = &m->store->faults;
	uint64_t n = m->live.nr_data;

	if (f->meta_full_at_alloc && --f->meta_full_at_alloc == 0)
		return damaged(m, -ENOSPC);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = (m->cursor + i) % n;

		if (allocatable(m, b)) {
			ref_inc(&m->live, b);
			m->cursor = b + 1;
			*block = b;
			return 0;
		}
	}
	return -ENOSPC;
}

static int md_data_ref(struct pool_md *md, uint64_t b, uint32_t *count)
{
	if (b >= M(md)->live.nr_data)
		return -EINVAL;
	*count = M(md)->live.refs[b];
	return 0;
}

static int md_inc_data(struct pool_md *md, uint64_t b)
{
	if (b >= M(md)->live.nr_data)
		return -EINVAL;
	ref_inc(&M(md)->live, b);
	return 0;
}

static int md_dec_data(struct pool_md *md, uint64_t b)
{
	if (b >= M(md)->live.nr_data || !M(md)->live.refs[b])
		return -EINVAL;
	ref_dec(&M(md)->live, b);
	return 0;
}

static int md_resize_data(struct pool_md *md, uint64_t nr)
{
	struct state *s = &M(md)->live;
	uint32_t *refs = realloc(s->refs, (nr + 1) * sizeof(*refs));

	if (!refs)
		return -ENOMEM;
	memset(refs + s->nr_data, 0, (nr + 1 - s->nr_data) * sizeof(*refs));
	s->refs = refs;
	s->nr_data = nr;
	return 0;
}

static int md_resize_meta(struct pool_md *md, uint64_t nr)
{
	M(md)->live.nr_meta = nr;
	return 0;
}

static int md_reserve_snap(struct pool_md *md)
{
	if (M(md)->live.held)
		return -EBUSY;
	M(md)->live.held = 1000;
	return 0;
}

static int md_release_snap(struct pool_md *md)
{
	if (!M(md)->live.held)
		return -EINVAL;
	M(md)->live.held = 0;
	return 0;
}

static const struct pool_md_ops model_ops = {
	.destroy = md_destroy,
	.info = md_info,
	.commit = md_commit,
	.abort = md_abort,
	.set_needs_check = md_set_needs_check,
	.set_trans_id = md_set_trans_id,
	.create_thin = md_create_thin,
	.create_snap = md_create_snap,
	.delete_thin = md_delete_thin,
	.thin_info = md_thin_info,
	.lookup = md_lookup,
	.next_mapping = md_next_mapping,
	.highest_mapped = md_highest_mapped,
	.insert = md_insert,
	.remove_range = md_remove_range,
	.alloc_data = md_alloc_data,
	.data_ref = md_data_ref,
	.inc_data = md_inc_data,
	.dec_data = md_dec_data,
	.resize_data = md_resize_data,
	.resize_meta = md_resize_meta,
	.reserve_snap = md_reserve_snap,
	.release_snap = md_release_snap,
	.lookup_run = md_lookup_run,
	.insert_run = md_insert_run,
};

int md_model_open(struct md_store *s, struct pool_md **out)
{
	struct model *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->md.ops = &model_ops;
	m->store = s;
	r = copy_state(&m->live, &s->committed);
	if (r) {
		free_state(&m->live);
		free(m);
		return r;
	}
	*out = &m->md;
	return 0;
}

int md_model_check(struct pool_md *md)
{
	struct state *s = &M(md)->live;
	uint32_t *want = calloc(s->nr_data + 1, sizeof(*want));
	uint64_t used = 0, maps = 0;
	int r = 0;

	if (!want)
		return -ENOMEM;
	for (size_t i = 0; i < s->ndev; i++) {
		maps += s->devs[i].n;
		for (size_t k = 0; k < s->devs[i].n; k++) {
			want[s->devs[i].maps[k].db]++;
			if (k && s->devs[i].maps[k].vb <= s->devs[i].maps[k - 1].vb)
				r = -EILSEQ;
		}
	}
	for (uint64_t b = 0; b < s->nr_data; b++) {
		if (want[b] != s->refs[b])
			r = -EILSEQ;
		used += want[b] != 0;
	}
	if (used != s->nr_used || maps != s->nr_mappings)
		r = -EILSEQ;
	free(want);
	return r;
}
