/*
 * thinp write / read / discard / resize: data commands, through the pool
 * runtime (libthinp/pool.h, libthinp/thin.h) on a metadata file and a data
 * file. Each command opens the pool, does one thing, flushes, and closes the
 * pool (which commits).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

#define CHUNK (1024u * 1024)
/* The pool records no volume size; the tool's volumes span everything. */
#define TOOL_VOLUME_SIZE (UINT64_MAX - 4095)

struct data_ctx {
	const char *meta_path, *data_path, *origin_path;
	thinp_io *meta, *data, *origin;
	thinp_pool *pool;
	thinp_thin *thin;
	uint64_t dev;
	char errmsg[256]; /* the pool's error message, copied by pool_error() */
};

struct data_args {
	unsigned nops;         /* operands after DEV: 1 (OFFSET) or 2 (OFFSET LENGTH) */
	bool origin_allowed;
	bool needs_dev;
	uint64_t data_blocks;  /* --data-blocks, resize only */
	uint64_t offset, length;
	bool help;             /* --help was given and printed */
};

static int open_io(thinp_io **io, const char *path, bool rdonly)
{
	int e = thinp_io_open_file(io, path, rdonly ? THINP_IO_RDONLY : 0);

	if (e)
		return err("%s: %s", path, thinp_strerror(e));
	return EXIT_OK;
}

static const char *pool_error(struct data_ctx *c, int e)
{
	return thinp_pool_errmsg(c->pool, c->errmsg, sizeof(c->errmsg)) ? c->errmsg
									 : thinp_strerror(e);
}

static void data_close(struct data_ctx *c)
{
	thinp_thin_close(c->thin);
	thinp_pool_close(c->pool);
	thinp_io_close(c->origin);
	thinp_io_close(c->data);
	thinp_io_close(c->meta);
}

/* Open the devices, the pool and (if want_thin) volume c->dev. */
static int data_open(struct data_ctx *c, bool rdonly, bool want_thin)
{
	thinp_pool_options po = THINP_POOL_OPTIONS_INIT;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	int e;

	if (open_io(&c->meta, c->meta_path, rdonly) || open_io(&c->data, c->data_path, rdonly) ||
	    (c->origin_path && open_io(&c->origin, c->origin_path, true)))
		return EXIT_FAIL;
	if (rdonly)
		po.features |= THINP_POOL_READ_ONLY;
	e = thinp_pool_open(&c->pool, c->meta, c->data, &po);
	if (e)
		return err("%s: %s", c->meta_path, e == -EBUSY ? METADATA_BUSY : thinp_strerror(e));
	if (!want_thin)
		return EXIT_OK;
	to.size = TOOL_VOLUME_SIZE;
	to.origin = c->origin;
	e = thinp_thin_open(&c->thin, c->pool, c->dev, &to);
	if (e)
		return err("device %" PRIu64 ": %s", c->dev, pool_error(c, e));
	return EXIT_OK;
}

/* Options and operands shared by the data commands. */
static int parse(int argc, char **argv, struct data_ctx *c, struct data_args *a)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "data", required_argument, NULL, 'd' },
		{ "origin", required_argument, NULL, 'o' },
		{ "data-blocks", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_blocks = false;
	int ch;

	while ((ch = getopt_long(argc, argv, ":m:d:o:n:h", longopts, NULL)) != -1) {
		if (ch == 'm')
			c->meta_path = optarg;
		else if (ch == 'd')
			c->data_path = optarg;
		else if (ch == 'o' && a->origin_allowed)
			c->origin_path = optarg;
		else if (ch == 'n' && !a->needs_dev && parse_u64(optarg, &a->data_blocks))
			have_blocks = true;
		else if (ch == 'n' && !a->needs_dev)
			return usage_err("bad --data-blocks");
		else if (ch == 'h')
			return a->help = true, print_usage();
		else
			return bad_option(ch, argc, argv);
	}
	if (!c->meta_path || !c->data_path)
		return usage_err("-m META and -d DATA are required");
	if (!a->needs_dev)
		return have_blocks ? no_operands(argc, argv) : usage_err("--data-blocks is required");
	if (argc - optind != 1 + (int)a->nops)
		return usage_err(a->nops == 1 ? "expected DEV OFFSET" : "expected DEV OFFSET LENGTH");
	if (!parse_u64(argv[optind], &c->dev))
		return usage_err("bad DEV");
	if (!parse_size(argv[optind + 1], &a->offset))
		return usage_err("bad OFFSET");
	if (a->nops == 2 && !parse_size(argv[optind + 2], &a->length))
		return usage_err("bad LENGTH");
	return EXIT_OK;
}

/* Standard input to the volume at a->offset, then a flush. */
static int do_write(struct data_ctx *c, struct data_args *a)
{
	char *buf = malloc(CHUNK);
	uint64_t off = a->offset;
	size_t n;
	int e = 0;

	if (!buf)
		return err("%s", thinp_strerror(-ENOMEM));
	while (!e && (n = fread(buf, 1, CHUNK, stdin)) > 0) {
		e = thinp_thin_write(c->thin, buf, n, off);
		off += n;
	}
	free(buf);
	if (!e && ferror(stdin))
		return err("standard input: read error");
	if (!e)
		e = thinp_thin_flush(c->thin);
	return e ? err("device %" PRIu64 ": %s", c->dev, pool_error(c, e)) : EXIT_OK;
}

static int do_read(struct data_ctx *c, struct data_args *a)
{
	char *buf = malloc(CHUNK);
	uint64_t off = a->offset, left = a->length;
	int e = 0;

	if (!buf)
		return err("%s", thinp_strerror(-ENOMEM));
	while (!e && left) {
		uint64_t n = left < CHUNK ? left : CHUNK;

		e = thinp_thin_read(c->thin, buf, n, off);
		if (!e && fwrite(buf, 1, n, stdout) != n)
			e = -EIO;
		off += n;
		left -= n;
	}
	free(buf);
	if (!e && fflush(stdout))
		e = -EIO;
	return e ? err("device %" PRIu64 ": %s", c->dev, pool_error(c, e)) : EXIT_OK;
}

static int do_discard(struct data_ctx *c, struct data_args *a)
{
	int e = thinp_thin_discard(c->thin, a->length, a->offset);

	if (!e)
		e = thinp_thin_flush(c->thin);
	return e ? err("device %" PRIu64 ": %s", c->dev, pool_error(c, e)) : EXIT_OK;
}

/* Grow a regular data file to hold the blocks if it is too small. */
static int do_resize(struct data_ctx *c, struct data_args *a)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	uint64_t bytes;
	int e = thinp_pool_get_status(c->pool, &st);

	if (!e)
		e = thinp_io_size(c->data, &bytes);
	if (!e && bytes / st.data_block_size < a->data_blocks)
		e = thinp_io_resize(c->data, a->data_blocks * st.data_block_size);
	if (e)
		return err("%s: %s", c->data_path, thinp_strerror(e));
	e = thinp_pool_resize_data(c->pool, a->data_blocks);
	return e ? err("%s", pool_error(c, e)) : EXIT_OK;
}

static int run(int argc, char **argv, struct data_args *a, bool rdonly,
	       int (*fn)(struct data_ctx *, struct data_args *))
{
	struct data_ctx c;
	int r;

	memset(&c, 0, sizeof(c));
	r = parse(argc, argv, &c, a);
	if (r || a->help)
		return r;
	r = data_open(&c, rdonly, a->needs_dev);
	if (!r)
		r = fn(&c, a);
	data_close(&c);
	return r;
}

int cmd_write(int argc, char **argv)
{
	struct data_args a = { .nops = 1, .origin_allowed = true, .needs_dev = true };

	return run(argc, argv, &a, false, do_write);
}

int cmd_read(int argc, char **argv)
{
	struct data_args a = { .nops = 2, .origin_allowed = true, .needs_dev = true };

	return run(argc, argv, &a, true, do_read);
}

int cmd_discard(int argc, char **argv)
{
	struct data_args a = { .nops = 2, .needs_dev = true };

	return run(argc, argv, &a, false, do_discard);
}

int cmd_resize(int argc, char **argv)
{
	struct data_args a = { .needs_dev = false };

	return run(argc, argv, &a, false, do_resize);
}
