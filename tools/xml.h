/*
 * The thin_dump/thin_restore 0.9.0 XML format: a writer that reproduces
 * thin_dump's output byte for byte, and a small streaming parser for exactly
 * the grammar thin_restore 0.9.0 reads (FORMAT.md section 12).
 *
 * Neither side knows anything about metadata: the writer is fed devices and
 * mappings in order, the parser hands them to callbacks. That keeps both
 * usable (and testable) without a pool.
 */
#ifndef THINP_TOOL_XML_H
#define THINP_TOOL_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct xml_superblock {
	uint32_t time;
	uint64_t transaction;
	uint32_t flags;
	uint32_t version;
	uint32_t data_block_size; /* sectors */
	uint64_t nr_data_blocks;
	bool has_metadata_snap; /* input only; the writer never emits it */
	uint64_t metadata_snap;
};

struct xml_device {
	uint64_t dev_id; /* the parser accepts 32-bit ids, as thin_restore 0.9.0 */
	uint64_t mapped_blocks;
	uint64_t transaction;
	uint32_t creation_time;
	uint32_t snap_time;
};

/* `len` mappings: origin+i -> data+i, all stamped `time` (24 bits). */
struct xml_run {
	uint64_t origin;
	uint64_t data;
	uint64_t len;
	uint32_t time;
};

/* ---- writer ---- */

/*
 * Output is buffered by the writer itself (thin_dump-sized dumps are large and
 * stdio's per-call locking shows up in profiles). Every call may fail only
 * through the underlying write; the first error sticks and is returned by
 * xml_writer_finish().
 */
struct xml_writer {
	int fd;
	int err; /* first write error, negative errno */
	bool in_run;
	struct xml_run run; /* the run being coalesced */
	size_t used;
	char buf[1 << 16];
};

void xml_writer_init(struct xml_writer *w, int fd);
void xml_begin_superblock(struct xml_writer *w, const struct xml_superblock *sb);
void xml_begin_device(struct xml_writer *w, const struct xml_device *dev);
/*
 * One mapping, or a run of them. Mappings must come in ascending origin order
 * within a device; adjacent ones are merged into range_mapping lines exactly
 * as thin_dump merges them (next origin and data block both +1, same time).
 */
void xml_mapping_run(struct xml_writer *w, const struct xml_run *run);
void xml_end_device(struct xml_writer *w);
void xml_end_superblock(struct xml_writer *w);
/* Raw output for other elements (thin_delta's): a string, and
 * ` name="value"` with value in decimal. */
void xml_put_str(struct xml_writer *w, const char *s);
void xml_put_attr(struct xml_writer *w, const char *name, uint64_t v);
/* Flush the buffer; returns 0 or the first negative errno seen. */
int xml_writer_finish(struct xml_writer *w);

/* ---- parser ---- */

struct xml_parser;

/*
 * Callbacks; each returns 0 to continue or non-zero to stop the parse, after
 * calling xml_fail() to say why (the message gets the current line number).
 * Any of them may be NULL.
 */
struct xml_handlers {
	int (*superblock_begin)(struct xml_parser *p, const struct xml_superblock *sb);
	int (*superblock_end)(struct xml_parser *p);
	int (*device_begin)(struct xml_parser *p, const struct xml_device *dev);
	int (*device_end)(struct xml_parser *p);
	int (*run)(struct xml_parser *p, const struct xml_run *run);
};

/*
 * Parse `in` (its name is used in messages). Returns 0, or -1 with a one-line
 * message "NAME:LINE: what went wrong" in `err`. `ctx` is handed back by
 * xml_ctx().
 */
int xml_parse(FILE *in, const char *name, const struct xml_handlers *h,
	      void *ctx, char *err, size_t errlen);
void *xml_ctx(struct xml_parser *p);
/* Record a failure at the current line; returns -1 for `return xml_fail(...)`. */
int xml_fail(struct xml_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
