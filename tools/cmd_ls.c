/* thinp ls: one line per thin device, in columns like thin_ls. */
#include <getopt.h>
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

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "metadata-snap", optional_argument, NULL, 's' },
		{ "no-headers", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	uint64_t source = THINP_META_LIVE;
	struct rows rows = { 0 };
	bool headings = true;
	struct meta_ctx c;
	int ch, r, e;

	while ((ch = getopt_long(argc, argv, ":m:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': path = optarg; break;
		case 's':
			if ((r = parse_source(optarg, &source)))
				return r;
			break;
		case 'H': headings = false; break;
		case 'h': return print_usage();
		default: return bad_option(ch, argc, argv);
		}
	}
	if ((r = no_operands(argc, argv)))
		return r;
	if ((r = meta_open(&c, path, OPEN_RDONLY)))
		return r;
	e = thinp_meta_walk_devices(c.meta, source, collect, &rows);
	if (e == -1)
		r = err("out of memory");
	else if (e)
		r = err("%s", source_error(&c, source, e));
	else
		print_rows(&rows, headings);
	free(rows.v);
	meta_close(&c);
	return r;
}
