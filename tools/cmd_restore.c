/*
 * thinp restore: pool metadata from thin_dump XML, as thin_restore 0.9.0
 * builds it: a fresh format, the data space map sized to nr_data_blocks,
 * then every device with its details and a subtree of its own (sharing is
 * not recreated: a data block mapped by k devices gets reference count k).
 * Superblock version defaults to 1 when absent, mapping times are masked to
 * 24 bits, uuid and metadata_snap are ignored (a snapshot cannot be restored:
 * thin_restore copying the attribute would point held_root at garbage).
 *
 * Everything is built on a staging device in memory; the target is written
 * only after the XML was fully read and applied (stage.h says in which
 * order, so that an interrupted copy never leaves a mixture).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "stage.h"
#include "thinp.h"
#include "xml.h"

struct restore {
	struct meta_ctx *c; /* c->io is the staging device */
	uint64_t stage_bytes;
	struct xml_superblock sb;
	uint64_t dev;       /* the device being filled */
};

static int lib_fail(struct xml_parser *p, const char *what, int e)
{
	struct restore *rs = xml_ctx(p);

	return xml_fail(p, "%s: %s", what, meta_error(rs->c, e));
}

static int sb_begin(struct xml_parser *p, const struct xml_superblock *sb)
{
	struct restore *rs = xml_ctx(p);
	thinp_meta_format_params fp = THINP_META_FORMAT_PARAMS_INIT;
	thinp_meta_options o;
	int e;

	if (sb->version != 1 && sb->version != 2)
		return xml_fail(p, "unsupported superblock version %" PRIu32, sb->version);
	if (sb->flags & ~THINP_META_FLAG_NEEDS_CHECK)
		return xml_fail(p, "unknown superblock flags %" PRIu32, sb->flags);
	if (sb->data_block_size < THINP_META_MIN_DATA_BLOCK_SIZE ||
	    sb->data_block_size > THINP_META_MAX_DATA_BLOCK_SIZE ||
	    sb->data_block_size % THINP_META_MIN_DATA_BLOCK_SIZE)
		return xml_fail(p, "bad data_block_size %" PRIu32 ": must be 128 .. 2097152 sectors, a multiple of 128",
				sb->data_block_size);
	if (sb->nr_data_blocks >= THINP_META_MAX_DATA_BLOCKS)
		return xml_fail(p, "nr_data_blocks %" PRIu64 " is more than the format can address (< 2^40)",
				sb->nr_data_blocks);
	rs->sb = *sb;
	fp.data_block_size = sb->data_block_size;
	fp.nr_data_blocks = sb->nr_data_blocks;
	meta_options(rs->c, &o);
	e = thinp_meta_format(&rs->c->meta, rs->c->io, &fp, &o);
	if (e) {
		rs->c->meta = NULL;
		if (e == -ENOSPC)
			return xml_fail(p, "the metadata file is too small");
		return lib_fail(p, "cannot format", e);
	}
	return 0;
}

static int dev_begin(struct xml_parser *p, const struct xml_device *d)
{
	struct restore *rs = xml_ctx(p);
	thinp_meta_device det;
	int e = thinp_meta_create_thin(rs->c->meta, d->dev_id);

	STRUCT_INIT(det);

	if (e == -EEXIST)
		return xml_fail(p, "device %" PRIu64 " already exists", d->dev_id);
	if (e == -ENOSPC)
		return xml_fail(p, "out of metadata space (the metadata file is too small)");
	if (e)
		return lib_fail(p, "cannot create device", e);
	det.transaction_id = d->transaction;
	det.creation_time = d->creation_time;
	det.snapshotted_time = d->snap_time;
	e = thinp_meta_set_device_details(rs->c->meta, d->dev_id, &det);
	if (e)
		return lib_fail(p, "cannot set device details", e);
	rs->dev = d->dev_id;
	return 0;
}

static int run(struct xml_parser *p, const struct xml_run *r)
{
	struct restore *rs = xml_ctx(p);
	uint64_t last = r->data + (r->len - 1); /* the parser checked overflow */
	uint32_t time = r->time & THINP_META_MAX_TIME; /* as thin_restore masks */
	int e;

	if (last >= rs->sb.nr_data_blocks)
		return xml_fail(p, "mapping beyond end of data device (%" PRIu64 " >= %" PRIu64 ")",
				last, rs->sb.nr_data_blocks);
	for (uint64_t i = 0; i < r->len; i++) {
		/* Each mapping consumes the reference taken just before it. */
		e = thinp_meta_data_inc(rs->c->meta, r->data + i);
		if (!e)
			e = thinp_meta_insert_timed(rs->c->meta, rs->dev, r->origin + i,
						    r->data + i, time);
		if (e == -ENOSPC)
			return xml_fail(p, "out of metadata space (the metadata file is too small)");
		if (e)
			return lib_fail(p, "cannot insert mapping", e);
	}
	return 0;
}

static int sb_end(struct xml_parser *p)
{
	struct restore *rs = xml_ctx(p);
	thinp_meta_superblock sb;
	int e;

	STRUCT_INIT(sb);

	sb.time = rs->sb.time;
	sb.transaction_id = rs->sb.transaction;
	sb.flags = rs->sb.flags;
	sb.version = rs->sb.version;
	e = thinp_meta_set_superblock_fields(rs->c->meta, &sb);
	if (e)
		return lib_fail(p, "cannot set superblock fields", e);
	e = thinp_meta_commit(rs->c->meta);
	if (e == -ENOSPC)
		return xml_fail(p, "out of metadata space (the metadata file is too small)");
	if (e)
		return lib_fail(p, "cannot commit", e);
	return 0;
}

static const struct xml_handlers handlers = {
	.superblock_begin = sb_begin,
	.superblock_end = sb_end,
	.device_begin = dev_begin,
	.run = run,
};

/* Parse `in` into a pool on a staging device of `bytes`, then copy it out. */
static int restore(FILE *in, const char *in_name, thinp_io *target,
		   const char *target_name, uint64_t bytes)
{
	struct meta_ctx c = { 0 };
	struct restore rs = { .c = &c, .stage_bytes = bytes };
	struct stage *st;
	char msg[1024];
	int e;

	e = stage_open(&c.io, &st, bytes);
	if (e)
		return err("%s", strerror(-e));
	if (xml_parse(in, in_name, &handlers, &rs, msg, sizeof(msg))) {
		meta_close(&c);
		return err("%s", msg);
	}
	thinp_meta_close(c.meta);
	c.meta = NULL;
	e = stage_copy_to(st, target);
	meta_close(&c);
	if (e)
		return err("%s: writing the new metadata failed: %s", target_name, strerror(-e));
	return EXIT_OK;
}

/* The metadata size comes from the target, capped where the format stops. */
static int target_size(thinp_io *io, const char *name, uint64_t *bytes)
{
	const uint64_t max = THINP_META_MAX_METADATA_BLOCKS * THINP_META_BLOCK_SIZE;
	int e = thinp_io_size(io, bytes);

	if (e)
		return err("%s: %s", name, strerror(-e));
	if (*bytes > max)
		*bytes = max;
	return EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "input", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *input = NULL;
	struct meta_ctx target;
	uint64_t bytes;
	FILE *in;
	int ch, r;

	while ((ch = getopt_long(argc, argv, ":m:i:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': path = optarg; break;
		case 'i': input = optarg; break;
		case 'h': return print_usage();
		default: return bad_option(ch, argc, argv);
		}
	}
	if ((r = no_operands(argc, argv)))
		return r;
	if (!input)
		return usage_err("the input XML is required (-i FILE)");
	if ((r = io_open(&target, path, 0)))
		return r;
	if ((r = target_size(target.io, path, &bytes))) {
		meta_close(&target);
		return r;
	}
	in = strcmp(input, "-") ? fopen(input, "r") : stdin;
	if (!in) {
		r = err("%s: %s", input, strerror(errno));
	} else {
		r = restore(in, strcmp(input, "-") ? input : "standard input",
			    target.io, path, bytes);
		if (in != stdin)
			fclose(in);
	}
	meta_close(&target);
	return r;
}
