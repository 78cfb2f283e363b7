/*
 * Helpers shared by the commands: messages, number parsing, opening the
 * metadata file. Every error a user can cause ends up as exactly one line on
 * stderr, prefixed with the command's name.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <getopt.h>
#include <string.h>

#include "thinp.h"

static void vmsg(const char *fmt, va_list ap, const char *tail)
{
	fprintf(stderr, "thinp %s: ", current_command ? current_command->name : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", tail);
}

int err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap, "");
	va_end(ap);
	return EXIT_FAIL;
}

int usage_err(const char *fmt, ...)
{
	va_list ap;
	char tail[64];

	snprintf(tail, sizeof(tail), " (see 'thinp %s --help')", current_command->name);
	va_start(ap, fmt);
	vmsg(fmt, ap, tail);
	va_end(ap);
	return EXIT_USAGE;
}

int print_usage(void)
{
	fputs(current_command->usage, stdout);
	return EXIT_OK;
}

bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "kmg";
	char num[32];
	size_t n = s ? strlen(s) : 0;
	unsigned shift = 0;
	const char *u;
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, s, n + 1);
	u = strchr(units, num[n - 1] | 0x20);
	if (num[n - 1] >= 'A' && u) {
		shift = 10 * (unsigned)(u - units + 1);
		num[n - 1] = '\0';
	}
	if (!parse_u64(num, &v) || v > (UINT64_MAX >> shift))
		return false;
	*bytes = v << shift;
	return true;
}

static void log_to_ctx(int level, const char *msg, void *ctx)
{
	struct meta_ctx *c = ctx;

	if (level <= THINP_LOG_ERROR)
		snprintf(c->last_log, sizeof(c->last_log), "%s", msg);
}

void meta_options(struct meta_ctx *c, thinp_meta_options *o)
{
	thinp_meta_options init = THINP_META_OPTIONS_INIT;

	*o = init;
	o->log_fn = log_to_ctx;
	o->log_ctx = c;
}

const char *meta_error(struct meta_ctx *c, int e)
{
	const char *m = c->meta ? thinp_meta_errmsg(c->meta) : "";

	if (m && *m)
		return m;
	if (c->last_log[0])
		return c->last_log;
	return thinp_strerror(e);
}

int io_open(struct meta_ctx *c, const char *path, unsigned flags)
{
	int e;

	memset(c, 0, sizeof(*c));
	if (!path)
		return usage_err("the metadata file is required (-m FILE)");
	e = thinp_io_open_file(&c->io, path, (flags & OPEN_RDONLY) ? THINP_IO_RDONLY : 0);
	if (e == -EINVAL)
		return err("%s: not a regular file or block device", path);
	if (e)
		return err("%s: %s", path, strerror(-e));
	return EXIT_OK;
}

int meta_open(struct meta_ctx *c, const char *path, unsigned flags)
{
	thinp_meta_options o;
	int e, r = io_open(c, path, flags);

	if (r)
		return r;
	meta_options(c, &o);
	if (flags & OPEN_RDONLY)
		o.flags |= THINP_META_RDONLY;
	e = thinp_meta_open(&c->meta, c->io, &o);
	if (e) {
		c->meta = NULL;
		if (e == -ENODATA)
			err("%s: no pool metadata (block 0 is all zeroes)", path);
		else
			err("%s: cannot open metadata: %s", path, meta_error(c, e));
		meta_close(c);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

void meta_close(struct meta_ctx *c)
{
	thinp_meta_close(c->meta);
	thinp_io_close(c->io);
	c->meta = NULL;
	c->io = NULL;
}

int bad_option(int c, int argc, char **argv)
{
	const char *opt = optind > 1 && optind <= argc ? argv[optind - 1] : "?";

	if (c == ':')
		return usage_err("option '%s' requires a value", opt);
	return usage_err("unknown option '%s'", opt);
}

int no_operands(int argc, char **argv)
{
	if (optind < argc)
		return usage_err("unexpected argument '%s'", argv[optind]);
	return EXIT_OK;
}

int parse_metadata_only(int argc, char **argv, bool operands_verbatim, const char **path)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*path = NULL;
	while ((ch = getopt_long(argc, argv, operands_verbatim ? "+:m:h" : ":m:h", longopts,
				 NULL)) != -1) {
		if (ch == 'm')
			*path = optarg;
		else if (ch == 'h')
			return print_usage();
		else
			return bad_option(ch, argc, argv);
	}
	return -1;
}

int parse_source(const char *arg, uint64_t *source)
{
	if (!arg) {
		*source = THINP_META_HELD_ROOT;
		return EXIT_OK;
	}
	if (!parse_u64(arg, source) || *source == THINP_META_LIVE ||
	    *source == THINP_META_HELD_ROOT)
		return usage_err("bad metadata snapshot block '%s'", arg);
	return EXIT_OK;
}

const char *source_error(struct meta_ctx *c, uint64_t source, int e)
{
	if (e == -ENODATA && source == THINP_META_HELD_ROOT)
		return "no metadata snapshot is held";
	return meta_error(c, e);
}

char *catalog_default_path(const char *meta_path)
{
	size_t n = strlen(meta_path);
	char *p = malloc(n + 5);

	if (p) {
		memcpy(p, meta_path, n);
		memcpy(p + n, ".vol", 5);
	}
	return p;
}
