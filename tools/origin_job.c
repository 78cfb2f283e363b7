/*
 * What thinp merge and thinp hydrate share: DEV's catalog entry and the
 * origin it names (or --origin), and a job whose rate comes from --rate
 * and whose progress goes to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "thinp.h"

static void job_progress(const thinp_job_progress *pr, void *ctx)
{
	struct origin_job *oj = ctx;

	progress_update(&oj->p, pr->done, pr->total, false);
}

static int open_origin(struct invocation *inv, struct origin_job *oj, bool writable)
{
	const struct arg *given = opt(inv, "origin");
	const char *path = given->given ? given->str : oj->entry->origin;
	int r;

	if (!*path)
		return err("device %" PRIu64 " has no external origin in its catalog entry",
			   inv->operand[0].num);
	r = thinp_io_open_file(&oj->origin, path, writable ? 0 : THINP_IO_RDONLY);
	return r ? err("%s: %s", path, thinp_strerror(r)) : EXIT_OK;
}

static int start_job(struct invocation *inv, struct origin_job *oj, const char *what)
{
	int r = thinp_job_new(&oj->job);

	if (!r)
		r = thinp_job_set_rate_limit(oj->job, opt(inv, "rate")->num);
	if (!r)
		r = thinp_job_set_progress_fn(oj->job, job_progress, oj);
	if (r)
		return err("%s", thinp_strerror(r));
	progress_start(&oj->p, inv, what);
	return EXIT_OK;
}

int origin_job_open(struct invocation *inv, struct origin_job *oj, bool writable,
		    const char *what)
{
	uint64_t dev = inv->operand[0].num;
	int r;

	memset(oj, 0, sizeof(*oj));
	oj->entry = malloc(sizeof(*oj->entry));
	if (!oj->entry)
		return err("out of memory");
	*oj->entry = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	if (open_catalog(inv, &oj->cio, &oj->cat))
		return EXIT_FAIL;
	r = thinp_catalog_get(oj->cat, dev, oj->entry);
	if (r == -ENODATA)
		return err("device %" PRIu64 " has no catalog entry", dev);
	if (r)
		return err("catalog: %s", thinp_strerror(r));
	if (open_origin(inv, oj, writable))
		return EXIT_FAIL;
	return start_job(inv, oj, what);
}

int origin_job_close(struct invocation *inv, struct origin_job *oj, int r)
{
	int rc = EXIT_OK;

	if (oj->job) {
		thinp_job_progress pr;

		STRUCT_INIT(pr);
		if (!thinp_job_get_progress(oj->job, &pr))
			progress_update(&oj->p, pr.done, pr.total, true);
	}
	if (r)
		rc = fail(inv, r, "device %" PRIu64, inv->operand[0].num);
	thinp_job_free(oj->job);
	thinp_io_close(oj->origin);
	thinp_catalog_close(oj->cat);
	thinp_io_close(oj->cio);
	free(oj->entry);
	return rc;
}
