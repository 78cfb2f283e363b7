/*
 * Helpers shared by the commands: messages and argument parsers. Every error
 * a user can cause ends up as exactly one line on stderr, prefixed with the
 * command's name.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thinp.h"

static void vmsg(const char *fmt, va_list ap, const char *tail)
{
	fprintf(stderr, "thinp %s: ", current_command ? current_command->name : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", tail);
}

int err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap, "");
	va_end(ap);
	return EXIT_FAIL;
}

int usage_err(const char *fmt, ...)
{
	va_list ap;
	char tail[64];

	snprintf(tail, sizeof(tail), " (see 'thinp %s --help')", current_command->name);
	va_start(ap, fmt);
	vmsg(fmt, ap, tail);
	va_end(ap);
	return EXIT_USAGE;
}

const char *describe(struct invocation *inv, int e)
{
	if (inv->pool && thinp_pool_errmsg(inv->pool, inv->errmsg, sizeof(inv->errmsg)))
		return inv->errmsg;
	if (inv->meta && thinp_meta_errmsg(inv->meta, inv->errmsg, sizeof(inv->errmsg)))
		return inv->errmsg;
	if (inv->last_log[0])
		return inv->last_log;
	return thinp_strerror(e);
}

int fail(struct invocation *inv, int e, const char *what, ...)
{
	char head[512] = "";
	va_list ap;

	if (what) {
		va_start(ap, what);
		vsnprintf(head, sizeof(head), what, ap);
		va_end(ap);
	}
	return err("%s%s%s", head, what ? ": " : "", describe(inv, e));
}

const char *parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return "";
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return "";
		v = v * 10 + d;
	}
	*out = v;
	return NULL;
}

const char *parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "kmg";
	char num[32];
	size_t n = s ? strlen(s) : 0;
	unsigned shift = 0;
	const char *u;
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return "";
	memcpy(num, s, n + 1);
	u = strchr(units, num[n - 1] | 0x20);
	if (num[n - 1] >= 'A' && u) {
		shift = 10 * (unsigned)(u - units + 1);
		num[n - 1] = '\0';
	}
	if (parse_u64(num, &v) || v > (UINT64_MAX >> shift))
		return "";
	*bytes = v << shift;
	return NULL;
}

const char *parse_snap_block(const char *s, uint64_t *block)
{
	if (parse_u64(s, block) || *block == THINP_META_LIVE || *block == THINP_META_HELD_ROOT)
		return "";
	return NULL;
}

uint64_t snap_source(const struct invocation *inv)
{
	const struct arg *snap = opt(inv, "metadata-snap");

	if (!snap->given)
		return THINP_META_LIVE;
	return snap->str ? snap->num : THINP_META_HELD_ROOT;
}

int source_fail(struct invocation *inv, uint64_t source, int e)
{
	if (e == -ENODATA && source == THINP_META_HELD_ROOT)
		return err("no metadata snapshot is held");
	return fail(inv, e, NULL);
}

const char *parse_data_blocks(const char *s, uint64_t *blocks)
{
	if (parse_u64(s, blocks))
		return "";
	if (*blocks >= THINP_META_MAX_DATA_BLOCKS)
		return "the format addresses fewer than 2^40 data blocks";
	return NULL;
}

char *catalog_default_path(const char *meta_path)
{
	size_t n = strlen(meta_path);
	char *p = malloc(n + 5);

	if (p) {
		memcpy(p, meta_path, n);
		memcpy(p + n, ".vol", 5);
	}
	return p;
}

int open_catalog(struct invocation *inv, thinp_io **io, thinp_catalog **cat)
{
	const struct arg *given = opt(inv, "catalog");
	char *path = given->given ? NULL : catalog_default_path(inv->meta_path);
	const char *p = given->given ? given->str : path;
	int r;

	*io = NULL;
	*cat = NULL;
	if (!p)
		return err("out of memory");
	r = thinp_io_open_file(io, p, THINP_IO_CREATE);
	if (!r && (r = thinp_catalog_open(cat, *io, 0))) {
		thinp_io_close(*io);
		*io = NULL;
	}
	if (r)
		err("%s: %s", p, thinp_strerror(r));
	free(path);
	return r ? EXIT_FAIL : EXIT_OK;
}

int attach_entry(struct invocation *inv, thinp_catalog *cat, const thinp_catalog_entry *e)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	/* Entries left by devices deleted behind the catalog go at the same commit. */
	int r = thinp_catalog_reconcile(cat, inv->pool);

	if (r >= 0)
		r = thinp_catalog_attach(cat, inv->pool, e);
	if (!r)
		r = thinp_pool_get_status(inv->pool, &st);
	if (!r)
		r = thinp_catalog_commit(cat, st.transaction_id);
	if (r)
		return err("catalog: %s (device %" PRIu64 " was created without an entry)",
			   thinp_strerror(r), e->id);
	return EXIT_OK;
}

int stream_write_stdout(const void *buf, size_t len, void *ctx)
{
	const char *p = buf;

	(void)ctx;
	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int open_file_direct(thinp_io **io, const char *path)
{
	int e = thinp_io_open_file(io, path, THINP_IO_RDONLY | THINP_IO_DIRECT);

	if (e == -EINVAL)
		e = thinp_io_open_file(io, path, THINP_IO_RDONLY);
	return e;
}

/*
 * For a metadata snapshot the pool may be live in another process or the
 * kernel: the handle is opened on the snapshot alone
 * (thinp_meta_open_snapshot), which reads block 0 once for the held root
 * (not at all with --metadata-snap=BLOCK) and then only what the held root
 * reaches, which never changes while held.
 */
int open_meta_source(struct invocation *inv, uint64_t source, size_t cache_bytes)
{
	thinp_meta_options mo;
	int e;

	if (source == THINP_META_LIVE)
		return open_meta_live(inv, cache_bytes);
	/* Our own io replaces the framework's (which has no O_DIRECT). */
	thinp_io_close(inv->meta_io);
	inv->meta_io = NULL;
	e = open_file_direct(&inv->meta_io, inv->meta_path);
	if (e) {
		inv->meta_io = NULL;
		return fail(inv, e, "%s", inv->meta_path);
	}
	meta_options(inv, &mo);
	mo.flags |= THINP_META_RDONLY;
	if (cache_bytes)
		mo.cache_bytes = cache_bytes;
	e = thinp_meta_open_snapshot(&inv->meta, inv->meta_io,
				     source == THINP_META_HELD_ROOT ? 0 : source, &mo);
	if (e) {
		inv->meta = NULL;
		return source_fail(inv, source, e);
	}
	return EXIT_OK;
}

/* The held root block 0 names now (0: none). */
static int held_now(struct invocation *inv, uint64_t *held)
{
	thinp_meta_superblock sb;
	thinp_meta_options mo;
	thinp_meta *meta;
	thinp_io *io = NULL;
	int e = open_file_direct(&io, inv->meta_path);

	*held = 0;
	if (e)
		return fail(inv, e, "%s", inv->meta_path);
	meta_options(inv, &mo);
	e = thinp_meta_open_snapshot(&meta, io, 0, &mo);
	if (!e) {
		STRUCT_INIT(sb);
		e = thinp_meta_get_superblock(meta, THINP_META_HELD_ROOT, &sb);
		*held = sb.blocknr;
		thinp_meta_close(meta);
	}
	thinp_io_close(io);
	if (e == -ENODATA)
		e = 0;
	return e ? fail(inv, e, "%s", inv->meta_path) : EXIT_OK;
}

/* Whoever owns the pool may release the snapshot while we read it, and the
 * blocks we read may then be reused: the output is good only if the
 * snapshot held at the start (`before`) is still held after the walk. */
int snapshot_still_held(struct invocation *inv, uint64_t before)
{
	uint64_t held;
	int r = held_now(inv, &held);

	if (!r && held != before)
		r = err("the metadata snapshot was released during the %s (held root %"
			PRIu64 ", now %" PRIu64 "): the output is not valid", inv->cmd->name,
			before, held);
	return r;
}

void progress_start(struct progress *p, const struct invocation *inv, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->on = opt(inv, "progress")->given || isatty(STDERR_FILENO);
}

void progress_update(struct progress *p, uint64_t done, uint64_t total, bool final)
{
	time_t now = time(NULL);

	if (!p->on || (!final && now == p->last))
		return;
	p->last = now;
	if (total)
		fprintf(stderr, "\rthinp %s: %" PRIu64 " of %" PRIu64 " MiB%s", p->what, done >> 20,
			total >> 20, final ? "\n" : "");
	else
		fprintf(stderr, "\rthinp %s: %" PRIu64 " MiB%s", p->what, done >> 20,
			final ? "\n" : "");
}

/* 32 hex digits (either case) into @guid: 0, or -1. */
static int parse_guid(const char *s, uint8_t guid[16])
{
	for (int i = 0; i < 32; i++) {
		int c = tolower((unsigned char)s[i]);
		int v = isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;

		if (v < 0)
			return -1;
		guid[i / 2] = (uint8_t)(i % 2 ? guid[i / 2] | v : v << 4);
	}
	return s[32] ? -1 : 0;
}

int parse_origin(const char *arg, char *path, uint8_t guid[16])
{
	size_t len = strlen(arg);

	memset(guid, 0, 16);
	if (len > 33 && arg[len - 33] == '=' && !parse_guid(arg + len - 32, guid))
		len -= 33;
	if (!len || len >= THINP_CATALOG_ORIGIN_MAX)
		return usage_err("--origin: %s", len ? "path too long" : "no path");
	memcpy(path, arg, len);
	path[len] = '\0';
	return EXIT_OK;
}
