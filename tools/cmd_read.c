/* thinp read: bytes of a thin device to standard output. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "thinp.h"

#define CHUNK (1024u * 1024)

static int run(struct invocation *inv)
{
	char *buf = malloc(CHUNK);
	uint64_t off = inv->operand[1].num, left = inv->operand[2].num;
	int e = 0;

	if (!buf)
		return err("out of memory");
	while (!e && left) {
		uint64_t n = left < CHUNK ? left : CHUNK;

		e = thinp_thin_read(inv->thin, buf, n, off);
		if (!e && fwrite(buf, 1, n, stdout) != n)
			e = -EIO;
		off += n;
		left -= n;
	}
	free(buf);
	if (!e && fflush(stdout))
		e = -EIO;
	return e ? fail(inv, e, "device %" PRIu64, inv->operand[0].num) : EXIT_OK;
}

static const struct option_spec options[] = { OPT_ORIGIN, { NULL } };
static const struct operand_spec operands[] = {
	{ "DEV", parse_u64 }, { "OFFSET", parse_size }, { "LENGTH", parse_size }, { NULL },
};

const struct command cmd_read = {
	.name = "read",
	.summary = "read from a thin device to standard output",
	.description =
		"Write LENGTH bytes of thin device DEV from byte OFFSET to standard\n"
		"output. Blocks never written read as zeroes (or from the origin).\n"
		"The pool is opened read-only.\n",
	.options = options,
	.operands = operands,
	.min_operands = 3,
	.open = OPEN_THIN,
	.rdonly = true,
	.run = run,
};
