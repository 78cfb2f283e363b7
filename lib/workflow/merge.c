/*
 * Merge into an external origin (origin_jobs.h): the device's provisioned
 * blocks are written onto the origin, the origin flushed, then the blocks
 * unmapped and the pool committed, a batch at a time.
 *
 * Why every point is safe: until the commit that unmaps a block, the device
 * still maps it and reads its own copy, whatever the origin holds; after
 * it, the origin holds the same bytes, durably (flushed before). A rerun
 * finds the blocks still mapped and writes them again: the same bytes.
 * Other devices reading the same origin (siblings) would see it change, so
 * either the merge refuses, or first copies into their holes the origin's
 * data of the blocks it is about to overwrite, and commits that before the
 * origin's first write.
 */
#include "os/os.h"

#include <libthinp/origin_jobs.h>
#include "pool/origin_ops.h"
#include "util/abi_struct.h"
#include "workflow/job.h"
#include "util/compiler.h"
#include "workflow/origin_copy.h"

/* Consecutive blocks are read and written a run at a time. */
#define RUN_BYTES (1u << 20)

struct merge {
	thinp_pool *pool;
	uint64_t id;
	thinp_catalog *cat;
	thinp_merge_options o;
	thinp_job *job;
	struct origin_view ov;
	uint64_t end;          /* blocks [0, end) lie wholly inside the origin */
	uint64_t *siblings;    /* ids of the other devices on the same origin */
	size_t nr_siblings;
	thinp_thin *dev;
	uint64_t run_blocks;   /* blocks copied at once: RUN_BYTES, at least one */
	void *buf;             /* run_blocks blocks */
};

static int add_sibling(struct merge *mg, uint64_t id)
{
	uint64_t *s = thinp_os_realloc(mg->siblings, mg->nr_siblings * sizeof(*s),
					 (mg->nr_siblings + 1) * sizeof(*s));

	if (!s)
		return -ENOMEM;
	mg->siblings = s;
	s[mg->nr_siblings++] = id;
	return 0;
}

/* The devices of the pool whose entries name @origin, but the merged one. */
/* (@e: scratch for the walk.) */
static int find_siblings(struct merge *mg, const char *origin, thinp_catalog_entry *e)
{
	for (uint64_t id = 0; thinp_catalog_next(mg->cat, id, e) == 0; id = e->id + 1) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;
		int r;

		if (e->id == mg->id || strcmp(e->origin, origin))
			continue;
		r = thinp_pool_get_thin_status(mg->pool, e->id, &st);
		if (r == -ENODATA)
			continue; /* a stale entry: nothing reads through it */
		if (!r)
			r = add_sibling(mg, e->id);
		if (r)
			return r;
	}
	return 0;
}

/* What the merge needs before it touches anything: an origin in the
 * entry, the device closed, and no sibling unless told to hydrate them. */
static int check_device(struct merge *mg)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	char *origin = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	r = thinp_catalog_get(mg->cat, mg->id, e);
	if (!r)
		r = thinp_pool_get_thin_status(mg->pool, mg->id, &st);
	if (r)
		r = pool_report(mg->pool, r, "merge device %llu", (unsigned long long)mg->id);
	else if (!e->origin[0])
		r = pool_report(mg->pool, -EINVAL, "merge device %llu: no external origin in its entry",
				(unsigned long long)mg->id);
	else if (st.open_count)
		r = pool_report(mg->pool, -EBUSY, "merge device %llu: it is open",
				(unsigned long long)mg->id);
	else if (!(origin = thinp_os_alloc(strlen(e->origin) + 1)))
		r = -ENOMEM;
	else
		r = find_siblings(mg, strcpy(origin, e->origin), e);
	if (!r && mg->nr_siblings && !(mg->o.flags & THINP_MERGE_HYDRATE_SIBLINGS))
		r = pool_report(mg->pool, -EBUSY,
				"merge device %llu: device %llu also reads origin %s "
				"(hydrate the siblings first)",
				(unsigned long long)mg->id, (unsigned long long)mg->siblings[0],
				origin);
	thinp_os_free(origin);
	thinp_os_free(e);
	return r;
}

struct sibling_fill {
	struct merge *mg;
	thinp_thin *sibling;
};

static int fill_sibling_block(uint64_t vblock, void *ctx)
{
	struct sibling_fill *sf = ctx;
	int r = origin_fill_hole(sf->sibling, &sf->mg->ov, vblock, false, sf->mg->buf);

	return r < 0 ? r : job_checkpoint(sf->mg->job, sf->mg->ov.block_size);
}

/* Copy into sibling @sid's holes the origin's data of every block the
 * merge will overwrite (the device's mapped blocks below end), zeroes
 * included: the origin will not hold them any more. */
static int hydrate_sibling(struct merge *mg, uint64_t sid)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	struct sibling_fill sf = { mg, NULL };
	int r;

	to.size = mg->end * mg->ov.block_size;
	to.origin = mg->ov.io;
	r = thinp_thin_open(&sf.sibling, mg->pool, sid, &to);
	if (!r)
		r = origin_walk_mapped(mg->pool, mg->id, mg->end, fill_sibling_block, &sf);
	thinp_thin_close(sf.sibling);
	return r;
}

/* The next run of consecutive mapped blocks at or after vb, below end:
 * [*start, *start + *n), at most max blocks (*n 0: none left). */
static int next_run(struct merge *mg, uint64_t vb, uint64_t max, uint64_t *start, uint64_t *n)
{
	thinp_mapping m = THINP_MAPPING_INIT;
	uint64_t at;

	for (*n = 0; *n < max; (*n)++) {
		int r = thinp_pool_thin_next_map(mg->pool, mg->id, *n ? *start + *n : vb, &at, &m);

		if (r == -ENODATA || (!r && (at >= mg->end || (*n && at != *start + *n))))
			break;
		if (r)
			return r;
		if (!*n)
			*start = at;
	}
	return 0;
}

/* Write the next batch of mapped blocks from *vb on to the origin, a run
 * of up to RUN_BYTES at a time, and flush it. The batch is [*first, *vb),
 * *count blocks. */
static int copy_batch(struct merge *mg, uint64_t *vb, uint64_t *first, uint64_t *count)
{
	uint64_t bs = mg->ov.block_size, start, n;
	int r = 0;

	for (*count = 0; !mg->o.batch_blocks || *count < mg->o.batch_blocks; *count += n) {
		uint64_t max = mg->run_blocks;

		if (mg->o.batch_blocks)
			max = THINP_MIN(max, mg->o.batch_blocks - *count);
		r = next_run(mg, *vb, max, &start, &n);
		if (r || !n)
			break;
		if (!*count)
			*first = start;
		r = thinp_thin_read(mg->dev, mg->buf, n * bs, start * bs);
		if (!r && (r = thinp_io_write(mg->ov.io, mg->buf, n * bs, start * bs, 0)))
			r = pool_report(mg->pool, r, "merge: origin write at block %llu",
					(unsigned long long)start);
		if (!r)
			r = job_checkpoint(mg->job, n * bs);
		if (r)
			return r;
		*vb = start + n;
	}
	if (!r && *count && (r = thinp_io_flush(mg->ov.io)))
		r = pool_report(mg->pool, r, "merge: origin flush");
	return r;
}

/* Batch after batch: copy, flush the origin, unmap, commit. */
static int merge_blocks(struct merge *mg)
{
	uint64_t vb = 0, first = 0, count;
	int r;

	for (;;) {
		r = copy_batch(mg, &vb, &first, &count);
		if (r || !count)
			return r;
		job_set_phase(mg->job, THINP_JOB_PHASE_SWITCH);
		r = pool_thin_unmap(mg->dev, first, vb);
		if (!r)
			r = thinp_pool_commit(mg->pool);
		if (r)
			return r;
		job_set_phase(mg->job, THINP_JOB_PHASE_COPY);
	}
}

static int merge_run(struct merge *mg)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	uint64_t mapped;
	int r = origin_view_init(&mg->ov, mg->pool, mg->ov.io);

	if (!r)
		r = check_device(mg);
	mg->end = mg->ov.size / (mg->ov.block_size ? mg->ov.block_size : 1);
	if (!r)
		r = origin_count_mapped(mg->pool, mg->id, mg->end, &mapped);
	if (r || !mg->end || !mapped)
		return r;
	job_add_total(mg->job, (mg->nr_siblings + 1) * mapped * mg->ov.block_size);
	mg->run_blocks = THINP_MAX(1, RUN_BYTES / mg->ov.block_size);
	if (!(mg->buf = thinp_os_alloc_aligned(mg->run_blocks * mg->ov.block_size, 4096)))
		return -ENOMEM;
	for (size_t i = 0; i < mg->nr_siblings && !r; i++)
		r = hydrate_sibling(mg, mg->siblings[i]);
	/* The siblings' copies are durable before the origin changes. */
	if (!r && mg->nr_siblings)
		r = thinp_pool_commit(mg->pool);
	to.size = mg->end * mg->ov.block_size;
	if (!r)
		r = thinp_thin_open(&mg->dev, mg->pool, mg->id, &to);
	if (!r)
		r = merge_blocks(mg);
	thinp_thin_close(mg->dev);
	thinp_os_free(mg->buf);
	return r;
}

int thinp_merge(thinp_pool *pool, uint64_t id, thinp_io *origin, thinp_catalog *cat,
		const thinp_merge_options *opts, thinp_job *job)
{
	struct merge mg = { .pool = pool, .id = id, .cat = cat, .job = job };
	int r;

	mg.o = (thinp_merge_options)THINP_MERGE_OPTIONS_INIT;
	mg.ov.io = origin;
	if (!pool || !origin || !cat ||
	    (opts && thinp_abi_copy_in(&mg.o, sizeof(mg.o), opts, sizeof(mg.o),
				       THINP_MERGE_OPTIONS_VERSION)) ||
	    (mg.o.flags & ~(uint32_t)THINP_MERGE_HYDRATE_SIBLINGS))
		return -EINVAL;
	r = job_begin(job, THINP_JOB_PHASE_COPY);
	if (r)
		return r;
	r = merge_run(&mg);
	thinp_os_free(mg.siblings);
	return job_end(job, r);
}
