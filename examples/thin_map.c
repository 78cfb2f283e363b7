/*
 * thin_map: print a thin device's map, as runs of virtual blocks -> data
 * blocks, each run marked "shared" (another device maps one of its data
 * blocks too) or "exclusive".
 *
 *   thin_map [-m | -b BLOCK] METADATA DEV      one device
 *   thin_map [-m | -b BLOCK] -a METADATA       every device
 *
 * -m reads the held metadata snapshot (-b: the snapshot superblock at BLOCK)
 * instead of the live metadata, so a running pool can be mapped safely.
 *
 * Built only on the public API (libthinp/thinp.h, libthinp/meta.h), e.g.
 *   cc thin_map.c $(pkg-config --cflags --libs libthinp)
 *
 * Method: one pass over every device's mappings counts how many mappings
 * reference each data block; a second pass prints the wanted devices' runs,
 * split where the shared/exclusive state changes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/thinp.h>
#include <libthinp/meta.h>

struct counts {
	uint8_t *n; /* references per data block, saturating at 255 */
	uint64_t size;
};

struct walk {
	thinp_meta *meta;
	uint64_t source;
	struct counts counts;
	int err;
};

static int grow(struct counts *c, uint64_t need)
{
	uint64_t size = c->size ? c->size : 1024;
	uint8_t *n;

	while (size < need)
		size *= 2;
	n = realloc(c->n, size);
	if (!n)
		return -ENOMEM;
	memset(n + c->size, 0, size - c->size);
	c->n = n;
	c->size = size;
	return 0;
}

static int count_run(const thinp_meta_run *run, void *ctx)
{
	struct counts *c = ctx;
	int r;

	if (run->data_begin + run->length > c->size) {
		r = grow(c, run->data_begin + run->length);
		if (r)
			return r;
	}
	for (uint64_t i = 0; i < run->length; i++)
		if (c->n[run->data_begin + i] < 255)
			c->n[run->data_begin + i]++;
	return 0;
}

static int count_device(const thinp_meta_device *dev, void *ctx)
{
	struct walk *w = ctx;

	return thinp_meta_walk_mappings(w->meta, w->source, dev->dev_id, count_run,
					&w->counts);
}

static void print_run(uint64_t v, uint64_t d, uint64_t len, uint32_t time, int shared)
{
	if (len == 1)
		printf("  %" PRIu64 " -> %" PRIu64, v, d);
	else
		printf("  %" PRIu64 "..%" PRIu64 " -> %" PRIu64 "..%" PRIu64, v, v + len - 1, d,
		       d + len - 1);
	printf(" %s time %" PRIu32 "\n", shared ? "shared" : "exclusive", time);
}

static int print_mapping_run(const thinp_meta_run *run, void *ctx)
{
	struct walk *w = ctx;
	uint64_t start = 0;

	/* Split the library's run where the shared state changes. */
	for (uint64_t i = 1; i <= run->length; i++) {
		int s0 = w->counts.n[run->data_begin + start] > 1;

		if (i < run->length && (w->counts.n[run->data_begin + i] > 1) == s0)
			continue;
		print_run(run->virt_begin + start, run->data_begin + start, i - start, run->time,
			  s0);
		start = i;
	}
	return 0;
}

static int print_device(const thinp_meta_device *dev, void *ctx)
{
	struct walk *w = ctx;

	printf("device %" PRIu64 ": %" PRIu64 " mapped blocks\n", dev->dev_id,
	       dev->mapped_blocks);
	return thinp_meta_walk_mappings(w->meta, w->source, dev->dev_id, print_mapping_run, w);
}

static int usage(void)
{
	fprintf(stderr, "usage: thin_map [-m | -b BLOCK] METADATA DEV\n"
			"       thin_map [-m | -b BLOCK] -a METADATA\n");
	return 2;
}

int main(int argc, char **argv)
{
	thinp_meta_options mo = THINP_META_OPTIONS_INIT;
	struct walk w;
	thinp_io *io;
	int all = 0, i = 1, r;
	uint64_t id = 0;

	memset(&w, 0, sizeof(w));
	w.source = THINP_META_LIVE;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-a")) {
			all = 1;
		} else if (!strcmp(argv[i], "-m")) {
			w.source = THINP_META_HELD_ROOT;
		} else if (!strcmp(argv[i], "-b") && i + 1 < argc) {
			w.source = strtoull(argv[++i], NULL, 10);
		} else {
			return usage();
		}
	}
	if (argc - i != (all ? 1 : 2))
		return usage();
	if (!all)
		id = strtoull(argv[i + 1], NULL, 10);
	r = thinp_io_open_file(&io, argv[i], THINP_IO_RDONLY);
	if (r) {
		fprintf(stderr, "thin_map: %s: %s\n", argv[i], thinp_strerror(r));
		return 1;
	}
	mo.flags = THINP_META_RDONLY;
	r = thinp_meta_open(&w.meta, io, &mo);
	if (!r)
		r = thinp_meta_walk_devices(w.meta, w.source, count_device, &w);
	if (!r && all)
		r = thinp_meta_walk_devices(w.meta, w.source, print_device, &w);
	if (!r && !all) {
		r = thinp_meta_walk_mappings(w.meta, w.source, id, print_mapping_run, &w);
	}
	if (r) {
		char msg[256];

		fprintf(stderr, "thin_map: %s\n",
			thinp_meta_errmsg(w.meta, msg, sizeof(msg)) ? msg : thinp_strerror(r));
	}
	thinp_meta_close(w.meta);
	thinp_io_close(io);
	free(w.counts.n);
	return r ? 1 : 0;
}
