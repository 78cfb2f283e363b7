/*
 * The command framework: every command's command line is parsed, checked,
 * described by --help, and its devices opened and closed here, from the
 * command's declaration (struct command), so that no command repeats it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

/* The pool records no volume size; the tool's volumes span everything. */
#define TOOL_VOLUME_SIZE (UINT64_MAX - 4095)

/* The options every command has; -d only those that open a pool. */
static const struct option_spec metadata_opt = {
	"metadata", 'm', "META", OPT_REQUIRED, NULL, "the metadata file or block device",
};
static const struct option_spec data_opt = {
	"data", 'd', "DATA", OPT_REQUIRED, NULL, "the data file or block device",
};
static const struct option_spec help_opt = { "help", 'h', NULL, 0, NULL, "print this help" };

/* A declaration the framework cannot hold is the programmer's error. */
static void too_many(const struct command *cmd, const char *what)
{
	fprintf(stderr, "thinp %s: internal error: too many %s\n", cmd->name, what);
	abort();
}

/* The command's options in help order: -m, [-d,] its own, --help; out[]
 * has MAX_OPTIONS entries and ends with NULL. */
static int collect_options(const struct command *cmd, const struct option_spec **out)
{
	int n = 0;

	if (cmd->open >= OPEN_META_IO)
		out[n++] = &metadata_opt;
	if (cmd->open >= OPEN_POOL)
		out[n++] = &data_opt;
	for (const struct option_spec *o = cmd->options; o && o->name; o++) {
		if (n + 2 >= MAX_OPTIONS)
			too_many(cmd, "options");
		out[n++] = o;
	}
	out[n++] = &help_opt;
	out[n] = NULL;
	return n;
}

static int nr_declared_operands(const struct command *cmd)
{
	int n = 0;

	while (cmd->operands && cmd->operands[n].name)
		if (++n > MAX_OPERANDS)
			too_many(cmd, "operands");
	return n;
}

/* "--name VALUE", "--name[=VALUE]"; in a synopsis or a message -m and -d
 * (which every command shares) short, "-m META"; in the list "-m, --metadata
 * META". */
static const char *option_form(const struct option_spec *o, bool list, char *buf, size_t len)
{
	bool shared = o == &metadata_opt || o == &data_opt;
	int n;

	if (list)
		n = o->letter ? snprintf(buf, len, "-%c, --%s", o->letter, o->name)
			      : snprintf(buf, len, "    --%s", o->name);
	else
		n = shared ? snprintf(buf, len, "-%c", o->letter) : snprintf(buf, len, "--%s", o->name);
	if (o->value && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n,
			 (o->flags & OPT_OPTIONAL_VALUE) ? "[=%s]" : " %s", o->value);
	return buf;
}

static void print_synopsis(const struct command *cmd, FILE *f)
{
	const struct option_spec *opts[MAX_OPTIONS];
	int n = collect_options(cmd, opts), nops = nr_declared_operands(cmd);
	char form[64];

	fprintf(f, "Usage: thinp %s", cmd->name);
	for (int i = 0; i < n; i++) {
		bool req = opts[i]->flags & OPT_REQUIRED;

		if (opts[i] == &help_opt)
			continue;
		fprintf(f, req ? " %s" : " [%s]", option_form(opts[i], false, form, sizeof(form)));
	}
	for (int i = 0; i < nops; i++)
		fprintf(f, " %s%s%s%s", i == (int)cmd->min_operands ? "[" : "", cmd->operands[i].name,
			cmd->more_operands && i == nops - 1 ? "..." : "",
			i == nops - 1 && (int)cmd->min_operands < nops ? "]" : "");
	fputc('\n', f);
}

/* One line per option, the help column aligned, continuation lines too. */
static void print_option_list(const struct command *cmd, FILE *f)
{
	const struct option_spec *opts[MAX_OPTIONS];
	int n = collect_options(cmd, opts);

	fprintf(f, "\nOptions:\n");
	for (int i = 0; i < n; i++) {
		char form[64];

		fprintf(f, "  %-27s ", option_form(opts[i], true, form, sizeof(form)));
		for (const char *h = opts[i]->help; *h; h++)
			if (*h == '\n')
				fprintf(f, "\n%30s", "");
			else
				fputc(*h, f);
		fputc('\n', f);
	}
}

static void print_command_help(const struct command *cmd, FILE *f)
{
	print_synopsis(cmd, f);
	fprintf(f, "\n%s", cmd->description);
	print_option_list(cmd, f);
}

/* The option --name if the command has it, else NULL. */
static const struct arg *find_opt(const struct invocation *inv, const char *name)
{
	for (int i = 0; i < MAX_OPTIONS && inv->opt_spec[i]; i++)
		if (!strcmp(inv->opt_spec[i]->name, name))
			return &inv->opt[i];
	return NULL;
}

const struct arg *opt(const struct invocation *inv, const char *name)
{
	const struct arg *a = find_opt(inv, name);

	if (a)
		return a;
	fprintf(stderr, "thinp %s: internal error: no option --%s\n", inv->cmd->name, name);
	abort();
}

/* Run a parser; "bad NAME 'VALUE'[: why]" if it refuses. */
static int parse_arg(arg_parser parse, const char *s, struct arg *a, const char *name)
{
	const char *why;

	a->given = true;
	a->str = s;
	if (!parse || !s)
		return EXIT_OK;
	why = parse(s, &a->num);
	if (!why)
		return EXIT_OK;
	return usage_err("bad %s '%s'%s%s", name, s, *why ? ": " : "", why);
}

static int bad_option(int c, int argc, char **argv)
{
	const char *o = optind > 1 && optind <= argc ? argv[optind - 1] : "?";

	if (c == ':')
		return usage_err("option '%s' requires a value", o);
	return usage_err("unknown option '%s'", o);
}

/* getopt_long over the declared options; -1 when --help was printed. */
static int parse_options(struct invocation *inv, int argc, char **argv)
{
	const struct command *cmd = inv->cmd;
	struct option longopts[MAX_OPTIONS];
	char shortopts[3 * MAX_OPTIONS + 3], *s = shortopts;
	int n = collect_options(cmd, inv->opt_spec), ch, idx;

	*s++ = cmd->more_operands ? '+' : ':';
	if (cmd->more_operands)
		*s++ = ':';
	for (int i = 0; i < n; i++) {
		const struct option_spec *o = inv->opt_spec[i];

		longopts[i] = (struct option){
			o->name,
			!o->value ? no_argument :
			(o->flags & OPT_OPTIONAL_VALUE) ? optional_argument : required_argument,
			NULL, 256 + i,
		};
		if (o->letter) {
			*s++ = o->letter;
			if (o->value)
				*s++ = ':';
		}
	}
	*s = '\0';
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct option_spec *o;
		char name[64];
		int r;

		for (idx = 0; idx < n && ch != 256 + idx && ch != inv->opt_spec[idx]->letter; idx++)
			;
		if (idx == n || ch == ':' || ch == '?')
			return bad_option(ch, argc, argv);
		o = inv->opt_spec[idx];
		if (o == &help_opt) {
			print_command_help(cmd, stdout);
			return -1;
		}
		snprintf(name, sizeof(name), "--%s", o->name);
		if ((r = parse_arg(o->parse, optarg, &inv->opt[idx], name)))
			return r;
	}
	return EXIT_OK;
}

/* Required options given; operand count and values as declared. */
static int check_arguments(struct invocation *inv, int argc, char **argv)
{
	const struct command *cmd = inv->cmd;
	int nops = nr_declared_operands(cmd), given = argc - optind, r;

	for (int i = 0; i < MAX_OPTIONS && inv->opt_spec[i]; i++) {
		const struct option_spec *o = inv->opt_spec[i];
		char form[64];

		if ((o->flags & OPT_REQUIRED) && !inv->opt[i].given)
			return usage_err("%s is required", option_form(o, false, form, sizeof(form)));
	}
	if (given > nops && !cmd->more_operands)
		return usage_err("unexpected argument '%s'", argv[optind + nops]);
	if (given < nops && given != (int)cmd->min_operands) {
		char want[128] = "";

		for (int i = 0; i < nops; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? " " : "",
				 cmd->operands[i].name);
		return usage_err("expected %s", want);
	}
	inv->operands = argv + optind;
	inv->nr_operands = given;
	for (int i = 0; i < nops && i < given; i++)
		if ((r = parse_arg(cmd->operands[i].parse, argv[optind + i], &inv->operand[i],
				   cmd->operands[i].name)))
			return r;
	if (cmd->open >= OPEN_META_IO)
		inv->meta_path = opt(inv, "metadata")->str;
	if (cmd->open >= OPEN_POOL)
		inv->data_path = opt(inv, "data")->str;
	return EXIT_OK;
}

void log_to_invocation(int level, const char *msg, void *ctx)
{
	struct invocation *inv = ctx;

	if (level <= THINP_LOG_ERROR)
		snprintf(inv->last_log, sizeof(inv->last_log), "%s", msg);
}

void meta_options(struct invocation *inv, thinp_meta_options *o)
{
	thinp_meta_options init = THINP_META_OPTIONS_INIT;

	*o = init;
	o->log_fn = log_to_invocation;
	o->log_ctx = inv;
}

static int open_io(struct invocation *inv, thinp_io **io, const char *path, bool rdonly)
{
	int e = thinp_io_open_file(io, path, rdonly ? THINP_IO_RDONLY : 0);

	if (e == -EINVAL)
		return err("%s: not a regular file or block device", path);
	return e ? fail(inv, e, "%s", path) : EXIT_OK;
}

static int lock_meta(struct invocation *inv)
{
	int e = thinp_io_lock(inv->meta_io, THINP_IO_LOCK_EXCLUSIVE);

	if (e == -EBUSY)
		return err("%s: %s", inv->meta_path, METADATA_BUSY);
	return e ? fail(inv, e, "%s: cannot lock", inv->meta_path) : EXIT_OK;
}

int open_meta_live(struct invocation *inv, size_t cache_bytes)
{
	thinp_meta_options o;
	int e;

	meta_options(inv, &o);
	if (cache_bytes)
		o.cache_bytes = cache_bytes;
	if (inv->cmd->rdonly)
		o.flags |= THINP_META_RDONLY;
	e = thinp_meta_open(&inv->meta, inv->meta_io, &o);
	if (!e)
		return EXIT_OK;
	inv->meta = NULL;
	if (e == -ENODATA)
		return err("%s: no pool metadata (block 0 is all zeroes)", inv->meta_path);
	return fail(inv, e, "%s: cannot open metadata", inv->meta_path);
}

static int open_pool(struct invocation *inv)
{
	thinp_pool_options po = THINP_POOL_OPTIONS_INIT;
	int e;

	if (open_io(inv, &inv->data_io, inv->data_path, inv->cmd->rdonly))
		return EXIT_FAIL;
	if (inv->cmd->rdonly)
		po.features |= THINP_POOL_READ_ONLY;
	po.log_fn = log_to_invocation;
	po.log_ctx = inv;
	e = thinp_pool_open(&inv->pool, inv->meta_io, inv->data_io, &po);
	if (e) {
		inv->pool = NULL;
		if (e == -EBUSY)
			return err("%s: %s", inv->meta_path, METADATA_BUSY);
		return fail(inv, e, "%s", inv->meta_path);
	}
	return EXIT_OK;
}

static int open_thin(struct invocation *inv)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	const struct arg *origin = find_opt(inv, "origin");
	uint64_t dev = inv->operand[0].num;
	int e;

	if (origin && origin->given && open_io(inv, &inv->origin_io, origin->str, true))
		return EXIT_FAIL;
	to.size = TOOL_VOLUME_SIZE;
	to.origin = inv->origin_io;
	e = thinp_thin_open(&inv->thin, inv->pool, dev, &to);
	if (e) {
		inv->thin = NULL;
		return thin_fail(inv, e);
	}
	return EXIT_OK;
}

int thin_fail(struct invocation *inv, int e)
{
	return fail(inv, e, "device %" PRIu64, inv->operand[0].num);
}

/* Everything the command declared, in order; on failure what is open stays
 * for close_all(). */
static int open_all(struct invocation *inv)
{
	enum open_level level = inv->cmd->open;
	int r;

	if (level == OPEN_NONE)
		return EXIT_OK;
	r = open_io(inv, &inv->meta_io, inv->meta_path, inv->cmd->rdonly);

	/* A writer owns the metadata for as long as it has it open (a pool
	 * takes the lock itself): a second writer (another thinp, a program's
	 * open pool) is refused rather than corrupting it. Readers take none. */
	if (!r && !inv->cmd->rdonly && level < OPEN_POOL)
		r = lock_meta(inv);

	if (!r && level == OPEN_META)
		r = open_meta_live(inv, 0);
	if (!r && level >= OPEN_POOL)
		r = open_pool(inv);
	if (!r && level >= OPEN_THIN)
		r = open_thin(inv);
	return r;
}

/* Closing the pool commits: a failure there fails a command that succeeded. */
static int close_all(struct invocation *inv, int r)
{
	int e;

	thinp_thin_close(inv->thin);
	inv->thin = NULL;
	e = thinp_pool_close(inv->pool);
	if (e && r == EXIT_OK)
		r = fail(inv, e, "%s: closing the pool", inv->meta_path);
	inv->pool = NULL;
	thinp_meta_close(inv->meta);
	inv->meta = NULL;
	thinp_io_close(inv->origin_io);
	thinp_io_close(inv->data_io);
	thinp_io_close(inv->meta_io);
	return r;
}

int run_command(const struct command *cmd, int argc, char **argv)
{
	struct invocation *inv = calloc(1, sizeof(*inv));
	int r;

	if (!inv)
		return err("out of memory");
	inv->cmd = cmd;
	r = parse_options(inv, argc, argv);
	if (r < 0)
		r = EXIT_OK;
	else if (!r && !(r = check_arguments(inv, argc, argv)) && !(r = open_all(inv)))
		r = cmd->run(inv);
	r = close_all(inv, r);
	free(inv);
	return r;
}
