/*
 * XML parser for exactly the thin_restore 0.9.0 grammar (FORMAT.md 12.1).
 *
 * Not a general XML parser: one pass over a stream, no DOM, no entities, no
 * DOCTYPE. What it accepts: an optional XML declaration, comments and
 * processing instructions between elements; the elements superblock, device,
 * single_mapping and range_mapping, properly nested; attributes in any order,
 * quoted with ' or ", separated by any whitespace; self-closing or explicitly
 * closed elements. Unknown attributes are ignored, as thin_restore 0.9.0
 * ignores them; unknown elements, text between elements, '&' and anything
 * malformed stop the parse with "FILE:LINE: message".
 *
 * Numbers are plain unsigned decimal, checked against the width of the field
 * they fill, so an out-of-range value is an error rather than a silent wrap.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

#define MAX_NAME 32
#define MAX_VALUE 256
#define MAX_ATTRS 16

struct attr {
	char name[MAX_NAME];
	char value[MAX_VALUE];
	bool used; /* consumed by the element's reader */
};

struct tag {
	char name[MAX_NAME];
	bool closing;      /* </name> */
	bool self_closing; /* <name .../> */
	unsigned nattrs;
	struct attr attrs[MAX_ATTRS];
};

/* Where we are in the document. */
enum level { L_TOP, L_SUPERBLOCK, L_DEVICE, L_MAPPING, L_DONE };

struct xml_parser {
	FILE *in;
	const char *name;
	unsigned long line;
	const struct xml_handlers *h;
	void *ctx;
	char *err;
	size_t errlen;
	bool failed;
	enum level level;
	struct tag tag;
};

void *xml_ctx(struct xml_parser *p)
{
	return p->ctx;
}

int xml_fail(struct xml_parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return -1; /* keep the first, most specific message */
	p->failed = true;
	n = snprintf(p->err, p->errlen, "%s:%lu: ", p->name, p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- characters ---- */

static int next(struct xml_parser *p)
{
	int c = getc_unlocked(p->in);

	if (c == '\n')
		p->line++;
	return c;
}

static int peek(struct xml_parser *p)
{
	int c = getc_unlocked(p->in);

	if (c != EOF)
		ungetc(c, p->in);
	return c;
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_name_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool is_name_char(int c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static void skip_space(struct xml_parser *p)
{
	while (is_space(peek(p)))
		next(p);
}

/* Skip up to and including `end` (e.g. "-->"). */
static int skip_until(struct xml_parser *p, const char *end, const char *what)
{
	size_t len = strlen(end), matched = 0;
	int c;

	while ((c = next(p)) != EOF) {
		if (c == end[matched]) {
			if (++matched == len)
				return 0;
		} else {
			matched = c == end[0] ? 1 : 0;
		}
	}
	return xml_fail(p, "unterminated %s", what);
}

/* ---- tags ---- */

static int read_name(struct xml_parser *p, char *out, const char *what)
{
	size_t n = 0;

	if (!is_name_start(peek(p)))
		return xml_fail(p, "expected %s name", what);
	while (is_name_char(peek(p))) {
		if (n + 1 >= MAX_NAME)
			return xml_fail(p, "%s name too long", what);
		out[n++] = (char)next(p);
	}
	out[n] = '\0';
	return 0;
}

static struct attr *find_attr(struct tag *t, const char *name)
{
	for (unsigned i = 0; i < t->nattrs; i++)
		if (!strcmp(t->attrs[i].name, name))
			return &t->attrs[i];
	return NULL;
}

static int read_value(struct xml_parser *p, struct attr *a)
{
	int quote = next(p), c;
	size_t n = 0;

	if (quote != '"' && quote != '\'')
		return xml_fail(p, "attribute '%s': value must be quoted", a->name);
	while ((c = next(p)) != quote) {
		if (c == EOF)
			return xml_fail(p, "attribute '%s': unterminated value", a->name);
		if (c == '&')
			return xml_fail(p, "attribute '%s': entity references are not supported", a->name);
		if (c == '<')
			return xml_fail(p, "attribute '%s': '<' in value", a->name);
		if (n + 1 >= MAX_VALUE)
			return xml_fail(p, "attribute '%s': value too long", a->name);
		a->value[n++] = (char)c;
	}
	a->value[n] = '\0';
	return 0;
}

static int read_attr(struct xml_parser *p, struct tag *t)
{
	struct attr *a;

	if (t->nattrs == MAX_ATTRS)
		return xml_fail(p, "<%s>: too many attributes", t->name);
	a = &t->attrs[t->nattrs];
	a->used = false;
	if (read_name(p, a->name, "attribute"))
		return -1;
	if (find_attr(t, a->name))
		return xml_fail(p, "<%s>: duplicate attribute '%s'", t->name, a->name);
	skip_space(p);
	if (next(p) != '=')
		return xml_fail(p, "attribute '%s': expected '='", a->name);
	skip_space(p);
	if (read_value(p, a))
		return -1;
	t->nattrs++;
	return 0;
}

/* Called after '<' (and '/' for a closing tag) has been consumed. */
static int read_tag(struct xml_parser *p, struct tag *t)
{
	int c;

	t->nattrs = 0;
	t->self_closing = false;
	if (read_name(p, t->name, "element"))
		return -1;
	for (;;) {
		bool spaced = is_space(peek(p));

		skip_space(p);
		c = peek(p);
		if (c == '>' || c == '/')
			break;
		if (c == EOF)
			return xml_fail(p, "unexpected end of file inside <%s>", t->name);
		if (t->closing)
			return xml_fail(p, "</%s>: closing tags take no attributes", t->name);
		if (!spaced)
			return xml_fail(p, "<%s>: expected whitespace before attribute", t->name);
		if (read_attr(p, t))
			return -1;
	}
	if (next(p) == '/') {
		if (t->closing)
			return xml_fail(p, "</%s>: unexpected '/'", t->name);
		t->self_closing = true;
		if (next(p) != '>')
			return xml_fail(p, "<%s>: expected '>' after '/'", t->name);
	}
	return 0;
}

/* ---- attribute values ---- */

static int get_num(struct xml_parser *p, struct tag *t, const char *name,
		   uint64_t max, uint64_t *out)
{
	struct attr *a = find_attr(t, name);
	uint64_t v = 0;
	const char *s;

	if (!a)
		return xml_fail(p, "<%s>: missing attribute '%s'", t->name, name);
	a->used = true;
	s = a->value;
	if (!*s)
		return xml_fail(p, "<%s>: attribute '%s' is empty", t->name, name);
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9)
			return xml_fail(p, "<%s>: attribute '%s': '%s' is not an unsigned decimal number",
					t->name, name, a->value);
		if (v > (max - d) / 10)
			return xml_fail(p, "<%s>: attribute '%s': %s is out of range (max %llu)",
					t->name, name, a->value, (unsigned long long)max);
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int get_u32(struct xml_parser *p, struct tag *t, const char *name, uint32_t *out)
{
	uint64_t v;

	if (get_num(p, t, name, UINT32_MAX, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int get_u64(struct xml_parser *p, struct tag *t, const char *name, uint64_t *out)
{
	return get_num(p, t, name, UINT64_MAX, out);
}

/* An optional attribute keeps *out when absent. */
static int get_opt_u32(struct xml_parser *p, struct tag *t, const char *name, uint32_t *out)
{
	return find_attr(t, name) ? get_u32(p, t, name, out) : 0;
}

/* ---- elements ---- */

static int on_superblock(struct xml_parser *p, struct tag *t)
{
	struct xml_superblock sb = { .version = 1 }; /* 0.9.0's default */

	if (!find_attr(t, "uuid"))
		return xml_fail(p, "<superblock>: missing attribute 'uuid'");
	if (get_u32(p, t, "time", &sb.time) ||
	    get_u64(p, t, "transaction", &sb.transaction) ||
	    get_opt_u32(p, t, "flags", &sb.flags) ||
	    get_opt_u32(p, t, "version", &sb.version) ||
	    get_u32(p, t, "data_block_size", &sb.data_block_size) ||
	    get_u64(p, t, "nr_data_blocks", &sb.nr_data_blocks))
		return -1;
	if (find_attr(t, "metadata_snap")) {
		sb.has_metadata_snap = true;
		if (get_u64(p, t, "metadata_snap", &sb.metadata_snap))
			return -1;
	}
	return p->h->superblock_begin ? p->h->superblock_begin(p, &sb) : 0;
}

static int on_device(struct xml_parser *p, struct tag *t)
{
	struct xml_device d = { 0 };

	if (get_num(p, t, "dev_id", UINT32_MAX, &d.dev_id) ||
	    get_u64(p, t, "mapped_blocks", &d.mapped_blocks) ||
	    get_u64(p, t, "transaction", &d.transaction) ||
	    get_u32(p, t, "creation_time", &d.creation_time) ||
	    get_u32(p, t, "snap_time", &d.snap_time))
		return -1;
	return p->h->device_begin ? p->h->device_begin(p, &d) : 0;
}

static int emit_run(struct xml_parser *p, const struct xml_run *r)
{
	if (r->len - 1 > UINT64_MAX - r->origin)
		return xml_fail(p, "mapping run passes the end of the 64-bit origin space");
	if (r->len - 1 > UINT64_MAX - r->data)
		return xml_fail(p, "mapping run passes the end of the 64-bit data space");
	return p->h->run ? p->h->run(p, r) : 0;
}

static int on_single(struct xml_parser *p, struct tag *t)
{
	struct xml_run r = { .len = 1 };

	if (get_u64(p, t, "origin_block", &r.origin) ||
	    get_u64(p, t, "data_block", &r.data) ||
	    get_u32(p, t, "time", &r.time))
		return -1;
	return emit_run(p, &r);
}

static int on_range(struct xml_parser *p, struct tag *t)
{
	struct xml_run r;

	if (get_u64(p, t, "origin_begin", &r.origin) ||
	    get_u64(p, t, "data_begin", &r.data) ||
	    get_u64(p, t, "length", &r.len) ||
	    get_u32(p, t, "time", &r.time))
		return -1;
	if (r.len == 0)
		return xml_fail(p, "<range_mapping>: length must be at least 1");
	return emit_run(p, &r);
}

/* Which element may open at which level, and where it leads. */
static int open_element(struct xml_parser *p, struct tag *t)
{
	const char *n = t->name;
	int r;

	if (!strcmp(n, "superblock") && p->level == L_TOP) {
		r = on_superblock(p, t);
		p->level = t->self_closing ? L_DONE : L_SUPERBLOCK;
		if (!r && t->self_closing && p->h->superblock_end)
			r = p->h->superblock_end(p);
		return r;
	}
	if (!strcmp(n, "device") && p->level == L_SUPERBLOCK) {
		r = on_device(p, t);
		if (!r && t->self_closing && p->h->device_end)
			r = p->h->device_end(p);
		p->level = t->self_closing ? L_SUPERBLOCK : L_DEVICE;
		return r;
	}
	if ((!strcmp(n, "single_mapping") || !strcmp(n, "range_mapping")) &&
	    p->level == L_DEVICE) {
		r = n[0] == 's' ? on_single(p, t) : on_range(p, t);
		p->level = t->self_closing ? L_DEVICE : L_MAPPING;
		return r;
	}
	if (strcmp(n, "superblock") && strcmp(n, "device") &&
	    strcmp(n, "single_mapping") && strcmp(n, "range_mapping"))
		return xml_fail(p, "unknown element <%s>", n);
	if (p->level == L_DONE)
		return xml_fail(p, "<%s> after the end of <superblock>", n);
	return xml_fail(p, "<%s> is not allowed here", n);
}

static int close_element(struct xml_parser *p, struct tag *t)
{
	static const char *const open_name[] = {
		[L_SUPERBLOCK] = "superblock", [L_DEVICE] = "device",
	};
	const char *n = t->name;

	if (p->level == L_MAPPING) {
		if (strcmp(n, "single_mapping") && strcmp(n, "range_mapping"))
			return xml_fail(p, "</%s> does not match the open mapping element", n);
		p->level = L_DEVICE;
		return 0;
	}
	if (p->level != L_SUPERBLOCK && p->level != L_DEVICE)
		return xml_fail(p, "unexpected </%s>", n);
	if (strcmp(n, open_name[p->level]))
		return xml_fail(p, "</%s> does not match <%s>", n, open_name[p->level]);
	if (p->level == L_DEVICE) {
		p->level = L_SUPERBLOCK;
		return p->h->device_end ? p->h->device_end(p) : 0;
	}
	p->level = L_DONE;
	return p->h->superblock_end ? p->h->superblock_end(p) : 0;
}

/* After '<': a comment, a processing instruction, or a tag. */
static int read_markup(struct xml_parser *p)
{
	struct tag *t = &p->tag;
	int c = peek(p);

	if (c == '?') {
		next(p);
		return skip_until(p, "?>", "processing instruction");
	}
	if (c == '!') {
		next(p);
		if (next(p) != '-' || next(p) != '-')
			return xml_fail(p, "DOCTYPE and CDATA are not supported");
		return skip_until(p, "-->", "comment");
	}
	t->closing = c == '/';
	if (t->closing)
		next(p);
	if (read_tag(p, t))
		return -1;
	return t->closing ? close_element(p, t) : open_element(p, t);
}

static int parse_document(struct xml_parser *p)
{
	int c;

	for (;;) {
		skip_space(p);
		c = next(p);
		if (c == EOF)
			break;
		if (c != '<')
			return xml_fail(p, "unexpected text '%c' outside of a tag", c);
		if (read_markup(p))
			return -1;
	}
	if (ferror(p->in))
		return xml_fail(p, "read error: %s", strerror(errno));
	if (p->level == L_TOP)
		return xml_fail(p, "no <superblock> element");
	if (p->level != L_DONE)
		return xml_fail(p, "unexpected end of file (unclosed element)");
	return 0;
}

int xml_parse(FILE *in, const char *name, const struct xml_handlers *h,
	      void *ctx, char *err, size_t errlen)
{
	struct xml_parser *p = calloc(1, sizeof(*p));
	int r;

	if (!p) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	p->in = in;
	p->name = name;
	p->line = 1;
	p->h = h;
	p->ctx = ctx;
	p->err = err;
	p->errlen = errlen;
	p->level = L_TOP;
	r = parse_document(p);
	if (r && !p->failed)
		xml_fail(p, "stopped by the reader");
	free(p);
	return r ? -1 : 0;
}
