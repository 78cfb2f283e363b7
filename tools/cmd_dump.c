/*
 * thinp dump: the metadata as thin_dump 0.9.0 XML.
 *
 * With --metadata-snap the pool may be live (the kernel's or another
 * process's): the snapshot is read through a handle on it alone, with
 * O_DIRECT, and the dump is good only if the snapshot is still held after
 * it (as for thinp delta).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinp.h"
#include "xml.h"

struct dump_state {
	struct invocation *inv;
	uint64_t source;
	struct xml_writer *w;
	int err; /* library error that stopped the walk */
};

static int on_run(const thinp_meta_run *run, void *ctx)
{
	struct xml_writer *w = ctx;
	struct xml_run r = {
		.origin = run->virt_begin, .data = run->data_begin,
		.len = run->length, .time = run->time,
	};

	xml_mapping_run(w, &r);
	return w->err; /* stop early if the output is gone */
}

static int on_device(const thinp_meta_device *d, void *ctx)
{
	struct dump_state *s = ctx;
	struct xml_device xd = {
		.dev_id = d->dev_id, .mapped_blocks = d->mapped_blocks,
		.transaction = d->transaction_id, .creation_time = d->creation_time,
		.snap_time = d->snapshotted_time,
	};
	int e;

	xml_begin_device(s->w, &xd);
	e = thinp_meta_walk_mappings(s->inv->meta, s->source, d->dev_id, on_run, s->w);
	if (e)
		return e;
	xml_end_device(s->w);
	return s->w->err;
}

/* *held: the block of the snapshot dumped (source HELD_ROOT). */
static int dump(struct invocation *inv, uint64_t source, int fd, const char *out_name,
		uint64_t *held)
{
	thinp_meta_superblock sb;
	struct xml_writer *w = calloc(1, sizeof(*w));
	struct dump_state s = { inv, source, w, 0 };
	struct xml_superblock xsb;
	int e, werr;

	if (!w)
		return err("out of memory");
	xml_writer_init(w, fd);
	STRUCT_INIT(sb);
	e = thinp_meta_get_superblock(inv->meta, source, &sb);
	*held = sb.blocknr;
	if (!e) {
		xsb = (struct xml_superblock){
			.time = sb.time, .transaction = sb.transaction_id,
			.flags = sb.flags, .version = sb.version,
			.data_block_size = sb.data_block_size,
			.nr_data_blocks = sb.nr_data_blocks,
		};
		xml_begin_superblock(w, &xsb);
		e = thinp_meta_walk_devices(inv->meta, source, on_device, &s);
	}
	if (!e)
		xml_end_superblock(w);
	werr = xml_writer_finish(w);
	free(w);
	if (werr)
		return err("%s: %s", out_name, strerror(-werr));
	if (e)
		return source_fail(inv, source, e);
	return EXIT_OK;
}

static int run(struct invocation *inv)
{
	const char *out = opt(inv, "output")->str;
	uint64_t source = snap_source(inv), held = 0;
	int r, fd = STDOUT_FILENO;

	if ((r = open_meta_source(inv, source, 0)))
		return r;
	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0)
			return err("%s: %s", out, strerror(errno));
	}
	r = dump(inv, source, fd, out ? out : "standard output", &held);
	/* With =BLOCK block 0 is never read: checking it is the caller's part. */
	if (!r && source == THINP_META_HELD_ROOT)
		r = snapshot_still_held(inv, held);
	if (out && close(fd) && !r)
		r = err("%s: %s", out, strerror(errno));
	if (out && r)
		unlink(out); /* no truncated dump that looks like a pool */
	return r;
}

static const struct option_spec options[] = {
	OPT_METADATA_SNAP("dump the held metadata snapshot (or the\nsnapshot superblock at BLOCK), read with O_DIRECT"),
	{ "output", 'o', "FILE", 0, NULL, "write to FILE instead of stdout" },
	{ NULL },
};

const struct command cmd_dump = {
	.name = "dump",
	.summary = "write the metadata as thin_dump XML",
	.description = "Write the pool metadata as XML, byte for byte as thin_dump 0.9.0 does.\n",
	.options = options,
	.open = OPEN_META_IO,
	.rdonly = true,
	.run = run,
};
