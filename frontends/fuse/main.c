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
	char *meta, *data, *size;
	unsigned threads, commit_interval;
	int page_cache, mlock, help, version;
};

#define OPT(t, f, v) { t, offsetof(struct cli, f), v }
static const struct fuse_opt cli_opts[] = {
	OPT("-m %s", meta, 0), OPT("--metadata=%s", meta, 0),
	OPT("-d %s", data, 0), OPT("--data=%s", data, 0),
	OPT("size=%s", size, 0), OPT("threads=%u", threads, 0),
	OPT("commit_interval=%u", commit_interval, 0),
	OPT("page_cache", page_cache, 1), OPT("mlock", mlock, 1),
	OPT("-h", help, 1), OPT("--help", help, 1),
	OPT("-V", version, 1), OPT("--version", version, 1),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("usage: %s -m META -d DATA [-f] [-o OPTION[,...]] MOUNTPOINT\n"
	       "\n"
	       "Serves the thin volumes of the pool on the metadata file META and the\n"
	       "data file DATA as files MOUNTPOINT/ID; MOUNTPOINT/" CONTROL_NAME " takes pool\n"
	       "messages (create_thin, create_snap, delete, ...), MOUNTPOINT/" STATUS_NAME
	       " is the\n"
	       "pool's status line.\n"
	       "\n"
	       "thinp-fuse options:\n"
	       "    -o size=SIZE           size of volumes the volume table does not know\n"
	       "                           (bytes, or with k/m/g/t; default 1g)\n"
	       "    -o page_cache          volume files use the page cache (default: direct_io)\n"
	       "    -o threads=N           FUSE worker threads (default %d)\n"
	       "    -o commit_interval=MS  commit every MS ms (default 0: on fsync and unmount)\n"
	       "    -o mlock               lock the daemon's memory (mlockall)\n"
	       "    -f                     stay in the foreground\n"
	       "\n"
	       "FUSE options:\n",
	       prog, DEFAULT_THREADS);
}

/* SIZE with an optional binary suffix, a whole number of 512-byte sectors. */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	char *end;
	const char *u;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end && (u = strchr(units, *end | 0x20)) && !end[1]) {
		for (int i = 0; i <= u - units; i++) {
			if (v > UINT64_MAX / 1024)
				return -EINVAL;
			v *= 1024;
		}
	} else if (*end) {
		return -EINVAL;
	}
	if (!v || v % 512)
		return -EINVAL;
	*out = v;
	return 0;
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

static int load_volumes(struct tfs *fs)
{
	int r = volset_load(fs);

	if (r)
		fprintf(stderr, "thinp-fuse: reading the pool's volumes: %s\n", thinp_strerror(r));
	return r;
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
	fs->page_cache = c->page_cache;
	fs->mounted = time(NULL);
	fs->default_size = 1ull << 30;
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
	if (open_pool(fs, c->commit_interval))
		goto signals;
	/* The daemon's threads are the disk under whatever is mounted on a
	 * volume: let them write while the kernel reclaims memory. */
	prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
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
		return 1;
	if (c.help || c.version) {
		if (c.help)
			usage(argv[0]);
		else
			printf("thinp-fuse %s, libfuse %s\n", thinp_version(), fuse_pkgversion());
		if (c.help)
			fuse_lib_help(&args);
		return 0;
	}
	if (check_args(&c, &co, &fs) || volset_init(&fs.vols))
		goto out;
	pthread_mutex_init(&fs.reply_lock, NULL);
	if (!open_files(&fs) && !load_volumes(&fs) && !open_pool(&fs, 0)) {
		/* That was the check open; see the top of the file. */
		thinp_pool_close(fs.pool);
		fs.pool = NULL;
		r = serve(&fs, &args, &co, &c);
	}
	if (close_pool(&fs))
		r = 1;
	pthread_mutex_destroy(&fs.reply_lock);
out:
	thinp_io_close(fs.data);
	thinp_io_close(fs.meta);
	free(co.mountpoint);
	fuse_opt_free_args(&args);
	return r ? 1 : 0;
}
