/* thinp lookup: query single mappings of the live metadata. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "thinp.h"

/* Prints one answer line; returns EXIT_OK, or EXIT_FAIL on a real error. */
static int lookup_one(struct meta_ctx *c, uint64_t dev, uint64_t vblock)
{
	uint64_t data;
	uint32_t time;
	int e = thinp_meta_lookup(c->meta, dev, vblock, &data, &time, NULL);

	if (e == -ENODATA) {
		printf("%" PRIu64 " %" PRIu64 " -\n", dev, vblock);
		return EXIT_OK;
	}
	if (e)
		return err("%" PRIu64 " %" PRIu64 ": %s", dev, vblock, meta_error(c, e));
	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 "\n", dev, vblock, data, time);
	return EXIT_OK;
}

/* Pairs "DEV VBLOCK" from stdin, one per line. */
static int lookup_stdin(struct meta_ctx *c)
{
	char line[128], a[64], b[64];
	unsigned long n = 0;
	uint64_t dev, vblock;
	int r;

	while (fgets(line, sizeof(line), stdin)) {
		n++;
		if (sscanf(line, "%63s %63s", a, b) != 2 || !parse_u64(a, &dev) ||
		    !parse_u64(b, &vblock))
			return err("standard input:%lu: expected 'DEV VBLOCK'", n);
		if ((r = lookup_one(c, dev, vblock)))
			return r;
	}
	return EXIT_OK;
}

int cmd_lookup(int argc, char **argv)
{
	const char *path;
	uint64_t dev = 0, vblock = 0;
	struct meta_ctx c;
	int r;

	if ((r = parse_metadata_only(argc, argv, false, &path)) >= 0)
		return r;
	if (argc - optind != 0 && argc - optind != 2)
		return usage_err("expected DEV VBLOCK, or pairs on standard input");
	if (argc - optind == 2 &&
	    (!parse_u64(argv[optind], &dev) || !parse_u64(argv[optind + 1], &vblock)))
		return usage_err("bad DEV or VBLOCK");
	if ((r = meta_open(&c, path, OPEN_RDONLY)))
		return r;
	r = argc - optind == 2 ? lookup_one(&c, dev, vblock) : lookup_stdin(&c);
	meta_close(&c);
	return r;
}
