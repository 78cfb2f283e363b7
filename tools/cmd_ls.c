/* thinp ls: one line per thin device, in columns like thin_ls. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

#define NCOLS 5

static const char *const headers[NCOLS] = {
	"DEV", "MAPPED_BLOCKS", "TRANSACTION", "CREATE_TIME", "SNAP_TIME",
};

struct rows {
	size_t n, cap;
	uint64_t (*v)[NCOLS];
};

static int collect(const thinp_meta_device *d, void *ctx)
{
	struct rows *rows = ctx;

	if (rows->n == rows->cap) {
		size_t cap = rows->cap ? 2 * rows->cap : 64;
		void *v = realloc(rows->v, cap * sizeof(*rows->v));

		if (!v)
			return -1;
		rows->v = v;
		rows->cap = cap;
	}
	rows->v[rows->n][0] = d->dev_id;
	rows->v[rows->n][1] = d->mapped_blocks;
	rows->v[rows->n][2] = d->transaction_id;
	rows->v[rows->n][3] = d->creation_time;
	rows->v[rows->n][4] = d->snapshotted_time;
	rows->n++;
	return 0;
}

static int digits(uint64_t v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Right-aligned columns, each as wide as its widest entry. */
static void print_rows(const struct rows *rows, bool headings)
{
	int width[NCOLS];

	for (int j = 0; j < NCOLS; j++) {
		width[j] = headings ? (int)strlen(headers[j]) : 1;
		for (size_t i = 0; i < rows->n; i++)
			if (digits(rows->v[i][j]) > width[j])
				width[j] = digits(rows->v[i][j]);
	}
	if (headings)
		for (int j = 0; j < NCOLS; j++)
			printf("%*s%s", width[j], headers[j], j + 1 < NCOLS ? " " : "\n");
	for (size_t i = 0; i < rows->n; i++)
		for (int j = 0; j < NCOLS; j++)
			printf("%*" PRIu64 "%s", width[j], rows->v[i][j], j + 1 < NCOLS ? " " : "\n");
}

static int run(struct invocation *inv)
{
	uint64_t source = snap_source(inv);
	struct rows rows = { 0 };
	int e = thinp_meta_walk_devices(inv->meta, source, collect, &rows), r = EXIT_OK;

	if (e == -1)
		r = err("out of memory");
	else if (e)
		r = source_fail(inv, source, e);
	else
		print_rows(&rows, !opt(inv, "no-headers")->given);
	free(rows.v);
	return r;
}

static const struct option_spec options[] = {
	OPT_METADATA_SNAP("list the metadata snapshot instead"),
	{ "no-headers", 0, NULL, 0, NULL, "leave out the header line" },
	{ NULL },
};

const struct command cmd_ls = {
	.name = "ls",
	.summary = "list thin devices",
	.description =
		"One line per thin device: id, mapped blocks, transaction id, creation\n"
		"time and snapshot time.\n",
	.options = options,
	.open = OPEN_META,
	.rdonly = true,
	.run = run,
};
