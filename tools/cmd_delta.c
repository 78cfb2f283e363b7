/*
 * thinp delta: what differs between two thin devices, as thin_delta 0.9.0
 * writes it (byte for byte, default and --verbose), or as JSON lines.
 *
 * The library gives exact runs (one kind, data blocks contiguous on each
 * side); they are exactly thin_delta's steps, since thin_delta cuts where a
 * side's (virtual, data)-contiguous run ends or the kind changes. Its
 * default output then merges neighbouring steps of one kind by virtual
 * block alone; --verbose prints each step as a <range>, grouped by kind.
 *
 * With --metadata-snap the metadata device is read with O_DIRECT (where the
 * filesystem allows it), so a pool the kernel owns is read from the device,
 * not from a stale page cache, and through a handle on the snapshot alone:
 * block 0 is read once to find the held root (not at all with =BLOCK).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delta_parts.h"
#include "thinp.h"
#include "xml.h"

#define BATCH 256
#define SECTOR 512u
#define DELTA_CACHE_BYTES (1024 * 1024)
/* Parts read at once by default (one per CPU up to this), each of at least
 * MIN_PART_BLOCKS virtual blocks, their threads started after
 * START_AFTER_MS: a thread costs more than a short part or a quick delta. */
#define DEFAULT_PARTS 4u
#define MIN_PART_BLOCKS (256u * 1024)
#define START_AFTER_MS 10u

enum format { FORMAT_XML, FORMAT_JSON };

struct out {
	enum format format;
	struct xml_writer *xml; /* XML goes through the tools' buffered writer */
	bool verbose;
	uint64_t block_bytes;
	bool open;             /* simple XML: a merged run is pending */
	uint32_t kind;         /* of the pending run (simple) or open group (verbose) */
	uint64_t begin, end;   /* the pending simple run */
	bool progress;
	time_t last_progress;
	uint64_t position;     /* every run below it is out */
	/* The XML header, written with the first run or at the end (none if
	 * the delta cannot start). */
	const thinp_meta_superblock *sb;
	uint64_t left, right;
	bool begun;
};

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case THINP_DELTA_LEFT_ONLY: return "left_only";
	case THINP_DELTA_RIGHT_ONLY: return "right_only";
	case THINP_DELTA_DIFFERENT: return "different";
	default: return "same";
	}
}

/* ---- thin_delta's default output: runs merged by virtual block ---------- */

static void simple_flush(struct out *o)
{
	if (o->open) {
		xml_put_str(o->xml, "    <");
		xml_put_str(o->xml, kind_name(o->kind));
		xml_put_attr(o->xml, "begin", o->begin);
		xml_put_attr(o->xml, "length", o->end - o->begin);
		xml_put_str(o->xml, "/>\n");
	}
	o->open = false;
}

static void simple_run(struct out *o, const thinp_delta_run *r)
{
	if (o->open && o->kind == r->kind && o->end == r->virt_begin) {
		o->end += r->length;
		return;
	}
	simple_flush(o);
	o->open = true;
	o->kind = r->kind;
	o->begin = r->virt_begin;
	o->end = r->virt_begin + r->length;
}

/* ---- --verbose: every run a <range>, grouped by kind ----------------------- */

/* `    <kind>` or, closing, `    </kind>` */
static void group_tag(struct out *o, const char *open)
{
	xml_put_str(o->xml, open);
	xml_put_str(o->xml, kind_name(o->kind));
	xml_put_str(o->xml, ">\n");
}

static void verbose_close(struct out *o)
{
	if (o->kind)
		group_tag(o, "    </");
	o->kind = 0;
}

static void verbose_run(struct out *o, const thinp_delta_run *r)
{
	if (o->kind != r->kind) {
		verbose_close(o);
		o->kind = r->kind;
		group_tag(o, "    <");
	}
	xml_put_str(o->xml, "      <range");
	xml_put_attr(o->xml, "begin", r->virt_begin);
	if (r->kind == THINP_DELTA_DIFFERENT) {
		xml_put_attr(o->xml, "left_data_begin", r->left_data);
		xml_put_attr(o->xml, "right_data_begin", r->right_data);
	} else {
		xml_put_attr(o->xml, "data_begin",
			     r->kind == THINP_DELTA_RIGHT_ONLY ? r->right_data : r->left_data);
	}
	xml_put_attr(o->xml, "length", r->length);
	xml_put_str(o->xml, "/>\n");
}

/* ---- JSON lines: one object per run -------------------------------------- */

static void json_data(const char *name, bool has, uint64_t block)
{
	if (has)
		printf(", \"%s\": %" PRIu64, name, block);
	else
		printf(", \"%s\": null", name);
}

static void json_run(const struct out *o, const thinp_delta_run *r)
{
	printf("{\"kind\": \"%s\", \"begin\": %" PRIu64 ", \"length\": %" PRIu64
	       ", \"offset_bytes\": %" PRIu64 ", \"length_bytes\": %" PRIu64,
	       kind_name(r->kind), r->virt_begin, r->length, r->virt_begin * o->block_bytes,
	       r->length * o->block_bytes);
	json_data("left_data", r->kind != THINP_DELTA_RIGHT_ONLY, r->left_data);
	json_data("right_data", r->kind != THINP_DELTA_LEFT_ONLY, r->right_data);
	printf("}\n");
}

static void emit(struct out *o, const thinp_delta_run *r)
{
	if (o->format == FORMAT_JSON)
		json_run(o, r);
	else if (o->verbose)
		verbose_run(o, r);
	else
		simple_run(o, r);
}

static void progress(struct out *o, uint64_t position, bool done)
{
	time_t now = time(NULL);

	if (!o->progress || (!done && now == o->last_progress))
		return;
	o->last_progress = now;
	fprintf(stderr, "\rthinp delta: virtual block %" PRIu64 "%s", position,
		done ? " done\n" : "");
}

/* ---- the command ------------------------------------------------------------ */

static void xml_begin(struct out *o)
{
	struct xml_writer *w = o->xml;
	const thinp_meta_superblock *sb = o->sb;

	if (!w || o->begun)
		return;
	o->begun = true;
	xml_put_str(w, "<superblock uuid=\"\"");
	xml_put_attr(w, "time", sb->time);
	xml_put_attr(w, "transaction", sb->transaction_id);
	xml_put_attr(w, "data_block_size", sb->data_block_size);
	xml_put_attr(w, "nr_data_blocks", sb->nr_data_blocks);
	if (sb->held_root)
		xml_put_attr(w, "metadata_snap", sb->held_root);
	xml_put_str(w, ">\n  <diff");
	xml_put_attr(w, "left", o->left);
	xml_put_attr(w, "right", o->right);
	xml_put_str(w, ">\n");
}

static void xml_end(struct out *o)
{
	xml_begin(o);
	if (o->verbose)
		verbose_close(o);
	else
		simple_flush(o);
	xml_put_str(o->xml, "  </diff>\n</superblock>\n");
}

static int emit_run(const thinp_delta_run *r, uint64_t position, void *ctx)
{
	struct out *o = ctx;

	xml_begin(o);
	emit(o, r);
	o->position = position;
	progress(o, position, false);
	return 0;
}

/* --threads: 1 to 16 (delta_parts.c's limit). */
static const char *parse_threads(const char *s, uint64_t *n)
{
	const char *e = parse_u64(s, n);

	return e ? e : (*n < 1 || *n > 16) ? "must be between 1 and 16" : NULL;
}

/* What a part's own handle must read: what inv->meta reads. */
struct part_handles {
	struct invocation *inv;
	uint64_t source;
	const thinp_meta_superblock *sb;
};

/*
 * Another handle on what inv->meta reads, for a part's thread
 * (delta_parts.h): the same snapshot block, or the live superblock if it is
 * still the one inv->meta found (NULL otherwise: that part then shares
 * inv->meta). It logs nowhere: only the calling thread's handle reports to
 * the invocation.
 */
static thinp_meta *open_part_handle(void *ctx)
{
	const struct part_handles *ph = ctx;
	thinp_meta_superblock now;
	thinp_meta_options mo;
	thinp_meta *m;
	int e;

	meta_options(ph->inv, &mo);
	mo.log_fn = NULL;
	mo.log_ctx = NULL;
	mo.flags |= THINP_META_RDONLY;
	mo.cache_bytes = DELTA_CACHE_BYTES;
	e = ph->source == THINP_META_LIVE
		    ? thinp_meta_open(&m, ph->inv->meta_io, &mo)
		    : thinp_meta_open_snapshot(&m, ph->inv->meta_io, ph->sb->blocknr, &mo);
	if (e)
		return NULL;
	STRUCT_INIT(now);
	if (thinp_meta_get_superblock(m, ph->source, &now) || memcmp(&now, ph->sb, sizeof(now))) {
		thinp_meta_close(m);
		return NULL;
	}
	return m;
}

/* How the delta is read (delta_parts.h): in --threads parts, started at
 * once; or in one part per CPU up to DEFAULT_PARTS, each of MIN_PART_BLOCKS
 * or more, started once the delta has taken START_AFTER_MS (a quick one
 * never starts a thread). */
static void plan_parts(struct invocation *inv, struct delta_parts_plan *plan)
{
	const struct arg *t = opt(inv, "threads");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (t->given) {
		*plan = (struct delta_parts_plan){ (unsigned)t->num, 1, 0 };
		return;
	}
	*plan = (struct delta_parts_plan){
		cpus < 1 ? 1 : cpus > DEFAULT_PARTS ? DEFAULT_PARTS : (unsigned)cpus,
		MIN_PART_BLOCKS, START_AFTER_MS };
}

/* The device the option (or its thin_delta alias) names. */
static int device(struct invocation *inv, const char *snap, const char *thin, uint64_t *id)
{
	const struct arg *a = opt(inv, snap), *b = opt(inv, thin);

	if (!a->given && !b->given)
		return usage_err("--%s not specified", snap);
	*id = a->given ? a->num : b->num;
	return EXIT_OK;
}

static int parse_args(struct invocation *inv, uint64_t *left, uint64_t *right, struct out *o)
{
	const char *format = opt(inv, "format")->str;
	int r;

	if ((r = device(inv, "snap1", "thin1", left)) || (r = device(inv, "snap2", "thin2", right)))
		return r;
	memset(o, 0, sizeof(*o));
	o->verbose = opt(inv, "verbose")->given;
	if (!format || !strcmp(format, "xml"))
		o->format = FORMAT_XML;
	else if (!strcmp(format, "json"))
		o->format = FORMAT_JSON;
	else
		return usage_err("bad --format '%s': xml or json", format);
	o->progress = isatty(STDERR_FILENO);
	return EXIT_OK;
}

static int run(struct invocation *inv)
{
	thinp_delta_options dopts = THINP_DELTA_OPTIONS_INIT;
	uint64_t left, right, held, source = snap_source(inv);
	thinp_meta_superblock sb;
	struct part_handles ph = { inv, source, &sb };
	struct delta_parts_source src = { NULL, open_part_handle, &ph };
	struct delta_parts_plan plan;
	struct out o;
	int r, e, opened;

	if ((r = parse_args(inv, &left, &right, &o)))
		return r;
	/* A delta reads each node once, and again only the few on the path a
	 * batch starts from: a small cache keeps reusing warm buffers. */
	plan_parts(inv, &plan);
	if ((r = open_meta_source(inv, source, DELTA_CACHE_BYTES)))
		return r;
	STRUCT_INIT(sb);
	e = thinp_meta_get_superblock(inv->meta, source, &sb);
	/* A snapshot handle's superblock is the snapshot's, read from its block. */
	held = sb.blocknr;
	if (e)
		return source_fail(inv, source, e);
	o.block_bytes = (uint64_t)sb.data_block_size * SECTOR;
	src.meta = inv->meta;
	o.sb = &sb;
	o.left = left;
	o.right = right;
	dopts.left_source = dopts.right_source = source;
	if (opt(inv, "changes-only")->given)
		dopts.flags |= THINP_DELTA_CHANGES_ONLY;
	if (o.format == FORMAT_XML) {
		/* JSON goes through stdio; XML alone through the writer on fd 1. */
		o.xml = malloc(sizeof(*o.xml));
		if (!o.xml)
			return fail(inv, -ENOMEM, NULL);
		xml_writer_init(o.xml, STDOUT_FILENO);
	}
	r = EXIT_OK;
	e = delta_parts_run(&src, left, right, &dopts, &plan, emit_run, &o, &opened);
	if (e)
		r = fail(inv, e, opened ? "delta" : NULL);
	else
		progress(&o, o.position, true);
	if (o.xml) {
		if (!r)
			xml_end(&o);
		e = xml_writer_finish(o.xml);
		free(o.xml);
	} else {
		e = fflush(stdout) || ferror(stdout) ? (errno ? -errno : -EIO) : 0;
	}
	if (e)
		return r ? r : err("standard output: %s", strerror(-e));
	/* With --metadata-snap=BLOCK the caller took the block from the pool's
	 * status and block 0 is never read: checking it is the caller's part. */
	if (!r && source == THINP_META_HELD_ROOT)
		r = snapshot_still_held(inv, held);
	return r;
}

static const struct option_spec options[] = {
	{ "snap1", 0, "DEV", 0, parse_u64, "the left device" },
	{ "thin1", 0, "DEV", 0, parse_u64, "the same as --snap1" },
	{ "snap2", 0, "DEV", 0, parse_u64, "the right device" },
	{ "thin2", 0, "DEV", 0, parse_u64, "the same as --snap2" },
	OPT_METADATA_SNAP("compare the devices in the held metadata snapshot\n"
			  "(or the snapshot superblock at BLOCK), read with O_DIRECT"),
	{ "verbose", 0, NULL, 0, NULL, "every run as a <range> with its data blocks" },
	{ "changes-only", 0, NULL, 0, NULL,
	  "leave out the blocks both map the same (skips what\nthe devices share unread)" },
	{ "format", 0, "FORMAT", 0, NULL, "xml (thin_delta's, the default) or json\n"
					  "(one object per line and run)" },
	{ "threads", 0, "N", 0, parse_threads,
	  "read the delta in N parts at once, on N threads (default:\n"
	  "one per CPU up to 4 for parts of 256Ki blocks or more,\n"
	  "started once the delta has taken 10 ms)" },
	{ NULL },
};

const struct command cmd_delta = {
	.name = "delta",
	.summary = "what differs between two thin devices",
	.description =
		"Print the virtual blocks where two thin devices differ, as thin_delta\n"
		"0.9.0 does, byte for byte: left_only, right_only, different (mapped on both\n"
		"to different data blocks) and same, in blocks of data_block_size sectors.\n"
		"--format=json prints one object per run instead: kind, begin, length\n"
		"(blocks), offset_bytes, length_bytes, left_data, right_data (data blocks,\n"
		"null where unmapped). Progress goes to stderr when it is a terminal.\n",
	.options = options,
	.open = OPEN_META_IO,
	.rdonly = true,
	.run = run,
};
