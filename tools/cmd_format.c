/* thinp format: fresh pool metadata on an existing file. */
#include <errno.h>

#include "thinp.h"

/* A data block size in bytes within the kernel's limits (FORMAT.md 11). */
static const char *parse_block_size(const char *s, uint64_t *bytes)
{
	uint64_t min = 512ull * THINP_META_MIN_DATA_BLOCK_SIZE;
	uint64_t max = 512ull * THINP_META_MAX_DATA_BLOCK_SIZE;

	if (parse_size(s, bytes))
		return "";
	if (*bytes < min || *bytes > max || *bytes % min)
		return "must be 64k .. 1g and a multiple of 64k";
	return NULL;
}

static int run(struct invocation *inv)
{
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	thinp_meta_options o;
	int e;

	p.data_block_size = (uint32_t)(opt(inv, "block-size")->num / 512);
	p.nr_data_blocks = opt(inv, "data-blocks")->num;
	if (opt(inv, "force")->given)
		p.flags |= THINP_META_FORMAT_OVERWRITE;
	meta_options(inv, &o);
	e = thinp_meta_format(&inv->meta, inv->meta_io, &p, &o);
	if (!e)
		return EXIT_OK;
	inv->meta = NULL;
	if (e == -EEXIST)
		return err("%s: already holds pool metadata (use --force to overwrite)", inv->meta_path);
	if (e == -ENOSPC)
		return err("%s: too small for pool metadata (at least 64 KiB)", inv->meta_path);
	return fail(inv, e, "%s", inv->meta_path);
}

static const struct option_spec options[] = {
	{ "block-size", 'b', "SIZE", OPT_REQUIRED, parse_block_size,
	  "data block size in bytes, k/m/g suffixes allowed\n(64k .. 1g, a multiple of 64k)" },
	{ "data-blocks", 'n', "N", OPT_REQUIRED, parse_data_blocks,
	  "size of the data device in data blocks" },
	{ "force", 'f', NULL, 0, NULL, "overwrite valid metadata already on META" },
	{ NULL },
};

const struct command cmd_format = {
	.name = "format",
	.summary = "create a new, empty pool metadata",
	.description =
		"Write fresh pool metadata on META (an existing file or block device;\n"
		"its size is the metadata size, used up to ~15.9 GiB).\n",
	.options = options,
	.open = OPEN_META_IO,
	.run = run,
};
