/*
 * thinp create: a thin device (or a snapshot) and its catalog entry.
 *
 * Order (docs/CATALOG.md): the device is created in the pool and committed
 * first, then the entry is attached and the catalog committed, so a crash in
 * between leaves a device without an entry, never an entry without a device.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

struct create_args {
	const char *meta, *data, *catalog, *origin;
	uint64_t id, size, snap_of;
	bool have_size, snapshot, rdonly, help;
};

static int parse(int argc, char **argv, struct create_args *a)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "data", required_argument, NULL, 'd' },
		{ "catalog", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "origin", required_argument, NULL, 'o' },
		{ "snapshot-of", required_argument, NULL, 'S' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, ":m:d:c:s:o:S:rh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': a->meta = optarg; break;
		case 'd': a->data = optarg; break;
		case 'c': a->catalog = optarg; break;
		case 'o': a->origin = optarg; break;
		case 'r': a->rdonly = true; break;
		case 's':
			if (!parse_size(optarg, &a->size) || a->size == 0)
				return usage_err("bad --size");
			a->have_size = true;
			break;
		case 'S':
			if (!parse_u64(optarg, &a->snap_of))
				return usage_err("bad --snapshot-of");
			a->snapshot = true;
			break;
		case 'h': return a->help = true, print_usage();
		default: return bad_option(ch, argc, argv);
		}
	}
	if (!a->meta || !a->data)
		return usage_err("-m META and -d DATA are required");
	if (!a->have_size && !a->snapshot)
		return usage_err("--size is required (a snapshot may take its origin's)");
	if (a->origin && strlen(a->origin) >= THINP_CATALOG_ORIGIN_MAX)
		return usage_err("--origin path too long");
	if (argc - optind != 1 || !parse_u64(argv[optind], &a->id))
		return usage_err("expected one ID");
	return EXIT_OK;
}

/* The new entry: a snapshot inherits its origin's (thinp_catalog_inherit),
 * then the options override. */
static int fill_entry(thinp_catalog *cat, const struct create_args *a, thinp_catalog_entry *e)
{
	int r = a->snapshot ? thinp_catalog_inherit(cat, a->snap_of, e) : -ENODATA;

	if (r == -ENODATA && a->snapshot && !a->have_size)
		return err("device %" PRIu64 " has no catalog entry: give --size", a->snap_of);
	if (r == -ENODATA)
		r = thinp_catalog_new_guid(e->guid);
	if (r)
		return err("%s", thinp_strerror(r));
	e->id = a->id;
	if (a->have_size)
		e->size = a->size;
	if (a->origin)
		strcpy(e->origin, a->origin);
	if (a->rdonly)
		e->flags |= THINP_CATALOG_READ_ONLY;
	return EXIT_OK;
}

static int create(const struct create_args *a, thinp_pool *pool, thinp_io *cio,
		  thinp_catalog_entry *e)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	thinp_catalog *cat;
	int r = thinp_catalog_open(&cat, cio, 0), rc = EXIT_FAIL;

	if (r)
		return err("%s: %s", a->catalog, thinp_strerror(r));
	if (fill_entry(cat, a, e))
		goto out;
	r = a->snapshot ? thinp_pool_create_snap(pool, a->id, a->snap_of)
			: thinp_pool_create_thin(pool, a->id);
	if (r) {
		const char *m = thinp_pool_errmsg(pool);

		err("device %" PRIu64 ": %s", a->id, *m ? m : thinp_strerror(r));
		goto out;
	}
	/* Entries left by devices deleted behind the catalog go at the same commit. */
	r = thinp_catalog_reconcile(cat, pool);
	if (r >= 0)
		r = thinp_catalog_attach(cat, pool, e);
	if (!r)
		r = thinp_pool_get_status(pool, &st);
	if (!r)
		r = thinp_catalog_commit(cat, st.transaction_id);
	if (r)
		err("%s: %s (device %" PRIu64 " was created without an entry)", a->catalog,
		    thinp_strerror(r), a->id);
	else
		rc = EXIT_OK;
out:
	thinp_catalog_close(cat);
	return rc;
}

int cmd_create(int argc, char **argv)
{
	struct create_args a = { 0 };
	thinp_io *meta = NULL, *data = NULL, *cio = NULL;
	thinp_pool *pool = NULL;
	thinp_catalog_entry *e = NULL;
	char *cat_path = NULL;
	int r, rc = EXIT_FAIL;

	if ((r = parse(argc, argv, &a)) != EXIT_OK || a.help)
		return r;
	if (!a.catalog) {
		cat_path = catalog_default_path(a.meta);
		if (!cat_path)
			return err("%s", thinp_strerror(-ENOMEM));
		a.catalog = cat_path;
	}
	e = malloc(sizeof(*e));
	if (!e) {
		err("%s", thinp_strerror(-ENOMEM));
		goto out;
	}
	if ((r = thinp_io_open_file(&meta, a.meta, 0)) ||
	    (r = thinp_io_open_file(&data, a.data, 0))) {
		err("%s: %s", meta ? a.data : a.meta, thinp_strerror(r));
		goto out;
	}
	if ((r = thinp_io_open_file(&cio, a.catalog, THINP_IO_CREATE))) {
		err("%s: %s", a.catalog, thinp_strerror(r));
		goto out;
	}
	if ((r = thinp_pool_open(&pool, meta, data, NULL))) {
		err("%s: %s", a.meta, thinp_strerror(r));
		goto out;
	}
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	rc = create(&a, pool, cio, e);
	r = thinp_pool_close(pool);
	if (r && rc == EXIT_OK)
		rc = err("%s: %s", a.meta, thinp_strerror(r));
out:
	thinp_io_close(cio);
	thinp_io_close(data);
	thinp_io_close(meta);
	free(e);
	free(cat_path);
	return rc;
}
