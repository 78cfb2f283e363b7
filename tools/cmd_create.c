/*
 * thinp create: a thin device (or a snapshot) and its catalog entry.
 *
 * Order (docs/CATALOG.md): the device is created in the pool and committed
 * first, then the entry is attached and the catalog committed, so a crash in
 * between leaves a device without an entry, never an entry without a device.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "thinp.h"

/*
 * --origin FILE[=GUID]: the entry's origin, with the identity a send puts
 * in its streams (catalog.h, entry version 3): GUID, or a new random one,
 * and FILE's size now. The same FILE=GUID on another host registers its
 * copy of the origin under the same identity.
 */
static int set_origin(const char *arg, thinp_catalog_entry *e)
{
	thinp_io *io = NULL;
	int r;

	if (parse_origin(arg, e->origin, e->origin_guid))
		return EXIT_FAIL;
	r = thinp_io_open_file(&io, e->origin, THINP_IO_RDONLY);
	if (!r)
		r = thinp_io_size(io, &e->origin_size);
	thinp_io_close(io);
	if (!r && !e->origin_guid[0] && !memcmp(e->origin_guid, e->origin_guid + 1, 15))
		r = thinp_catalog_new_guid(e->origin_guid);
	return r ? err("origin %s: %s", e->origin, thinp_strerror(r)) : EXIT_OK;
}

/* The new entry: a snapshot inherits its origin's (thinp_catalog_inherit),
 * then the options override. */
static int fill_entry(struct invocation *inv, thinp_catalog *cat, thinp_catalog_entry *e)
{
	const struct arg *size = opt(inv, "size"), *snap = opt(inv, "snapshot-of");
	const struct arg *origin = opt(inv, "origin");
	int r = snap->given ? thinp_catalog_inherit(cat, snap->num, e) : -ENODATA;

	if (r == -ENODATA && snap->given && !size->given)
		return err("device %" PRIu64 " has no catalog entry: give --size", snap->num);
	if (r == -ENODATA)
		r = thinp_catalog_new_guid(e->guid);
	if (r)
		return err("%s", thinp_strerror(r));
	e->id = inv->operand[0].num;
	if (size->given)
		e->size = size->num;
	if (origin->given && set_origin(origin->str, e))
		return EXIT_FAIL;
	if (opt(inv, "read-only")->given)
		e->flags |= THINP_CATALOG_READ_ONLY;
	return EXIT_OK;
}

static int create(struct invocation *inv, thinp_catalog *cat, thinp_catalog_entry *e)
{
	const struct arg *snap = opt(inv, "snapshot-of");
	uint64_t id = inv->operand[0].num;
	int r;

	if (fill_entry(inv, cat, e))
		return EXIT_FAIL;
	r = snap->given ? thinp_pool_create_snap(inv->pool, id, snap->num)
			: thinp_pool_create_thin(inv->pool, id);
	if (r)
		return fail(inv, r, "device %" PRIu64, id);
	return attach_entry(inv, cat, e);
}

static int run(struct invocation *inv)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	thinp_catalog *cat = NULL;
	thinp_io *cio = NULL;
	int rc = EXIT_FAIL;

	if (!opt(inv, "size")->given && !opt(inv, "snapshot-of")->given)
		rc = usage_err("--size is required (a snapshot may take its origin's)");
	else if (!e)
		err("out of memory");
	else if (open_catalog(inv, &cio, &cat) == EXIT_OK) {
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		rc = create(inv, cat, e);
	}
	thinp_catalog_close(cat);
	thinp_io_close(cio);
	free(e);
	return rc;
}

static const char *parse_nonzero_size(const char *s, uint64_t *bytes)
{
	const char *why = parse_size(s, bytes);

	return why ? why : *bytes ? NULL : "must not be 0";
}

static const struct option_spec options[] = {
	{ "size", 's', "SIZE", 0, parse_nonzero_size,
	  "virtual size in bytes, k/m/g suffixes allowed;\na snapshot takes its origin's when not given" },
	{ "origin", 'o', "FILE[=GUID]", 0, NULL,
	  "read-only external origin: unprovisioned blocks\nread from FILE (a snapshot inherits its origin's);\n"
	  "its origin guid is GUID (32 hex digits), or new" },
	{ "snapshot-of", 'S', "ID", 0, parse_u64, "make a snapshot of device ID" },
	{ "read-only", 'r', NULL, 0, NULL, "mark the device read-only for front-ends" },
	OPT_CATALOG,
	{ NULL },
};
static const struct operand_spec operands[] = { { "ID", parse_u64 }, { NULL } };

const struct command cmd_create = {
	.name = "create",
	.summary = "create a thin device or snapshot and its catalog entry",
	.description =
		"Create thin device ID in the pool (or, with --snapshot-of, a snapshot\n"
		"of device ID), then record it in the pool's catalog (docs/CATALOG.md):\n"
		"its virtual size, flags and external origin, and a new random guid.\n"
		"Front-ends (the nbdkit plugin, thinp-fuse) serve it from that entry.\n",
	.options = options,
	.operands = operands,
	.min_operands = 1,
	.open = OPEN_POOL,
	.run = run,
};
