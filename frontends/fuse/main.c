/*
 * thinp-fuse -m META -d DATA [-f] [-o OPTIONS] MOUNTPOINT
 *
 * Opens the pool on the two files, mounts the directory of its volumes and
 * serves it with libfuse's multi-threaded loop until unmounted (or SIGTERM),
 * then closes the pool, which commits. See thinp-fuse.1.
 *
 * The pool is opened twice: once before mounting, so that a bad pool is
 * reported on the terminal and nothing is mounted, and again after
 * fuse_daemonize(), because the fork there would lose the pool's commit
 * thread.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "thinp_fuse.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define DEFAULT_THREADS 8

struct cli {
	char *meta, *data, *catalog, *size;
	unsigned threads, commit_interval;
	int page_cache, mlock, help, version;
};

#define OPT(t, f, v) { t, offsetof(struct cli, f), v }
static const struct fuse_opt cli_opts[] = {
	OPT("-m %s", meta, 0), OPT("--metadata=%s", meta, 0),
	OPT("-d %s", data, 0), OPT("--data=%s", data, 0),
	OPT("-c %s", catalog, 0), OPT("--catalog=%s", catalog, 0),
	OPT("size=%s", size, 0), OPT("threads=%u", threads, 0),
	OPT("commit_interval=%u", commit_interval, 0),
	OPT("page_cache", page_cache, 1), OPT("mlock", mlock, 1),
	OPT("-h", help, 1), OPT("--help", help, 1),
	OPT("-V", version, 1), OPT("--version", version, 1),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("usage: %s -m META -d DATA [-c CATALOG] [-f] [-o OPTION[,...]] MOUNTPOINT\n"
	       "\n"
	       "Serves the thin volumes of the pool on the metadata file META and the\n"
	       "data file DATA as files MOUNTPOINT/ID; MOUNTPOINT/" CONTROL_NAME " takes pool\n"
	       "messages (create_thin, create_snap, delete, ...), MOUNTPOINT/" STATUS_NAME
	       " is the\n"
	       "pool's status line. Volume sizes come from the pool's volume table,\n"
	       "CATALOG (default META.vol), created if missing.\n"
	       "\n"
	       "thinp-fuse options:\n"
	       "    -o size=SIZE           size of volumes the volume table does not know\n"
	       "                           (bytes, or with k/m/g/t; default: not served)\n"
	       "    -o page_cache          volume files use the page cache (default: direct_io)\n"
	       "    -o threads=N           FUSE worker threads (default %d)\n"
	       "    -o commit_interval=MS  commit every MS ms (default 0: on fsync and unmount)\n"
	       "    -o mlock               lock the daemon's memory (mlockall)\n"
	       "    -f                     stay in the foreground\n"
	       "\n"
	       "FUSE options:\n",
	       prog, DEFAULT_THREADS);
}

static void log_stderr(int level, const char *msg, void *ctx)
{
	if (level <= THINP_LOG_WARNING)
		fprintf(stderr, "thinp-fuse: %s\n", msg);
}

static int open_files(struct tfs *fs)
{
	int r = thinp_io_open_file(&fs->meta, fs->meta_path, 0);

	if (r) {
		fprintf(stderr, "thinp-fuse: %s: %s\n", fs->meta_path, thinp_strerror(r));
		return r;
	}
	r = thinp_io_open_file(&fs->data, fs->data_path, 0);
	if (r)
		fprintf(stderr, "thinp-fuse: %s: %s\n", fs->data_path, thinp_strerror(r));
	return r;
}

static int open_pool(struct tfs *fs, uint32_t commit_interval)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r;

	o.commit_interval_ms = commit_interval;
	o.log_fn = log_stderr;
	r = thinp_pool_open(&fs->pool, fs->meta, fs->data, &o);
	if (!r)
		r = thinp_pool_get_status(fs->pool, &st);
	if (r) {
		fprintf(stderr, "thinp-fuse: cannot open the pool: %s\n", thinp_strerror(r));
		return r;
	}
	fs->block_size = st.data_block_size;
	return 0;
}

/* Every file is closed by now, unless the mount went away under open files
 * (umount -l): close what is left before the pool. */
static int close_pool(struct tfs *fs)
{
	int r;

	volset_destroy(&fs->vols);
	r = thinp_pool_close(fs->pool);
	if (r)
		fprintf(stderr, "thinp-fuse: closing the pool: %s\n", thinp_strerror(r));
	fs->pool = NULL;
	return r;
}

/* Serve device @id as the volume table describes it; a device the table
 * cannot size is left out, with a word on the terminal. */
static int load_volume(struct tfs *fs, uint64_t id)
{
	struct volume v = { 0 };
	int r = table_describe(fs, id, &v);

	if (r == -ENODATA || r == -EAGAIN || r == -EPERM) {
		fprintf(stderr, "thinp-fuse: device %" PRIu64 " not served: %s\n", id,
			r == -EAGAIN ? "a receive into it is not finished"
			: r == -EPERM ? "an anchor (a hidden snapshot thinp receive keeps)"
				      : "no size in the volume table (-o size=)");
		return 0;
	}
	if (!r && (r = volset_add(&fs->vols, &v)))
		thinp_io_close(v.origin);
	return r;
}

/* The pool's devices, as the volume table says to serve them. The pool is
 * open (the check open); the metadata was read before. */
static int load_volumes(struct tfs *fs, const uint64_t *ids, size_t n)
{
	int r = table_reconcile(fs);

	for (size_t i = 0; !r && i < n; i++)
		r = load_volume(fs, ids[i]);
	if (r)
		fprintf(stderr, "thinp-fuse: reading the volume table: %s\n", thinp_strerror(r));
	return r;
}

/* Everything before mounting: the files, the device list, the volume
 * table, and the check open of the pool. */
static int prepare(struct tfs *fs)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	int r = open_files(fs);

	if (!r)
		r = table_open(fs);
	if (!r)
		r = open_pool(fs, 0);
	if (!r && (r = pool_device_ids(fs, &ids, &n)))
		fprintf(stderr, "thinp-fuse: %s: %s\n", fs->meta_path, thinp_strerror(r));
	if (!r)
		r = load_volumes(fs, ids, n);
	if (fs->pool && thinp_pool_close(fs->pool) && !r)
		r = -EIO;
	fs->pool = NULL;
	free(ids);
	return r;
}

/* -o size=: bytes with an optional k/m/g/t (binary) suffix, a non-zero
 * multiple of 512 (as create_thin ID SIZE takes it). */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	const char *u = NULL;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || (*end && (end[1] || !(u = strchr(units, *end | 0x20)))))
		return -EINVAL;
	for (int i = 0; u && i <= u - units; i++)
		if (__builtin_mul_overflow(*out, 1024, out))
			return -EINVAL;
	return *out && *out % 512 == 0 ? 0 : -EINVAL;
}

static int check_args(struct cli *c, struct fuse_cmdline_opts *co, struct tfs *fs)
{
	if (!c->meta || !c->data || !co->mountpoint) {
		fprintf(stderr, "thinp-fuse: -m META, -d DATA and MOUNTPOINT are required "
				"(--help)\n");
		return -EINVAL;
	}
	fs->meta_path = c->meta;
	fs->data_path = c->data;
	fs->catalog_path = c->catalog;
	if (!c->catalog) {
		if (asprintf(&c->catalog, "%s.vol", c->meta) < 0)
			return -ENOMEM;
		fs->catalog_path = c->catalog;
	}
	fs->page_cache = c->page_cache;
	fs->mounted = time(NULL);
	if (c->size && parse_size(c->size, &fs->default_size)) {
		fprintf(stderr, "thinp-fuse: bad size '%s'\n", c->size);
		return -EINVAL;
	}
	return 0;
}

/* Mount, serve until unmounted, unmount. */
static int serve(struct tfs *fs, struct fuse_args *args, struct fuse_cmdline_opts *co,
		 const struct cli *c)
{
	struct fuse_loop_config *cfg = NULL;
	struct fuse *f = fuse_new(args, &tfs_ops, sizeof(tfs_ops), fs);
	int r = -EIO;

	if (!f)
		return -EINVAL;
	if (fuse_mount(f, co->mountpoint))
		goto out;
	if (fuse_daemonize(co->foreground) || fuse_set_signal_handlers(fuse_get_session(f)))
		goto unmount;
	/* The daemon's threads are the disk under whatever is mounted on a
	 * volume: let them write while the kernel reclaims memory. Set before
	 * any thread starts (the pool's commit thread, FUSE's workers), which
	 * inherit it. */
	prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
	if (open_pool(fs, c->commit_interval))
		goto signals;
	if (c->mlock && mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("thinp-fuse: mlockall");
	cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_max_threads(cfg, c->threads ? c->threads : DEFAULT_THREADS);
		r = co->singlethread ? fuse_loop(f) : fuse_loop_mt(f, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
signals:
	fuse_remove_signal_handlers(fuse_get_session(f));
unmount:
	fuse_unmount(f);
out:
	fuse_destroy(f);
	return r;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co = { 0 };
	struct cli c = { 0 };
	struct tfs fs;
	int r = 1;

	memset(&fs, 0, sizeof(fs));
	if (fuse_opt_parse(&args, &c, cli_opts, NULL) || fuse_parse_cmdline(&args, &co))
		goto out;
	if (c.help) {
		usage(argv[0]);
		fuse_lib_help(&args);
		r = 0;
		goto out;
	}
	if (c.version) {
		printf("thinp-fuse %s, libfuse %s\n", thinp_version(), fuse_pkgversion());
		r = 0;
		goto out;
	}
	if (check_args(&c, &co, &fs) || volset_init(&fs.vols))
		goto out;
	pthread_mutex_init(&fs.reply_lock, NULL);
	pthread_mutex_init(&fs.msg_lock, NULL);
	if (!prepare(&fs))
		r = serve(&fs, &args, &co, &c);
	if (close_pool(&fs))
		r = 1;
	pthread_mutex_destroy(&fs.msg_lock);
	pthread_mutex_destroy(&fs.reply_lock);
	table_close(&fs);
out:
	thinp_io_close(fs.data);
	thinp_io_close(fs.meta);
	free(co.mountpoint);
	/* fuse_opt_parse() copied the option values. */
	free(c.meta);
	free(c.data);
	free(c.catalog);
	free(c.size);
	fuse_opt_free_args(&args);
	return r ? 1 : 0;
}
