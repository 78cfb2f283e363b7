/*
 * nbdkit-thinp-plugin: serve a libthinp pool's thin devices over NBD.
 *
 *   nbdkit thinp meta=META data=DATA [catalog=META.vol] [export=ID]
 *                [commit_interval=MS] [control=SOCKET]
 *
 * One export per thin device the catalog describes (name = the decimal id),
 * sized by its entry. The pool is opened in .after_fork: nbdkit forks into
 * the background after .config_complete and .get_ready, which would kill the
 * pool's commit thread and the control thread if they were started earlier;
 * .get_ready only checks that the pool opens, so that errors still reach the
 * user's terminal.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

/* Every call used is thread-safe in libthinp. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define MAX_REQUEST (32u * 1024 * 1024)

struct server srv = {
	.commit_interval_ms = 1000,
	.admin_lock = PTHREAD_MUTEX_INITIALIZER,
};

struct handle {
	thinp_thin *thin;
	thinp_io *origin;  /* the entry's external origin, or NULL */
	uint64_t id;
	int rdonly;
	char desc[256];
	struct handle *prev, *next; /* on the open list */
};

/*
 * The connections' open handles. nbdkit does not call .close for a
 * connection still ending when it is told to quit (SIGTERM, or the end of a
 * --run command), and the pool refuses to close, and so to commit, while a
 * thin volume is open: .cleanup closes what is left first.
 */
static struct handle *open_list;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static void handle_link(struct handle *h)
{
	pthread_mutex_lock(&open_lock);
	h->prev = NULL;
	h->next = open_list;
	if (open_list)
		open_list->prev = h;
	open_list = h;
	pthread_mutex_unlock(&open_lock);
}

static void handle_free(struct handle *h)
{
	pthread_mutex_lock(&open_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		open_list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&open_lock);
	thinp_thin_close(h->thin);
	thinp_io_close(h->origin);
	free(h);
}

/* nbdkit wants errno-style errors; libthinp returns -errno. */
static int fail(int r, const char *what)
{
	char m[256];

	nbdkit_error("%s: %s", what,
		     thinp_pool_errmsg(srv.pool, m, sizeof(m)) ? m : thinp_strerror(r));
	nbdkit_set_error(-r);
	return -1;
}

static int thinp_config(const char *key, const char *value)
{
	if (!strcmp(key, "meta"))
		srv.meta_path = value;
	else if (!strcmp(key, "data"))
		srv.data_path = value;
	else if (!strcmp(key, "catalog"))
		srv.catalog_path = value;
	else if (!strcmp(key, "control"))
		srv.control_path = value;
	else if (!strcmp(key, "export"))
		srv.default_export = value;
	else if (!strcmp(key, "commit_interval"))
		return nbdkit_parse_uint32_t("commit_interval", value, &srv.commit_interval_ms);
	else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	return 0;
}

static int thinp_config_complete(void)
{
	if (!srv.meta_path || !srv.data_path) {
		nbdkit_error("meta=FILE and data=FILE are required");
		return -1;
	}
	if (!srv.catalog_path) {
		size_t n = strlen(srv.meta_path);

		srv.catalog_default = malloc(n + 5);
		if (!srv.catalog_default) {
			nbdkit_error("out of memory");
			return -1;
		}
		memcpy(srv.catalog_default, srv.meta_path, n);
		memcpy(srv.catalog_default + n, ".vol", 5);
		srv.catalog_path = srv.catalog_default;
	}
	return 0;
}

#define thinp_config_help                                                            \
	"meta=FILE            (required) the pool's metadata file or device\n"     \
	"data=FILE            (required) the pool's data file or device\n"         \
	"catalog=FILE         the catalog of volumes (default META.vol)\n"         \
	"export=ID            the default export (default: the lowest id)\n"       \
	"commit_interval=MS   commit every MS milliseconds (default 1000; 0: on flush and exit only)\n" \
	"control=SOCKET       listen for commands (create_snap ...) on a unix socket"

static void close_pool(void)
{
	int r;

	while (open_list)
		handle_free(open_list);
	thinp_catalog_close(srv.cat);
	/* The last commit: what no flush made durable is lost if it fails,
	 * so say so (the pool is gone: no thinp_pool_errmsg). */
	if ((r = thinp_pool_close(srv.pool)))
		nbdkit_error("closing the pool: %s", thinp_strerror(r));
	thinp_io_close(srv.cio);
	thinp_io_close(srv.data);
	thinp_io_close(srv.meta);
	srv.cat = NULL;
	srv.pool = NULL;
	srv.cio = srv.data = srv.meta = NULL;
}

/* A device opened read-write if it may be, else read-only. */
static int open_dev(thinp_io **io, const char *path, uint32_t flags, int *rdonly)
{
	int r = thinp_io_open_file(io, path, flags);

	if (r == -EACCES || r == -EROFS || r == -EPERM) {
		r = thinp_io_open_file(io, path, (flags & ~THINP_IO_CREATE) | THINP_IO_RDONLY);
		if (!r && rdonly)
			*rdonly = 1;
	}
	if (r)
		nbdkit_error("%s: %s", path, thinp_strerror(r));
	return r;
}

/* Open the pool and its catalog (a missing catalog file is an empty one).
 * @check_only: no commit thread, nothing is kept. */
static int open_pool(int check_only)
{
	thinp_pool_options po = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r;

	srv.pool_rdonly = 0;
	if (open_dev(&srv.meta, srv.meta_path, 0, &srv.pool_rdonly) ||
	    open_dev(&srv.data, srv.data_path, 0, &srv.pool_rdonly) ||
	    open_dev(&srv.cio, srv.catalog_path, THINP_IO_CREATE, NULL))
		goto fail;
	po.commit_interval_ms = check_only ? 0 : srv.commit_interval_ms;
	if (check_only || srv.pool_rdonly)
		po.features |= THINP_POOL_READ_ONLY;
	/* Two servers on one pool would corrupt it: a pool open for writing
	 * owns its metadata device (thinp_io_lock) and a second one gets
	 * -EBUSY. The check open is read-only and takes no lock, so it asks
	 * for the same lock itself: a refusal in .after_fork does not stop
	 * nbdkit (--run would still run its command). */
	r = check_only && !srv.pool_rdonly ? thinp_io_lock(srv.meta, THINP_IO_LOCK_EXCLUSIVE) : 0;
	if (!r)
		r = thinp_pool_open(&srv.pool, srv.meta, srv.data, &po);
	if (r) {
		nbdkit_error("%s: %s", srv.meta_path, r == -EBUSY
			     ? "the pool is in use by another process (its metadata is locked)"
			     : thinp_strerror(r));
		goto fail;
	}
	r = thinp_catalog_open(&srv.cat, srv.cio, 0);
	if (r) {
		nbdkit_error("%s: %s", srv.catalog_path, thinp_strerror(r));
		goto fail;
	}
	/* Entries of devices deleted behind the catalog are not served. */
	r = thinp_catalog_reconcile(srv.cat, srv.pool);
	if (r < 0 || (r = thinp_pool_get_status(srv.pool, &st))) {
		nbdkit_error("%s: %s", srv.meta_path, thinp_strerror(r));
		goto fail;
	}
	srv.block_size = st.data_block_size;
	if (check_only)
		close_pool();
	return 0;
fail:
	close_pool();
	return -1;
}

static int thinp_get_ready(void)
{
	return open_pool(1);
}

static int thinp_after_fork(void)
{
	if (open_pool(0))
		return -1;
	if (srv.control_path && control_start()) {
		close_pool();
		return -1;
	}
	return 0;
}

static void thinp_cleanup(void)
{
	control_stop();
	close_pool();
	free(srv.catalog_default);
	srv.catalog_default = NULL;
}

/* The entry of a device that may be served: one with a size, none of the
 * library's own (THINP_CATALOG_INTERNAL: partial receives, anchors, which
 * have a size of 0 but are told by their flag, migration and replication
 * devices), whose device exists. */
static int servable(uint64_t id, thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	if (thinp_catalog_get(srv.cat, id, e) || !e->size ||
	    (e->flags & THINP_CATALOG_INTERNAL))
		return 0;
	return thinp_pool_get_thin_status(srv.pool, id, &st) == 0 &&
	       st.creation_time == e->birth_time && st.transaction_id == e->birth_transaction;
}

static int thinp_list_exports(int readonly, int is_tls, struct nbdkit_exports *exports)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint64_t next = 0;
	int r = e ? 0 : -1;

	while (!r) {
		char name[24];

		e->struct_size = sizeof(*e);
		if (thinp_catalog_next(srv.cat, next, e))
			break;
		next = e->id + 1;
		if (!servable(e->id, e))
			continue;
		snprintf(name, sizeof(name), "%" PRIu64, e->id);
		r = nbdkit_add_export(exports, name, NULL);
	}
	free(e);
	return r;
}

static const char *thinp_default_export(int readonly, int is_tls)
{
	thinp_catalog_entry *e;
	uint64_t next = 0;
	const char *name = NULL;
	char buf[24];

	if (srv.default_export)
		return srv.default_export;
	e = malloc(sizeof(*e));
	while (e && !name) {
		e->struct_size = sizeof(*e);
		if (thinp_catalog_next(srv.cat, next, e))
			break;
		next = e->id + 1;
		if (servable(e->id, e)) {
			snprintf(buf, sizeof(buf), "%" PRIu64, e->id);
			name = nbdkit_strdup_intern(buf);
		}
	}
	free(e);
	return name;
}

static int parse_id(const char *s, uint64_t *id)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*id = strtoull(s, &end, 10);
	return errno || *end || (s[0] == '0' && s[1]) ? -1 : 0;
}

static void *open_handle(struct handle *h, int readonly, thinp_catalog_entry *e)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	int r;

	if (!servable(h->id, e)) {
		nbdkit_error("thin device %" PRIu64 " is not served: %s", h->id,
			     e->flags & THINP_CATALOG_ANCHOR    ? "an anchor (kept by thinp receive)"
			     : e->flags & THINP_CATALOG_PARTIAL ? "a receive into it is not finished"
			     : e->flags & THINP_CATALOG_MIGRATING ? "a migration's snapshot or copy"
			     : e->flags & THINP_CATALOG_MIGRATED ? "migrated to another pool"
			     : e->flags & THINP_CATALOG_REPLICATION ? "a replication snapshot"
								: "no such device with a catalog entry");
		return NULL;
	}
	h->rdonly = readonly || srv.pool_rdonly || (e->flags & THINP_CATALOG_READ_ONLY);
	if (e->origin[0]) {
		r = thinp_io_open_file(&h->origin, e->origin, THINP_IO_RDONLY);
		if (r) {
			nbdkit_error("origin %s: %s", e->origin, thinp_strerror(r));
			return NULL;
		}
	}
	to.size = e->size;
	to.origin = h->origin;
	to.flags = h->rdonly ? THINP_THIN_RDONLY : 0;
	r = thinp_thin_open(&h->thin, srv.pool, h->id, &to);
	if (r) {
		fail(r, "open");
		thinp_io_close(h->origin);
		return NULL;
	}
	snprintf(h->desc, sizeof(h->desc), "thin device %" PRIu64 "%s%s%.200s", h->id,
		 h->rdonly ? ", read-only" : "", e->origin[0] ? ", external origin " : "",
		 e->origin);
	handle_link(h);
	return h;
}

static void *thinp_open(int readonly)
{
	struct handle *h = calloc(1, sizeof(*h));
	thinp_catalog_entry *e = malloc(sizeof(*e));
	void *ret = NULL;

	if (!h || !e)
		nbdkit_error("out of memory");
	else if (parse_id(nbdkit_export_name(), &h->id))
		nbdkit_error("export '%s' is not a thin device id", nbdkit_export_name());
	else
		ret = open_handle(h, readonly, e);
	free(e);
	if (!ret)
		free(h);
	return ret;
}

static void thinp_close(void *handle)
{
	handle_free(handle);
}

static int64_t thinp_get_size(void *handle)
{
	struct handle *h = handle;

	return (int64_t)thinp_thin_size(h->thin);
}

static const char *thinp_export_description(void *handle)
{
	struct handle *h = handle;

	return h->desc;
}

static int thinp_block_size(void *handle, uint32_t *minimum, uint32_t *preferred,
			    uint32_t *maximum)
{
	/* Byte-granular devices; 4 KiB avoids read-modify-write in the page
	 * cache below; a larger request is split by the client. */
	*minimum = 1;
	*preferred = 4096;
	*maximum = MAX_REQUEST;
	return 0;
}

static int thinp_can_write(void *handle)
{
	struct handle *h = handle;

	return !h->rdonly;
}

static int thinp_can_flush(void *handle)
{
	return 1;
}

static int thinp_is_rotational(void *handle)
{
	return 0;
}

static int thinp_can_fua(void *handle)
{
	return NBDKIT_FUA_NATIVE;
}

/* One pool in this process serves every connection: a flush on one commits
 * writes completed on all of them. */
static int thinp_can_multi_conn(void *handle)
{
	return 1;
}

static int thinp_can_extents(void *handle)
{
	return 1;
}

static int thinp_can_fast_zero(void *handle)
{
	return 1;
}

static int thinp_can_cache(void *handle)
{
	return NBDKIT_CACHE_NONE;
}

static int fua(struct handle *h, uint32_t flags)
{
	int r = (flags & NBDKIT_FLAG_FUA) ? thinp_thin_flush(h->thin) : 0;

	return r ? fail(r, "flush") : 0;
}

static int thinp_pread(void *handle, void *buf, uint32_t count, uint64_t offset,
		       uint32_t flags)
{
	struct handle *h = handle;
	int r = thinp_thin_read(h->thin, buf, count, offset);

	return r ? fail(r, "read") : 0;
}

static int thinp_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset,
			uint32_t flags)
{
	struct handle *h = handle;
	int r = thinp_thin_write(h->thin, buf, count, offset);

	return r ? fail(r, "write") : fua(h, flags);
}

static int thinp_flush(void *handle, uint32_t flags)
{
	struct handle *h = handle;
	int r = thinp_thin_flush(h->thin);

	return r ? fail(r, "flush") : 0;
}

/* Trim is advisory: a pool that ignores discards trims nothing. */
static int thinp_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct handle *h = handle;
	int r = thinp_thin_discard(h->thin, count, offset);

	if (r == -EOPNOTSUPP)
		r = 0;
	return r ? fail(r, "trim") : fua(h, flags);
}

/* 1 if virtual block vb is mapped, 0 if not, or -errno. */
static int block_mapped(struct handle *h, uint64_t vb)
{
	thinp_mapping m = THINP_MAPPING_INIT;
	int r = thinp_pool_thin_map(srv.pool, h->id, vb, &m);

	return r == -ENODATA ? 0 : r ? r : 1;
}

/* A partial block at an end of a zero request: an unprovisioned one already
 * reads as zeroes without an origin (and new blocks are zeroed when
 * provisioned, the pool having block zeroing on), so it is left alone;
 * otherwise zeroes are written. */
static int zero_edge(struct handle *h, uint64_t off, uint64_t len)
{
	int r = h->origin ? 1 : block_mapped(h, off / srv.block_size);

	if (r <= 0)
		return r;
	return thinp_thin_write_zeroes(h->thin, len, off);
}

/*
 * Fast zero (NBD_CMD_FLAG_FAST_ZERO) is refused up front (ENOTSUP) when
 * zeroing would need data writes: an external origin (unmapping would
 * expose it, so blocks must be provisioned) or a provisioned partial block
 * at an end. Otherwise whole blocks are unmapped and unprovisioned partial
 * ones left alone: metadata work only.
 */
static int zero_is_fast(struct handle *h, uint64_t count, uint64_t offset)
{
	uint64_t bs = srv.block_size, end = offset + count;
	int r;

	if (h->origin)
		return 0;
	if (offset % bs && (r = block_mapped(h, offset / bs)) != 0)
		return r < 0 ? r : 0;
	if (end % bs && (offset % bs == 0 || end / bs != offset / bs) &&
	    (r = block_mapped(h, end / bs)) != 0)
		return r < 0 ? r : 0;
	return 1;
}

static int zero_range(struct handle *h, uint64_t off, uint64_t len, int may_trim)
{
	uint64_t bs = srv.block_size, end = off + len;
	uint64_t first = (off + bs - 1) / bs * bs, last = end / bs * bs;
	int r;

	if (first >= last) /* inside one block, or across one boundary */
		return first > off && first < end
			       ? (zero_edge(h, off, first - off) ?: zero_edge(h, first, end - first))
			       : zero_edge(h, off, len);
	if (off < first && (r = zero_edge(h, off, first - off)))
		return r;
	if (last < end && (r = zero_edge(h, last, end - last)))
		return r;
	/* Unmapping whole blocks is the cheapest way to zeroes; with an origin
	 * it would expose the origin's data instead. */
	if (may_trim && !h->origin) {
		r = thinp_thin_discard(h->thin, last - first, first);
		if (r && r != -EOPNOTSUPP)
			return r;
	}
	return thinp_thin_write_zeroes(h->thin, last - first, first);
}

static int thinp_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct handle *h = handle;
	int r;

	if (flags & NBDKIT_FLAG_FAST_ZERO) {
		r = zero_is_fast(h, count, offset);
		if (r <= 0) {
			if (r < 0)
				return fail(r, "zero");
			nbdkit_set_error(ENOTSUP);
			return -1;
		}
	}
	r = zero_range(h, offset, count, flags & (NBDKIT_FLAG_MAY_TRIM | NBDKIT_FLAG_FAST_ZERO));
	return r ? fail(r, "zero") : fua(h, flags);
}

/*
 * base:allocation from the mappings: unmapped blocks are holes that read
 * as zeroes, except with an external origin, where they read the origin
 * (reported as data).
 */
static int thinp_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
			 struct nbdkit_extents *extents)
{
	struct handle *h = handle;
	uint64_t bs = srv.block_size, size = thinp_thin_size(h->thin);
	uint64_t pos = offset, end = offset + count;

	if (h->origin)
		return nbdkit_add_extent(extents, offset, count, 0);
	while (pos < end) {
		uint64_t vb = pos / bs, mvb, stop;
		thinp_mapping m = THINP_MAPPING_INIT;
		int r = thinp_pool_thin_next_map(srv.pool, h->id, vb, &mvb, &m);
		uint32_t type = 0;

		if (r == -ENODATA)
			mvb = UINT64_MAX;
		else if (r)
			return fail(r, "extents");
		if (mvb > vb) {
			/* A hole up to the next mapping, or to the end. */
			stop = mvb >= size / bs + 1 ? size : mvb * bs;
			type = NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
		} else {
			stop = (vb + 1) * bs;
		}
		if (stop > size)
			stop = size;
		if (nbdkit_add_extent(extents, pos, stop - pos, type))
			return -1;
		pos = stop;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	return 0;
}

static void thinp_dump_plugin(void)
{
	printf("thinp_version=%s\n", thinp_version());
}

static struct nbdkit_plugin plugin = {
	.name = "thinp",
	.longname = "libthinp thin-provisioned pool",
	.version = THINP_VERSION_STRING,
	.description = "Serve the thin devices of a dm-thin format pool (libthinp)",
	.config = thinp_config,
	.config_complete = thinp_config_complete,
	.config_help = thinp_config_help,
	.magic_config_key = NULL,
	.get_ready = thinp_get_ready,
	.after_fork = thinp_after_fork,
	.cleanup = thinp_cleanup,
	.dump_plugin = thinp_dump_plugin,
	.list_exports = thinp_list_exports,
	.default_export = thinp_default_export,
	.open = thinp_open,
	.close = thinp_close,
	.get_size = thinp_get_size,
	.export_description = thinp_export_description,
	.block_size = thinp_block_size,
	.can_write = thinp_can_write,
	.can_flush = thinp_can_flush,
	.is_rotational = thinp_is_rotational,
	.can_trim = thinp_can_write,
	.can_zero = thinp_can_write,
	.can_fast_zero = thinp_can_fast_zero,
	.can_fua = thinp_can_fua,
	.can_multi_conn = thinp_can_multi_conn,
	.can_extents = thinp_can_extents,
	.can_cache = thinp_can_cache,
	.pread = thinp_pread,
	.pwrite = thinp_pwrite,
	.flush = thinp_flush,
	.trim = thinp_trim,
	.zero = thinp_zero,
	.extents = thinp_extents,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
