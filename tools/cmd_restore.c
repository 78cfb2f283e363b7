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
#include <inttypes.h>
#include <string.h>

#include "stage.h"
#include "thinp.h"
#include "xml.h"

struct restore {
	struct invocation *inv; /* inv->meta is the staged metadata */
	thinp_io *stage;
	struct xml_superblock sb;
	uint64_t dev;       /* the device being filled */
};

static int lib_fail(struct xml_parser *p, const char *what, int e)
{
	struct restore *rs = xml_ctx(p);

	return xml_fail(p, "%s: %s", what, describe(rs->inv, e));
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
	meta_options(rs->inv, &o);
	e = thinp_meta_format(&rs->inv->meta, rs->stage, &fp, &o);
	if (e) {
		rs->inv->meta = NULL;
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
	int e = thinp_meta_create_thin(rs->inv->meta, d->dev_id);

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
	e = thinp_meta_set_device_details(rs->inv->meta, d->dev_id, &det);
	if (e)
		return lib_fail(p, "cannot set device details", e);
	rs->dev = d->dev_id;
	return 0;
}

static int mapping_run(struct xml_parser *p, const struct xml_run *r)
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
		e = thinp_meta_data_inc(rs->inv->meta, r->data + i);
		if (!e)
			e = thinp_meta_insert_timed(rs->inv->meta, rs->dev, r->origin + i,
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
	e = thinp_meta_set_superblock_fields(rs->inv->meta, &sb);
	if (e)
		return lib_fail(p, "cannot set superblock fields", e);
	e = thinp_meta_commit(rs->inv->meta);
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
	.run = mapping_run,
};

/* Parse `in` into a pool on a staging device of `bytes`, then copy it out. */
static int restore(struct invocation *inv, FILE *in, const char *in_name, uint64_t bytes)
{
	struct restore rs = { .inv = inv };
	struct stage *st;
	char msg[1024];
	int e, r = EXIT_OK;

	e = stage_open(&rs.stage, &st, bytes);
	if (e)
		return err("%s", strerror(-e));
	e = xml_parse(in, in_name, &handlers, &rs, msg, sizeof(msg));
	thinp_meta_close(inv->meta); /* sb_end committed it */
	inv->meta = NULL;
	if (e)
		r = err("%s", msg);
	else if ((e = stage_copy_to(st, inv->meta_io)))
		r = err("%s: writing the new metadata failed: %s", inv->meta_path, strerror(-e));
	thinp_io_close(rs.stage);
	return r;
}

/* The metadata size comes from the target, capped where the format stops. */
static int target_size(struct invocation *inv, uint64_t *bytes)
{
	const uint64_t max = THINP_META_MAX_METADATA_BLOCKS * THINP_META_BLOCK_SIZE;
	int e = thinp_io_size(inv->meta_io, bytes);

	if (e)
		return fail(inv, e, "%s", inv->meta_path);
	if (*bytes > max)
		*bytes = max;
	return EXIT_OK;
}

static int run(struct invocation *inv)
{
	const char *input = opt(inv, "input")->str;
	bool std_in = !strcmp(input, "-");
	uint64_t bytes;
	FILE *in;
	int r;

	if ((r = target_size(inv, &bytes)))
		return r;
	in = std_in ? stdin : fopen(input, "r");
	if (!in)
		return err("%s: %s", input, strerror(errno));
	r = restore(inv, in, std_in ? "standard input" : input, bytes);
	if (!std_in)
		fclose(in);
	return r;
}

static const struct option_spec options[] = {
	{ "input", 'i', "FILE", OPT_REQUIRED, NULL, "the XML (thin_dump format; '-' for stdin)" },
	{ NULL },
};

const struct command cmd_restore = {
	.name = "restore",
	.summary = "write metadata from thin_dump XML",
	.description =
		"Replace the metadata on META (an existing file or block device; its\n"
		"size is the metadata size) with the pool described by FILE.xml, as\n"
		"thin_restore does. The new metadata is built in memory and written to\n"
		"META only after the whole input was read and applied without error;\n"
		"on any error META is left untouched.\n",
	.options = options,
	.open = OPEN_META_IO,
	.run = run,
};
