/* thinp status: the kernel's thin-pool status fields (FORMAT.md 10.3, 16). */
#include <inttypes.h>

#include "thinp.h"

static int run(struct invocation *inv)
{
	thinp_meta_status s;
	int e;

	STRUCT_INIT(s);
	e = thinp_meta_get_status(inv->meta, &s);
	if (e)
		return fail(inv, e, "%s", inv->meta_path);
	/* The handle is read-only because we only look; the pool itself
	 * would run read-write unless its metadata needs a check. */
	printf("%" PRIu64 " %" PRIu64 "/%" PRIu64 " %" PRIu64 "/%" PRIu64 " ", s.transaction_id,
	       s.used_metadata_blocks, s.total_metadata_blocks, s.used_data_blocks,
	       s.total_data_blocks);
	if (s.held_root)
		printf("%" PRIu64, s.held_root);
	else
		printf("-");
	printf(" %s discard_passdown queue_if_no_space %s %" PRIu64 "\n",
	       s.needs_check ? "ro" : "rw", s.needs_check ? "needs_check" : "-",
	       s.metadata_low_watermark);
	return EXIT_OK;
}

const struct command cmd_status = {
	.name = "status",
	.summary = "print the pool status line",
	.description =
		"Print the kernel's thin-pool status fields:\n"
		"  <transaction id> <used>/<total metadata blocks> <used>/<total data blocks>\n"
		"  <held metadata root|-> <rw|ro> discard_passdown queue_if_no_space\n"
		"  <needs_check|-> <metadata low watermark>\n"
		"Used metadata includes the kernel's reserve of min(4096, total/10) blocks.\n"
		"The discard and no-space fields belong to the pool table, not the\n"
		"metadata: the kernel's defaults are printed.\n",
	.open = OPEN_META,
	.rdonly = true,
	.run = run,
};
