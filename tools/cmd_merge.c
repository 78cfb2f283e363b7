/* thinp merge: write a thin device's blocks onto its external origin. */
#include <inttypes.h>

#include "thinp.h"

static int run(struct invocation *inv)
{
	thinp_merge_options o = THINP_MERGE_OPTIONS_INIT;
	struct origin_job oj;
	int r = 0;

	if (origin_job_open(inv, &oj, true, "merge"))
		return origin_job_close(inv, &oj, 0), EXIT_FAIL;
	o.batch_blocks = opt(inv, "batch")->num;
	if (opt(inv, "hydrate-siblings")->given)
		o.flags |= THINP_MERGE_HYDRATE_SIBLINGS;
	r = thinp_merge(inv->pool, inv->operand[0].num, oj.origin, oj.cat, &o, oj.job);
	return origin_job_close(inv, &oj, r);
}

static const struct option_spec options[] = {
	{ "hydrate-siblings", 0, NULL, 0, NULL,
	  "first copy into the other devices on the same\norigin the data the merge overwrites" },
	OPT_ORIGIN_JOB("blocks per batch (origin flush, unmap, commit);\ndefault: all in one"),
	{ NULL },
};
static const struct operand_spec operands[] = { { "DEV", parse_u64 }, { NULL, NULL } };

const struct command cmd_merge = {
	.name = "merge",
	.summary = "merge a thin device into its external origin",
	.description =
		"Write every provisioned block of thin device DEV onto its external\n"
		"origin (the file its catalog entry names, opened for writing), flush\n"
		"the origin, then unmap the blocks in one pool commit (or one per\n"
		"--batch). DEV reads the same before and after, and at every point in\n"
		"between: after a crash or an interrupt, run it again. DEV must not be\n"
		"in use. Another device whose entry names the same origin makes it\n"
		"fail, unless --hydrate-siblings copies that device's affected blocks\n"
		"first. Blocks past the end of the origin stay in DEV.\n",
	.options = options,
	.operands = operands,
	.min_operands = 1,
	.open = OPEN_POOL,
	.run = run,
};
