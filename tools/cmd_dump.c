/* thinp dump: the metadata as thin_dump 0.9.0 XML. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinp.h"
#include "xml.h"

struct dump_state {
	struct meta_ctx *c;
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
	e = thinp_meta_walk_mappings(s->c->meta, s->source, d->dev_id, on_run, s->w);
	if (e)
		return e;
	xml_end_device(s->w);
	return s->w->err;
}

static int dump(struct meta_ctx *c, uint64_t source, int fd, const char *out_name)
{
	thinp_meta_superblock sb;
	struct xml_writer *w = calloc(1, sizeof(*w));
	struct dump_state s = { c, source, w, 0 };
	struct xml_superblock xsb;
	int e, werr;

	if (!w)
		return err("out of memory");
	xml_writer_init(w, fd);
	STRUCT_INIT(sb);
	e = thinp_meta_get_superblock(c->meta, source, &sb);
	if (!e) {
		xsb = (struct xml_superblock){
			.time = sb.time, .transaction = sb.transaction_id,
			.flags = sb.flags, .version = sb.version,
			.data_block_size = sb.data_block_size,
			.nr_data_blocks = sb.nr_data_blocks,
		};
		xml_begin_superblock(w, &xsb);
		e = thinp_meta_walk_devices(c->meta, source, on_device, &s);
	}
	if (!e)
		xml_end_superblock(w);
	werr = xml_writer_finish(w);
	free(w);
	if (werr)
		return err("%s: %s", out_name, strerror(-werr));
	if (e)
		return err("%s", source_error(c, source, e));
	return EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metadata", required_argument, NULL, 'm' },
		{ "metadata-snap", optional_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *out = NULL;
	uint64_t source = THINP_META_LIVE;
	struct meta_ctx c;
	int ch, r, fd = STDOUT_FILENO;

	while ((ch = getopt_long(argc, argv, ":m:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': path = optarg; break;
		case 'o': out = optarg; break;
		case 's':
			if ((r = parse_source(optarg, &source)))
				return r;
			break;
		case 'h': return print_usage();
		default: return bad_option(ch, argc, argv);
		}
	}
	if ((r = no_operands(argc, argv)))
		return r;
	if ((r = meta_open(&c, path, OPEN_RDONLY)))
		return r;
	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			meta_close(&c);
			return err("%s: %s", out, strerror(errno));
		}
	}
	r = dump(&c, source, fd, out ? out : "standard output");
	if (out && close(fd) && !r)
		r = err("%s: %s", out, strerror(errno));
	if (out && r)
		unlink(out); /* no truncated dump that looks like a pool */
	meta_close(&c);
	return r;
}
