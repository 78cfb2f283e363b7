/* thinp status: the kernel's thin-pool status fields (FORMAT.md 10.3, 16). */
#include <getopt.h>
#include <inttypes.h>

#include "thinp.h"

int cmd_status(int argc, char **argv)
{
	thinp_meta_status s;
	const char *path;
	struct meta_ctx c;
	int r, e;

	if ((r = parse_metadata_only(argc, argv, false, &path)) >= 0)
		return r;
	if ((r = no_operands(argc, argv)))
		return r;
	if ((r = meta_open(&c, path, OPEN_RDONLY)))
		return r;
	STRUCT_INIT(s);
	e = thinp_meta_get_status(c.meta, &s);
	if (e) {
		r = err("%s: %s", path, meta_error(&c, e));
	} else {
		/* The handle is read-only because we only look; the pool itself
		 * would run read-write unless its metadata needs a check. */
		printf("%" PRIu64 " %" PRIu64 "/%" PRIu64 " %" PRIu64 "/%" PRIu64 " ",
		       s.transaction_id, s.used_metadata_blocks, s.total_metadata_blocks,
		       s.used_data_blocks, s.total_data_blocks);
		if (s.held_root)
			printf("%" PRIu64, s.held_root);
		else
			printf("-");
		printf(" %s discard_passdown queue_if_no_space %s %" PRIu64 "\n",
		       s.needs_check ? "ro" : "rw", s.needs_check ? "needs_check" : "-",
		       s.metadata_low_watermark);
	}
	meta_close(&c);
	return r;
}
