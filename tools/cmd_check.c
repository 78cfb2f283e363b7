/* thinp check: the library's full metadata check. */
#include <errno.h>
#include <getopt.h>

#include "thinp.h"

struct report {
	const char *path;
	bool quiet;
	unsigned long errors;
};

/* Errors and warnings go to standard error; only errors fail the check. */
static void on_finding(const thinp_meta_finding *f, void *ctx)
{
	struct report *rep = ctx;
	bool warning = f->severity == THINP_META_CHECK_WARNING;

	if (!warning)
		rep->errors++;
	if (!rep->quiet)
		fprintf(stderr, "thinp check: %s: %s%s\n", rep->path, warning ? "warning: " : "",
			f->line);
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct report rep = { NULL, false, 0 };
	thinp_meta_options o;
	struct meta_ctx c;
	int ch, r, e;

	while ((ch = getopt_long(argc, argv, ":m:qh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': rep.path = optarg; break;
		case 'q': rep.quiet = true; break;
		case 'h': return print_usage();
		default: return bad_option(ch, argc, argv);
		}
	}
	if ((r = no_operands(argc, argv)))
		return r;
	if ((r = io_open(&c, rep.path, OPEN_RDONLY)))
		return r;
	meta_options(&c, &o);
	e = thinp_meta_check_io(c.io, &o, on_finding, &rep);
	if (e == -EILSEQ && rep.errors)
		r = rep.quiet ? EXIT_FAIL
			      : err("%s: %lu problem%s found", rep.path, rep.errors,
				    rep.errors == 1 ? "" : "s");
	else if (e == -ENODATA)
		r = rep.quiet ? EXIT_FAIL : err("%s: no pool metadata (block 0 is all zeroes)", rep.path);
	else if (e)
		r = rep.quiet ? EXIT_FAIL : err("%s: check could not finish: %s", rep.path, meta_error(&c, e));
	meta_close(&c);
	return r;
}
