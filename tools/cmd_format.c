/* thinp format: fresh pool metadata on an existing file. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "thinp.h"

struct format_args {
	const char *meta;
	uint64_t block_bytes;
	uint64_t data_blocks;
	bool have_block, have_blocks, force;
};

static int parse_args(int argc, char **argv, struct format_args *a)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "data-blocks", required_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, ":m:b:n:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': a->meta = optarg; break;
		case 'b':
			if (!parse_size(optarg, &a->block_bytes))
				return usage_err("bad block size '%s'", optarg);
			a->have_block = true;
			break;
		case 'n':
			if (!parse_u64(optarg, &a->data_blocks))
				return usage_err("bad number of data blocks '%s'", optarg);
			a->have_blocks = true;
			break;
		case 'f': a->force = true; break;
		case 'h': return -1;
		default: return bad_option(c, argc, argv);
		}
	}
	if (no_operands(argc, argv))
		return EXIT_USAGE;
	if (!a->meta)
		return usage_err("the metadata file is required (-m FILE)");
	if (!a->have_block)
		return usage_err("the data block size is required (--block-size SIZE)");
	if (!a->have_blocks)
		return usage_err("the data device size is required (--data-blocks N)");
	return EXIT_OK;
}

/* Bytes to sectors, within the kernel's limits (FORMAT.md 11). */
static int block_sectors(uint64_t bytes, uint32_t *sectors)
{
	uint64_t min = 512ull * THINP_META_MIN_DATA_BLOCK_SIZE;
	uint64_t max = 512ull * THINP_META_MAX_DATA_BLOCK_SIZE;

	if (bytes < min || bytes > max || bytes % min)
		return usage_err("bad block size %llu: must be 64k .. 1g and a multiple of 64k",
				 (unsigned long long)bytes);
	*sectors = (uint32_t)(bytes / 512);
	return EXIT_OK;
}

int cmd_format(int argc, char **argv)
{
	struct format_args a = { 0 };
	thinp_meta_format_params p = THINP_META_FORMAT_PARAMS_INIT;
	thinp_meta_options o;
	struct meta_ctx c;
	int r = parse_args(argc, argv, &a), e;

	if (r)
		return r < 0 ? print_usage() : r;
	if ((r = block_sectors(a.block_bytes, &p.data_block_size)))
		return r;
	if (a.data_blocks >= THINP_META_MAX_DATA_BLOCKS)
		return usage_err("too many data blocks: the format addresses fewer than 2^40");
	p.nr_data_blocks = a.data_blocks;
	if (a.force)
		p.flags |= THINP_META_FORMAT_OVERWRITE;
	if ((r = io_open(&c, a.meta, 0)))
		return r;
	meta_options(&c, &o);
	e = thinp_meta_format(&c.meta, c.io, &p, &o);
	if (e) {
		c.meta = NULL;
		if (e == -EEXIST)
			r = err("%s: already holds pool metadata (use --force to overwrite)", a.meta);
		else if (e == -ENOSPC)
			r = err("%s: too small for pool metadata (at least 64 KiB)", a.meta);
		else
			r = err("%s: %s", a.meta, meta_error(&c, e));
	}
	meta_close(&c);
	return r;
}
