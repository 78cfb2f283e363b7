/* thinp write: standard input into a thin device, through the pool. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "thinp.h"

#define CHUNK (1024u * 1024)

static int run(struct invocation *inv)
{
	char *buf = malloc(CHUNK);
	uint64_t off = inv->operand[1].num;
	size_t n;
	int e = 0;

	if (!buf)
		return err("out of memory");
	while (!e && (n = fread(buf, 1, CHUNK, stdin)) > 0) {
		e = thinp_thin_write(inv->thin, buf, n, off);
		off += n;
	}
	free(buf);
	if (!e && ferror(stdin))
		return err("standard input: read error");
	if (!e)
		e = thinp_thin_flush(inv->thin);
	return e ? fail(inv, e, "device %" PRIu64, inv->operand[0].num) : EXIT_OK;
}

static const struct option_spec options[] = { OPT_ORIGIN, { NULL } };
static const struct operand_spec operands[] = {
	{ "DEV", parse_u64 }, { "OFFSET", parse_size }, { NULL },
};

const struct command cmd_write = {
	.name = "write",
	.summary = "write standard input to a thin device",
	.description =
		"Open the pool on META and DATA, write standard input into thin device\n"
		"DEV at byte OFFSET (k/m/g suffixes allowed), then flush: the data is\n"
		"durable when the command succeeds.\n",
	.options = options,
	.operands = operands,
	.min_operands = 2,
	.open = OPEN_THIN,
	.run = run,
};
