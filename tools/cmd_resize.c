/* thinp resize: grow the pool's data device. */
#include "thinp.h"

/* Grow a regular data file to hold the blocks if it is too small. */
static int run(struct invocation *inv)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	uint64_t blocks = opt(inv, "data-blocks")->num, bytes;
	int e = thinp_pool_get_status(inv->pool, &st);

	if (!e)
		e = thinp_io_size(inv->data_io, &bytes);
	if (!e && bytes / st.data_block_size < blocks)
		e = thinp_io_resize(inv->data_io, blocks * st.data_block_size);
	if (e)
		return fail(inv, e, "%s", inv->data_path);
	e = thinp_pool_resize_data(inv->pool, blocks);
	return e ? fail(inv, e, NULL) : EXIT_OK;
}

static const struct option_spec options[] = {
	{ "data-blocks", 'n', "N", OPT_REQUIRED, parse_data_blocks,
	  "the new size of the data device in data blocks" },
	{ NULL },
};

const struct command cmd_resize = {
	.name = "resize",
	.summary = "grow the pool's data device",
	.description =
		"Grow the pool to N data blocks (a regular DATA file is extended to\n"
		"hold them). Shrinking is refused.\n",
	.options = options,
	.open = OPEN_POOL,
	.run = run,
};
