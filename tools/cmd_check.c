/* thinp check: the library's full metadata check. */
#include <errno.h>

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

static int run(struct invocation *inv)
{
	struct report rep = { inv->meta_path, opt(inv, "quiet")->given, 0 };
	thinp_meta_options o;
	int e;

	meta_options(inv, &o);
	e = thinp_meta_check_io_v2(inv->meta_io, &o, on_finding, &rep);
	if (!e)
		return EXIT_OK;
	if (rep.quiet)
		return EXIT_FAIL;
	if (e == -EILSEQ && rep.errors)
		return err("%s: %lu problem%s found", rep.path, rep.errors, rep.errors == 1 ? "" : "s");
	if (e == -ENODATA)
		return err("%s: no pool metadata (block 0 is all zeroes)", rep.path);
	return fail(inv, e, "%s: check could not finish", rep.path);
}

static const struct option_spec options[] = {
	{ "quiet", 'q', NULL, 0, NULL, "print nothing, only set the exit status" },
	{ NULL },
};

const struct command cmd_check = {
	.name = "check",
	.summary = "check the metadata thoroughly",
	.description =
		"Check every block, tree and reference count, including the metadata\n"
		"snapshot if one is held. Each finding is one line on stderr; harmless\n"
		"ones (such as thin_restore 0.9.0's nr_allocated artefact) say\n"
		"'warning:'. Exit status 0 when there are no errors (warnings allowed),\n"
		"1 when an error was found or the check could not run.\n",
	.options = options,
	.open = OPEN_META_IO,
	.rdonly = true,
	.run = run,
};
