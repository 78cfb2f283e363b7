/* thinp discard: unmap a byte range of a thin device. */
#include <inttypes.h>

#include "thinp.h"

static int run(struct invocation *inv)
{
	int e = thinp_thin_discard(inv->thin, inv->operand[2].num, inv->operand[1].num);

	if (!e)
		e = thinp_thin_flush(inv->thin);
	return e ? fail(inv, e, "device %" PRIu64, inv->operand[0].num) : EXIT_OK;
}

static const struct operand_spec operands[] = {
	{ "DEV", parse_u64 }, { "OFFSET", parse_size }, { "LENGTH", parse_size }, { NULL },
};

const struct command cmd_discard = {
	.name = "discard",
	.summary = "discard a range of a thin device",
	.description =
		"Unmap the data blocks entirely inside the byte range (a partial block\n"
		"is left alone), passing the discard down to DATA for blocks no other\n"
		"device shares, then flush.\n",
	.operands = operands,
	.min_operands = 3,
	.open = OPEN_THIN,
	.run = run,
};
