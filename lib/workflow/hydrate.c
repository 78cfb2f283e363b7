/*
 * Hydration (origin_jobs.h): copy the external origin into every hole of a
 * thin device in use, so it no longer needs the origin.
 *
 * Every step keeps what the device reads: a hole reads the origin, and a
 * filled hole holds the origin's bytes (pool_thin_fill_hole fills it only
 * if no write got there first). So a crash or a cancel anywhere leaves a
 * device that reads as before, and a rerun skips what is provisioned. The
 * catalog forgets the origin only once the last copy is committed.
 */
#include "os/os.h"

#include <libthinp/origin_jobs.h>
#include "pool/origin_ops.h"
#include "replica/replica.h"
#include "util/abi_struct.h"
#include "util/compiler.h"
#include "workflow/job.h"
#include "workflow/origin_copy.h"

#define DEFAULT_BATCH 256

struct hydrate {
	thinp_thin *thin;
	thinp_pool *pool;
	struct origin_view ov;
	uint64_t end;      /* virtual blocks [0, end) may read the origin */
	uint64_t batch;
	thinp_job *job;
	void *buf;
};

/* -ENOSPC unless every hole in [0, end) fits in the free data blocks. */
static int check_space(struct hydrate *h, uint64_t *holes)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	uint64_t mapped;
	int r = origin_count_mapped(h->pool, thinp_thin_id(h->thin), h->end, &mapped);

	if (!r)
		r = thinp_pool_get_status(h->pool, &st);
	if (r)
		return r;
	*holes = h->end - mapped;
	if (*holes > st.data_total - st.data_used)
		return pool_report(h->pool, -ENOSPC,
				   "hydrate device %llu: %llu blocks to copy, %llu free",
				   (unsigned long long)thinp_thin_id(h->thin),
				   (unsigned long long)*holes,
				   (unsigned long long)(st.data_total - st.data_used));
	return 0;
}

/* Fill the holes [vb, stop), committing every batch copies. */
static int fill_run(struct hydrate *h, uint64_t vb, uint64_t stop, uint64_t *since_commit)
{
	for (; vb < stop; vb++) {
		int r = origin_fill_hole(h->thin, &h->ov, vb, true, h->buf);

		if (r < 0)
			return r;
		if (r == 1 && ++*since_commit >= h->batch) {
			*since_commit = 0;
			r = thinp_pool_commit(h->pool);
			if (r)
				return r;
		}
		r = job_checkpoint(h->job, h->ov.block_size);
		if (r)
			return r;
	}
	return 0;
}

/* Walk the holes between the device's mappings up to end. */
static int fill_holes(struct hydrate *h)
{
	thinp_mapping m = THINP_MAPPING_INIT;
	uint64_t vb = 0, at, since_commit = 0;
	int r = 0;

	while (vb < h->end && !r) {
		r = thinp_pool_thin_next_map(h->pool, thinp_thin_id(h->thin), vb, &at, &m);
		if (r == -ENODATA)
			at = h->end, r = 0;
		if (!r)
			r = fill_run(h, vb, THINP_MIN(at, h->end), &since_commit);
		vb = at + 1;
	}
	return r ? r : thinp_pool_commit(h->pool);
}

/* The device no longer needs its origin: say so in its catalog entry. */
static int forget_origin(thinp_catalog *cat, thinp_pool *pool, uint64_t id)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	r = thinp_catalog_get(cat, id, e);
	if (r == -ENODATA || (!r && !e->origin[0])) {
		thinp_os_free(e);
		return 0;
	}
	e->origin[0] = '\0';
	if (!r)
		r = thinp_catalog_set(cat, e);
	thinp_os_free(e);
	return r ? r : replica_commit_catalog(cat, pool);
}

static int hydrate_run(struct hydrate *h, thinp_catalog *cat)
{
	uint64_t bs, holes;
	int r = origin_view_init(&h->ov, h->pool, pool_thin_origin(h->thin));

	if (r)
		return r;
	bs = h->ov.block_size;
	h->end = THINP_MIN(origin_blocks_covered(&h->ov), (thinp_thin_size(h->thin) + bs - 1) / bs);
	r = check_space(h, &holes);
	if (r)
		return r;
	job_add_total(h->job, holes * bs);
	h->buf = origin_block_buffer(&h->ov);
	if (!h->buf)
		return -ENOMEM;
	r = fill_holes(h);
	thinp_os_free(h->buf);
	if (r || !cat)
		return r;
	job_set_phase(h->job, THINP_JOB_PHASE_SWITCH);
	return forget_origin(cat, h->pool, thinp_thin_id(h->thin));
}

int thinp_hydrate(thinp_thin *thin, thinp_catalog *cat, const thinp_hydrate_options *opts,
		  thinp_job *job)
{
	thinp_hydrate_options o = THINP_HYDRATE_OPTIONS_INIT;
	struct hydrate h = { .thin = thin, .job = job };
	int r;

	if (!thin || !pool_thin_origin(thin) ||
	    (opts && thinp_abi_copy_in(&o, sizeof(o), opts, sizeof(o),
				       THINP_HYDRATE_OPTIONS_VERSION)) ||
	    o.flags)
		return -EINVAL;
	h.pool = pool_thin_pool(thin);
	h.batch = o.batch_blocks ? o.batch_blocks : DEFAULT_BATCH;
	r = job_begin(job, THINP_JOB_PHASE_COPY);
	if (r)
		return r;
	return job_end(job, hydrate_run(&h, cat));
}
