/* thinp ls: one line per thin device, in columns like thin_ls; with a
 * catalog (META.vol, or --catalog), a last column of virtual sizes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

#define NCOLS 6
#define COL_SIZE 5
#define NO_VALUE UINT64_MAX /* printed as "-" */

static const char *const headers[NCOLS] = {
	"DEV", "MAPPED_BLOCKS", "TRANSACTION", "CREATE_TIME", "SNAP_TIME", "SIZE",
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
	rows->v[rows->n][COL_SIZE] = NO_VALUE;
	rows->n++;
	return 0;
}

static int digits(uint64_t v)
{
	int n = 1;

	if (v == NO_VALUE)
		return 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static void print_cell(int width, uint64_t v, bool last)
{
	if (v == NO_VALUE)
		printf("%*s%s", width, "-", last ? "\n" : " ");
	else
		printf("%*" PRIu64 "%s", width, v, last ? "\n" : " ");
}

/* Right-aligned columns, each as wide as its widest entry; the size column
 * only with a catalog. */
static void print_rows(const struct rows *rows, bool headings, int ncols)
{
	int width[NCOLS];

	for (int j = 0; j < ncols; j++) {
		width[j] = headings ? (int)strlen(headers[j]) : 1;
		for (size_t i = 0; i < rows->n; i++)
			if (digits(rows->v[i][j]) > width[j])
				width[j] = digits(rows->v[i][j]);
	}
	if (headings)
		for (int j = 0; j < ncols; j++)
			printf("%*s%s", width[j], headers[j], j + 1 < ncols ? " " : "\n");
	for (size_t i = 0; i < rows->n; i++)
		for (int j = 0; j < ncols; j++)
			print_cell(width[j], rows->v[i][j], j + 1 == ncols);
}

/* Sizes from the catalog at `path`, for the devices its entries still
 * describe (same birth stamp, docs/CATALOG.md). 1 if the catalog exists,
 * 0 if not (and not required), -1 after printing an error. */
static int add_sizes(struct rows *rows, const char *path, bool required)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	thinp_catalog *cat = NULL;
	thinp_io *io = NULL;
	int r = e ? thinp_io_open_file(&io, path, THINP_IO_RDONLY) : -ENOMEM;

	if (r == -ENOENT && !required) {
		free(e);
		return 0;
	}
	if (!r)
		r = thinp_catalog_open(&cat, io, 0);
	for (size_t i = 0; !r && i < rows->n; i++) {
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		if (thinp_catalog_get(cat, rows->v[i][0], e) == 0 &&
		    e->birth_transaction == rows->v[i][2] && e->birth_time == rows->v[i][3] &&
		    e->size)
			rows->v[i][COL_SIZE] = e->size;
	}
	thinp_catalog_close(cat);
	thinp_io_close(io);
	free(e);
	if (r) {
		err("%s: %s", path, thinp_strerror(r));
		return -1;
	}
	return 1;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "metadata-snap", optional_argument, NULL, 's' },
		{ "no-headers", no_argument, NULL, 'H' },
		{ "catalog", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *catalog = NULL;
	char *cat_default = NULL;
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
		case 'c': catalog = optarg; break;
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
	else if (!catalog && !(cat_default = catalog_default_path(path)))
		r = err("out of memory");
	else if ((e = add_sizes(&rows, catalog ? catalog : cat_default, catalog != NULL)) < 0)
		r = EXIT_FAIL;
	else
		print_rows(&rows, headings, e ? NCOLS : NCOLS - 1);
	free(cat_default);
	free(rows.v);
	meta_close(&c);
	return r;
}
