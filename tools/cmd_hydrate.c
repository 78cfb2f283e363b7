/* thinp hydrate: copy a thin device's external origin into its holes. */
#include <inttypes.h>

#include "thinp.h"

static int hydrate(struct invocation *inv, struct origin_job *oj)
{
	thinp_hydrate_options o = THINP_HYDRATE_OPTIONS_INIT;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_thin *thin;
	int r;

	to.size = oj->entry->size;
	if (!to.size && (r = thinp_io_size(oj->origin, &to.size)))
		return r;
	to.origin = oj->origin;
	r = thinp_thin_open(&thin, inv->pool, inv->operand[0].num, &to);
	if (r)
		return r;
	o.batch_blocks = opt(inv, "batch")->num;
	r = thinp_hydrate(thin, oj->cat, &o, oj->job);
	thinp_thin_close(thin);
	return r;
}

static int run(struct invocation *inv)
{
	struct origin_job oj;

	if (origin_job_open(inv, &oj, false, "hydrate"))
		return origin_job_close(inv, &oj, 0), EXIT_FAIL;
	return origin_job_close(inv, &oj, hydrate(inv, &oj));
}

static const struct option_spec options[] = {
	OPT_ORIGIN_JOB("blocks copied between two commits (default 256)"),
	{ NULL },
};
static const struct operand_spec operands[] = { { "DEV", parse_u64 }, { NULL, NULL } };

const struct command cmd_hydrate = {
	.name = "hydrate",
	.summary = "copy a thin device's external origin into it",
	.description =
		"Copy the external origin's data (the file DEV's catalog entry names)\n"
		"into every block of thin device DEV that is not provisioned, committing\n"
		"every --batch blocks, so that DEV no longer needs the origin; then its\n"
		"entry forgets the origin. Origin blocks of zeroes stay unprovisioned.\n"
		"Fails before copying if the pool has too few free data blocks. After a\n"
		"crash or an interrupt, run it again: it skips what is provisioned.\n",
	.options = options,
	.operands = operands,
	.min_operands = 1,
	.open = OPEN_POOL,
	.run = run,
};
