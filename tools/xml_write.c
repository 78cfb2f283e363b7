/*
 * XML writer: thin_dump 0.9.0's output, byte for byte.
 *
 * thin_dump writes one element per line, two spaces of indentation per level,
 * attributes in a fixed order, uuid always empty, no XML declaration and no
 * metadata_snap attribute. Mappings are coalesced into runs while walking:
 * a mapping extends the current run iff its origin and data block are both
 * one past the run's end and its time is the same. Runs of one are written
 * as single_mapping. Runs continue across btree leaves (only the sequence of
 * mappings matters), which is why coalescing lives here and not in the walk.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "xml.h"

void xml_writer_init(struct xml_writer *w, int fd)
{
	w->fd = fd;
	w->err = 0;
	w->in_run = false;
	w->used = 0;
}

static void flush_buf(struct xml_writer *w)
{
	size_t done = 0;

	while (!w->err && done < w->used) {
		ssize_t n = write(w->fd, w->buf + done, w->used - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			w->err = n < 0 ? -errno : -EIO;
		else
			done += (size_t)n;
	}
	w->used = 0;
}

/* Make room for `n` bytes; every caller needs far less than the buffer. */
static char *reserve(struct xml_writer *w, size_t n)
{
	if (w->used + n > sizeof(w->buf))
		flush_buf(w);
	return w->buf + w->used;
}

void xml_put_str(struct xml_writer *w, const char *s)
{
	size_t n = strlen(s);

	memcpy(reserve(w, n), s, n);
	w->used += n;
}

static void put_u64(struct xml_writer *w, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	char *dst;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	dst = reserve(w, n);
	for (size_t i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	w->used += n;
}

void xml_put_attr(struct xml_writer *w, const char *name, uint64_t v)
{
	xml_put_str(w, " ");
	xml_put_str(w, name);
	xml_put_str(w, "=\"");
	put_u64(w, v);
	xml_put_str(w, "\"");
}

void xml_begin_superblock(struct xml_writer *w, const struct xml_superblock *sb)
{
	xml_put_str(w, "<superblock uuid=\"\"");
	xml_put_attr(w, "time", sb->time);
	xml_put_attr(w, "transaction", sb->transaction);
	xml_put_attr(w, "flags", sb->flags);
	xml_put_attr(w, "version", sb->version);
	xml_put_attr(w, "data_block_size", sb->data_block_size);
	xml_put_attr(w, "nr_data_blocks", sb->nr_data_blocks);
	xml_put_str(w, ">\n");
}

void xml_begin_device(struct xml_writer *w, const struct xml_device *dev)
{
	xml_put_str(w, "  <device");
	xml_put_attr(w, "dev_id", dev->dev_id);
	xml_put_attr(w, "mapped_blocks", dev->mapped_blocks);
	xml_put_attr(w, "transaction", dev->transaction);
	xml_put_attr(w, "creation_time", dev->creation_time);
	xml_put_attr(w, "snap_time", dev->snap_time);
	xml_put_str(w, ">\n");
	w->in_run = false;
}

static void emit_run(struct xml_writer *w, const struct xml_run *r)
{
	if (r->len == 1) {
		xml_put_str(w, "    <single_mapping");
		xml_put_attr(w, "origin_block", r->origin);
		xml_put_attr(w, "data_block", r->data);
	} else {
		xml_put_str(w, "    <range_mapping");
		xml_put_attr(w, "origin_begin", r->origin);
		xml_put_attr(w, "data_begin", r->data);
		xml_put_attr(w, "length", r->len);
	}
	xml_put_attr(w, "time", r->time);
	xml_put_str(w, "/>\n");
}

void xml_mapping_run(struct xml_writer *w, const struct xml_run *run)
{
	struct xml_run *cur = &w->run;

	if (run->len == 0)
		return;
	/* The length check keeps a run covering all 2^64 blocks from wrapping. */
	if (w->in_run && run->time == cur->time &&
	    run->origin == cur->origin + cur->len &&
	    run->data == cur->data + cur->len && run->len <= UINT64_MAX - cur->len) {
		cur->len += run->len;
		return;
	}
	if (w->in_run)
		emit_run(w, cur);
	*cur = *run;
	w->in_run = true;
}

void xml_end_device(struct xml_writer *w)
{
	if (w->in_run)
		emit_run(w, &w->run);
	w->in_run = false;
	xml_put_str(w, "  </device>\n");
}

void xml_end_superblock(struct xml_writer *w)
{
	xml_put_str(w, "</superblock>\n");
}

int xml_writer_finish(struct xml_writer *w)
{
	flush_buf(w);
	return w->err;
}
