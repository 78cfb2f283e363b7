/*
 * The thinp tool's XML writer and parser, without a pool: the writer must
 * produce thin_dump 0.9.0's exact bytes (samples pinned from real thin_dump
 * output), the parser must accept the grammar's freedoms and reject
 * everything else with a line-numbered message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "../tools/xml.h"

/* ---- writer ---- */

static char *written(FILE *f)
{
	long n;
	char *s;

	fflush(f);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	return s;
}

static void run(struct xml_writer *w, uint64_t o, uint64_t d, uint64_t len, uint32_t t)
{
	struct xml_run r = { o, d, len, t };

	xml_mapping_run(w, &r);
}

/* Pinned from thin_restore + thin_dump 0.9.0 of a hand-written XML. */
static const char sample[] =
	"<superblock uuid=\"\" time=\"3\" transaction=\"5\" flags=\"0\" version=\"1\" data_block_size=\"128\" nr_data_blocks=\"1000\">\n"
	"  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"1\" creation_time=\"0\" snap_time=\"2\">\n"
	"  </device>\n"
	"  <device dev_id=\"3\" mapped_blocks=\"3\" transaction=\"1\" creation_time=\"0\" snap_time=\"2\">\n"
	"    <range_mapping origin_begin=\"0\" data_begin=\"10\" length=\"3\" time=\"1\"/>\n"
	"  </device>\n"
	"  <device dev_id=\"7\" mapped_blocks=\"5\" transaction=\"1\" creation_time=\"0\" snap_time=\"2\">\n"
	"    <range_mapping origin_begin=\"5\" data_begin=\"10\" length=\"2\" time=\"1\"/>\n"
	"    <range_mapping origin_begin=\"7\" data_begin=\"12\" length=\"2\" time=\"2\"/>\n"
	"    <single_mapping origin_block=\"20\" data_block=\"30\" time=\"2\"/>\n"
	"  </device>\n"
	"</superblock>\n";

static void test_writer_sample(void **state)
{
	struct xml_superblock sb = { .time = 3, .transaction = 5, .version = 1,
				     .data_block_size = 128, .nr_data_blocks = 1000 };
	struct xml_device d1 = { 1, 0, 1, 0, 2 }, d3 = { 3, 3, 1, 0, 2 }, d7 = { 7, 5, 1, 0, 2 };
	struct xml_writer *w = calloc(1, sizeof(*w));
	FILE *f = tmpfile();
	char *s;

	assert_non_null(f);
	xml_writer_init(w, fileno(f));
	xml_begin_superblock(w, &sb);
	xml_begin_device(w, &d1);
	xml_end_device(w);
	xml_begin_device(w, &d3);
	run(w, 0, 10, 1, 1); /* singles that coalesce into one range */
	run(w, 1, 11, 1, 1);
	run(w, 2, 12, 1, 1);
	xml_end_device(w);
	xml_begin_device(w, &d7);
	run(w, 5, 10, 2, 1);
	run(w, 7, 12, 1, 2); /* same blocks continue, time differs: new run */
	run(w, 8, 13, 1, 2);
	run(w, 20, 30, 1, 2);
	xml_end_device(w);
	xml_end_superblock(w);
	assert_int_equal(xml_writer_finish(w), 0);
	s = written(f);
	assert_string_equal(s, sample);
	free(s);
	free(w);
	fclose(f);
}

/* A run breaks when only the origin or only the data block continues. */
static void test_writer_breaks(void **state)
{
	struct xml_device d = { 0, 4, 0, 0, 0 };
	struct xml_writer *w = calloc(1, sizeof(*w));
	FILE *f = tmpfile();
	char *s;

	xml_writer_init(w, fileno(f));
	xml_begin_device(w, &d);
	run(w, 0, 0, 1, 0);
	run(w, 1, 5, 1, 0);  /* data jumps */
	run(w, 3, 6, 1, 0);  /* origin jumps */
	run(w, UINT64_MAX, 7, 1, 16777215);
	xml_end_device(w);
	assert_int_equal(xml_writer_finish(w), 0);
	s = written(f);
	assert_string_equal(s,
		"  <device dev_id=\"0\" mapped_blocks=\"4\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"
		"    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>\n"
		"    <single_mapping origin_block=\"1\" data_block=\"5\" time=\"0\"/>\n"
		"    <single_mapping origin_block=\"3\" data_block=\"6\" time=\"0\"/>\n"
		"    <single_mapping origin_block=\"18446744073709551615\" data_block=\"7\" time=\"16777215\"/>\n"
		"  </device>\n");
	free(s);
	free(w);
	fclose(f);
}

/* A closed descriptor: the error sticks and comes back from finish. */
static void test_writer_error(void **state)
{
	struct xml_superblock sb = { 0 };
	struct xml_writer *w = calloc(1, sizeof(*w));

	xml_writer_init(w, -1);
	xml_begin_superblock(w, &sb);
	xml_end_superblock(w);
	assert_int_not_equal(xml_writer_finish(w), 0);
	free(w);
}

/* ---- parser ---- */

/* Callbacks append a trace of what they saw. */
struct trace {
	char buf[4096];
};

static void add(struct xml_parser *p, const char *fmt, unsigned long long a,
		unsigned long long b, unsigned long long c, unsigned long long d)
{
	struct trace *t = xml_ctx(p);
	size_t n = strlen(t->buf);

	snprintf(t->buf + n, sizeof(t->buf) - n, fmt, a, b, c, d);
}

static int t_sb(struct xml_parser *p, const struct xml_superblock *sb)
{
	add(p, "S t%llu x%llu f%llu v%llu ", sb->time, sb->transaction, sb->flags, sb->version);
	add(p, "b%llu n%llu m%llu%.0llu;", sb->data_block_size, sb->nr_data_blocks,
	    sb->has_metadata_snap ? sb->metadata_snap : 999, 0);
	return 0;
}

static int t_sb_end(struct xml_parser *p)
{
	add(p, "/S;", 0, 0, 0, 0);
	return 0;
}

static int t_dev(struct xml_parser *p, const struct xml_device *d)
{
	add(p, "D%llu m%llu x%llu c%llu", d->dev_id, d->mapped_blocks, d->transaction,
	    d->creation_time);
	add(p, " s%llu;%.0llu%.0llu%.0llu", d->snap_time, 0, 0, 0);
	return 0;
}

static int t_dev_end(struct xml_parser *p)
{
	add(p, "/D;", 0, 0, 0, 0);
	return 0;
}

static int t_run(struct xml_parser *p, const struct xml_run *r)
{
	add(p, "R%llu,%llu,%llu,%llu;", r->origin, r->data, r->len, r->time);
	return 0;
}

static const struct xml_handlers tracer = {
	t_sb, t_sb_end, t_dev, t_dev_end, t_run,
};

/* Parse `doc`; returns 0 or -1, with the trace or the message in *out. */
static int parse_str(const char *doc, struct trace *t, char *msg, size_t len)
{
	FILE *f = fmemopen((void *)doc, strlen(doc), "r");
	int r;

	assert_non_null(f);
	memset(t, 0, sizeof(*t));
	msg[0] = '\0';
	r = xml_parse(f, "in.xml", &tracer, t, msg, len);
	fclose(f);
	return r;
}

static void test_parse_freedoms(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<!-- a comment -- with dashes -->\n"
		"<superblock nr_data_blocks='100' data_block_size=\"128\"\n"
		"    transaction = '7' time=\"2\" uuid=\"anything at all\" extra=\"ignored\">\n"
		"\t<device dev_id=\"4294967295\" snap_time=\"2\" creation_time=\"1\" transaction=\"18446744073709551615\" mapped_blocks=\"9\"/>\n"
		"  <device dev_id='3' mapped_blocks='0' transaction='0' creation_time='0' snap_time='0'>\r\n"
		"    <range_mapping time=\"16777217\" length=\"4\" data_begin=\"96\" origin_begin=\"18446744073709551612\"/>\n"
		"    <single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"></single_mapping>\n"
		"    <!-- inside -->\n"
		"  </device >\n"
		"</superblock>\n<!-- trailing -->\n";
	struct trace t;
	char msg[256];

	assert_int_equal(parse_str(doc, &t, msg, sizeof(msg)), 0);
	assert_string_equal(t.buf,
		"S t2 x7 f0 v1 b128 n100 m999;"
		"D4294967295 m9 x18446744073709551615 c1 s2;/D;"
		"D3 m0 x0 c0 s0;R18446744073709551612,96,4,16777217;R0,0,1,0;/D;/S;");
}

static void test_parse_self_closing_superblock(void **state)
{
	struct trace t;
	char msg[256];

	assert_int_equal(parse_str("<superblock uuid=\"\" time=\"0\" transaction=\"0\" flags=\"1\" "
				   "version=\"2\" data_block_size=\"128\" nr_data_blocks=\"0\" "
				   "metadata_snap=\"27\"/>", &t, msg, sizeof(msg)), 0);
	assert_string_equal(t.buf, "S t0 x0 f1 v2 b128 n0 m27;/S;");
}

struct bad_case {
	const char *doc;
	const char *msg; /* expected message, after "in.xml:" */
};

#define SB "<superblock uuid=\"\" time=\"0\" transaction=\"0\" data_block_size=\"128\" nr_data_blocks=\"10\">\n"
#define DEV "<device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">\n"

static const struct bad_case bad_cases[] = {
	{ "", "1: no <superblock> element" },
	{ "   \n\n", "3: no <superblock> element" },
	{ "hello", "1: unexpected text 'h' outside of a tag" },
	{ SB, "2: unexpected end of file (unclosed element)" },
	{ SB DEV "</superblock>", "3: </superblock> does not match <device>" },
	{ SB "</device>", "2: </device> does not match <superblock>" },
	{ SB "<bogus/>", "2: unknown element <bogus>" },
	{ SB "<single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"/>",
	  "2: <single_mapping> is not allowed here" },
	{ SB DEV "<device dev_id=\"2\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\"/>",
	  "3: <device> is not allowed here" },
	{ SB "</superblock>\n" SB, "3: <superblock> after the end of <superblock>" },
	{ "<superblock time=\"0\" transaction=\"0\" data_block_size=\"128\" nr_data_blocks=\"10\">",
	  "1: <superblock>: missing attribute 'uuid'" },
	{ "<superblock uuid=\"\" time=\"0\" transaction=\"0\" data_block_size=\"128\">",
	  "1: <superblock>: missing attribute 'nr_data_blocks'" },
	{ "<superblock uuid=\"\" time=\"-1\" transaction=\"0\" data_block_size=\"128\" nr_data_blocks=\"1\">",
	  "1: <superblock>: attribute 'time': '-1' is not an unsigned decimal number" },
	{ "<superblock uuid=\"\" time=\"4294967296\" transaction=\"0\" data_block_size=\"128\" nr_data_blocks=\"1\">",
	  "1: <superblock>: attribute 'time': 4294967296 is out of range (max 4294967295)" },
	{ "<superblock uuid=\"\" time=\"0\" transaction=\"18446744073709551616\" data_block_size=\"128\" nr_data_blocks=\"1\">",
	  "1: <superblock>: attribute 'transaction': 18446744073709551616 is out of range (max 18446744073709551615)" },
	{ "<superblock uuid=\"\" time=\"\" transaction=\"0\" data_block_size=\"128\" nr_data_blocks=\"1\">",
	  "1: <superblock>: attribute 'time' is empty" },
	{ "<superblock uuid=\"\" time=\" 1\" transaction=\"0\" data_block_size=\"128\" nr_data_blocks=\"1\">",
	  "1: <superblock>: attribute 'time': ' 1' is not an unsigned decimal number" },
	{ "<superblock uuid=\"\" uuid=\"\">", "1: <superblock>: duplicate attribute 'uuid'" },
	{ "<superblock uuid=\"a&amp;b\">", "1: attribute 'uuid': entity references are not supported" },
	{ "<superblock uuid=a>", "1: attribute 'uuid': value must be quoted" },
	{ "<superblock uuid=\"abc\"", "1: unexpected end of file inside <superblock>" },
	{ "<superblock uuid\n=\n\"abc", "3: attribute 'uuid': unterminated value" },
	{ "<superblock uuid=\"\"time=\"0\">", "1: <superblock>: expected whitespace before attribute" },
	{ "<superblock uuid>", "1: attribute 'uuid': expected '='" },
	{ "<!DOCTYPE superblock>", "1: DOCTYPE and CDATA are not supported" },
	{ "<!-- never closed ->", "1: unterminated comment" },
	{ "< superblock/>", "1: expected element name" },
	{ SB "</superblock x=\"1\">", "2: </superblock>: closing tags take no attributes" },
	{ SB DEV "<range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"0\" time=\"0\"/>",
	  "3: <range_mapping>: length must be at least 1" },
	{ SB DEV "<range_mapping origin_begin=\"18446744073709551615\" data_begin=\"0\" length=\"2\" time=\"0\"/>",
	  "3: mapping run passes the end of the 64-bit origin space" },
	{ SB DEV "<single_mapping origin_block=\"0\" data_block=\"0\"/>",
	  "3: <single_mapping>: missing attribute 'time'" },
	{ SB DEV "<single_mapping origin_block=\"0\" data_block=\"0\" time=\"0\"></device>",
	  "3: </device> does not match the open mapping element" },
	{ SB "<device dev_id=\"4294967296\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\"/>",
	  "2: <device>: attribute 'dev_id': 4294967296 is out of range (max 4294967295)" },
	{ SB DEV "text</device>", "3: unexpected text 't' outside of a tag" },
};

static void test_parse_errors(void **state)
{
	char msg[256], want[512];
	struct trace t;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		assert_int_equal(parse_str(bad_cases[i].doc, &t, msg, sizeof(msg)), -1);
		snprintf(want, sizeof(want), "in.xml:%s", bad_cases[i].msg);
		if (strcmp(msg, want)) {
			print_error("case %zu: got '%s', want '%s'\n", i, msg, want);
			fail();
		}
	}
}

/* A callback's failure message carries the line it happened on. */
static int refuse_dev(struct xml_parser *p, const struct xml_device *d)
{
	return xml_fail(p, "device %llu refused", (unsigned long long)d->dev_id);
}

static void test_parse_callback_failure(void **state)
{
	static const struct xml_handlers h = { .device_begin = refuse_dev };
	static const char doc[] = SB "\n" DEV "</device></superblock>";
	FILE *f = fmemopen((void *)doc, strlen(doc), "r");
	char msg[256];

	assert_int_equal(xml_parse(f, "x", &h, NULL, msg, sizeof(msg)), -1);
	assert_string_equal(msg, "x:3: device 1 refused");
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_sample),
		cmocka_unit_test(test_writer_breaks),
		cmocka_unit_test(test_writer_error),
		cmocka_unit_test(test_parse_freedoms),
		cmocka_unit_test(test_parse_self_closing_superblock),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_callback_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
