/* thinp lookup: query single mappings of the live metadata. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "thinp.h"

/* Prints one answer line; returns EXIT_OK, or EXIT_FAIL on a real error. */
static int lookup_one(struct invocation *inv, uint64_t dev, uint64_t vblock)
{
	uint64_t data;
	uint32_t time;
	int e = thinp_meta_lookup(inv->meta, dev, vblock, &data, &time, NULL);

	if (e == -ENODATA) {
		printf("%" PRIu64 " %" PRIu64 " -\n", dev, vblock);
		return EXIT_OK;
	}
	if (e)
		return fail(inv, e, "%" PRIu64 " %" PRIu64, dev, vblock);
	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 "\n", dev, vblock, data, time);
	return EXIT_OK;
}

/* Pairs "DEV VBLOCK" from stdin, one per line. */
static int lookup_stdin(struct invocation *inv)
{
	char line[128], a[64], b[64];
	unsigned long n = 0;
	uint64_t dev, vblock;
	int r;

	while (fgets(line, sizeof(line), stdin)) {
		n++;
		if (sscanf(line, "%63s %63s", a, b) != 2 || parse_u64(a, &dev) ||
		    parse_u64(b, &vblock))
			return err("standard input:%lu: expected 'DEV VBLOCK'", n);
		if ((r = lookup_one(inv, dev, vblock)))
			return r;
	}
	return EXIT_OK;
}

static int run(struct invocation *inv)
{
	if (!inv->nr_operands)
		return lookup_stdin(inv);
	return lookup_one(inv, inv->operand[0].num, inv->operand[1].num);
}

static const struct operand_spec operands[] = {
	{ "DEV", parse_u64 }, { "VBLOCK", parse_u64 }, { NULL },
};

const struct command cmd_lookup = {
	.name = "lookup",
	.summary = "look mappings up",
	.description =
		"Print `DEV VBLOCK DATA_BLOCK TIME` for a mapped block, `DEV VBLOCK -`\n"
		"for an unmapped one. Without DEV VBLOCK, read such pairs from stdin,\n"
		"one per line.\n",
	.operands = operands,
	.min_operands = 0,
	.open = OPEN_META,
	.rdonly = true,
	.run = run,
};
