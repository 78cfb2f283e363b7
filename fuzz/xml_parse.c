/*
 * Fuzz target xml_parse: the thinp tool's XML parser and writer.
 *
 * Any input: the parser must return 0 or -1 with a message that starts with
 * the input's name and a line number, and never crash. An accepted input is
 * written back with the thin_dump writer; that output must parse, and writing
 * it again must give the same bytes (parse and write reach a fixed point after
 * one round: the writer's runs are maximal and its grammar a subset of the
 * parser's).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "../tools/xml.h"

struct rewrite {
	struct xml_writer w;
	bool in_sb;
};

static int on_sb(struct xml_parser *p, const struct xml_superblock *sb)
{
	struct rewrite *rw = xml_ctx(p);

	xml_begin_superblock(&rw->w, sb);
	return 0;
}

static int on_sb_end(struct xml_parser *p)
{
	xml_end_superblock(&((struct rewrite *)xml_ctx(p))->w);
	return 0;
}

static int on_dev(struct xml_parser *p, const struct xml_device *d)
{
	xml_begin_device(&((struct rewrite *)xml_ctx(p))->w, d);
	return 0;
}

static int on_dev_end(struct xml_parser *p)
{
	xml_end_device(&((struct rewrite *)xml_ctx(p))->w);
	return 0;
}

/* The writer coalesces only ascending input; the parser's is any order, so
 * runs are passed on as they come and the output is compared as bytes. */
static int on_run(struct xml_parser *p, const struct xml_run *r)
{
	xml_mapping_run(&((struct rewrite *)xml_ctx(p))->w, r);
	return 0;
}

static const struct xml_handlers rewriter = {
	on_sb, on_sb_end, on_dev, on_dev_end, on_run,
};

/* Parse `in` (size n) and write it back into a fresh memfd; returns the fd
 * (output size in *out_n) or -1 when the parser refused the input. */
static int round_trip(const void *in, size_t n, size_t *out_n)
{
	static struct rewrite rw;
	char msg[512];
	FILE *f = fmemopen((void *)in, n, "r");
	int fd = memfd_create("xml", 0), r;

	FUZZ_CHECK(f && fd >= 0);
	xml_writer_init(&rw.w, fd);
	r = xml_parse(f, "in", &rewriter, &rw, msg, sizeof(msg));
	fclose(f);
	FUZZ_CHECK(xml_writer_finish(&rw.w) == 0);
	if (r) {
		FUZZ_CHECK(r == -1 && !strncmp(msg, "in:", 3) && msg[3] >= '1' && msg[3] <= '9');
		close(fd);
		return -1;
	}
	*out_n = (size_t)lseek(fd, 0, SEEK_CUR);
	return fd;
}

static char *contents(int fd, size_t n)
{
	char *s = malloc(n + 1);

	FUZZ_CHECK(s && pread(fd, s, n, 0) == (ssize_t)n);
	return s;
}

int fuzz_one(const uint8_t *data, size_t size)
{
	size_t n1, n2;
	int fd1, fd2;
	char *a, *b;

	if (size == 0)
		return -1;
	/* fmemopen on an empty buffer is special; the parser sees EOF anyway */
	fd1 = round_trip(data, size, &n1);
	if (fd1 < 0)
		return 0;
	a = contents(fd1, n1);
	fd2 = round_trip(a, n1, &n2);
	FUZZ_CHECK(fd2 >= 0); /* our own output must parse */
	b = contents(fd2, n2);
	FUZZ_CHECK(n1 == n2 && !memcmp(a, b, n1));
	free(a);
	free(b);
	close(fd1);
	close(fd2);
	return 0;
}
