/*
 * The FUSE operations: a flat directory with one regular file per volume
 * (named by its decimal id, as big as the volume), the control file and the
 * status file.
 *
 * The mapping to the library is one to one: read/write are thin reads and
 * writes; fsync is a thin flush (data device flushed, metadata committed),
 * so a write that a returned fsync covers survives a crash of the daemon;
 * fallocate(PUNCH_HOLE) discards whole blocks and zeroes the partial ones
 * at its ends, so the hole reads as zeroes as punch-hole promises (with an
 * external origin, where a discarded block would read the origin, it
 * writes zeroes);
 * SEEK_DATA/SEEK_HOLE walk the volume's mappings; statfs counts the pool's
 * data blocks.
 *
 * Volume files are opened with direct_io unless -o page_cache: every read
 * and write then reaches the pool (no second copy in the page cache under a
 * loop device or a file system, nothing stale after a delete and re-create
 * of an id). Either way writes are synchronous (no writeback cache), so
 * fsync has only the pool to flush.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <fuse.h>

#include "thinp_fuse.h"

/* What a path names. */
enum node { NODE_NONE, NODE_ROOT, NODE_CONTROL, NODE_STATUS, NODE_VOLUME };

static struct tfs *ctx_fs(void)
{
	return fuse_get_context()->private_data;
}

/* Canonical decimal ids only ("7", not "07" or "+7"), so one volume has one
 * name. */
static bool parse_id(const char *s, uint64_t *id)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > MAX_VOLUME_ID)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*id = v;
	return v <= MAX_VOLUME_ID;
}

static enum node lookup(struct tfs *fs, const char *path, struct volume **vol)
{
	uint64_t id;

	if (!strcmp(path, "/"))
		return NODE_ROOT;
	if (path[0] != '/' || strchr(path + 1, '/'))
		return NODE_NONE;
	if (!strcmp(path + 1, CONTROL_NAME))
		return NODE_CONTROL;
	if (!strcmp(path + 1, STATUS_NAME))
		return NODE_STATUS;
	if (!parse_id(path + 1, &id))
		return NODE_NONE;
	*vol = volset_find(&fs->vols, id);
	return *vol ? NODE_VOLUME : NODE_NONE;
}

/* st_blocks counts the volume's mapped blocks, so du and ls -s are true. */
static void volume_stat(struct tfs *fs, const struct volume *v, struct stat *st)
{
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;

	st->st_mode = S_IFREG | (v->rdonly ? 0400 : 0600);
	st->st_size = (off_t)v->size;
	if (!thinp_pool_get_thin_status(fs->pool, v->id, &ts))
		st->st_blocks = (blkcnt_t)(ts.mapped_blocks * (fs->block_size / 512));
}

static int tfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct tfs *fs = ctx_fs();
	struct volume *v = NULL;

	memset(st, 0, sizeof(*st));
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = fs->block_size;
	st->st_atime = st->st_mtime = st->st_ctime = fs->mounted;
	switch (lookup(fs, path, &v)) {
	case NODE_ROOT: st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; break;
	case NODE_CONTROL: st->st_mode = S_IFREG | 0600; break;
	case NODE_STATUS: st->st_mode = S_IFREG | 0444; break;
	case NODE_VOLUME: volume_stat(fs, v, st); break;
	default: return -ENOENT;
	}
	return 0;
}

static int tfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct tfs *fs = ctx_fs();
	uint64_t *ids;
	size_t n;
	int r;

	if (strcmp(path, "/"))
		return -ENOTDIR;
	if ((r = volset_ids(&fs->vols, &ids, &n)))
		return r;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, CONTROL_NAME, NULL, 0, 0);
	fill(buf, STATUS_NAME, NULL, 0, 0);
	for (size_t i = 0; i < n; i++) {
		char name[24];

		snprintf(name, sizeof(name), "%" PRIu64, ids[i]);
		if (fill(buf, name, NULL, 0, 0))
			break;
	}
	free(ids);
	return 0;
}

/*
 * An open file: what it is, and for a volume the volume, for the status
 * file the status line taken at open (so that reads at any offset see one
 * line). fi->fh points to it; I/O needs no path lookup.
 */
struct openfile {
	enum node kind;
	struct volume *vol;
	char text[];
};

static struct openfile *of(const struct fuse_file_info *fi)
{
	return (struct openfile *)(uintptr_t)fi->fh;
}

#define STATUS_MAX 512

static int open_node(struct tfs *fs, enum node kind, struct volume *v, bool writing,
		     struct openfile **out)
{
	struct openfile *f = calloc(1, sizeof(*f) + (kind == NODE_STATUS ? STATUS_MAX : 0));
	int r = 0;

	if (!f)
		return -ENOMEM;
	f->kind = kind;
	f->vol = v;
	if (kind == NODE_STATUS)
		r = writing ? -EACCES : control_status(fs, f->text, STATUS_MAX);
	else if (kind == NODE_VOLUME)
		r = writing && v->rdonly ? -EROFS : volume_get(fs, v);
	if (r < 0) {
		free(f);
		return r;
	}
	*out = f;
	return 0;
}

static int tfs_open(const char *path, struct fuse_file_info *fi)
{
	struct tfs *fs = ctx_fs();
	struct volume *v = NULL;
	enum node kind = lookup(fs, path, &v);
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct openfile *f = NULL;
	int r;

	if (kind == NODE_ROOT)
		return -EISDIR;
	if (kind == NODE_NONE)
		return -ENOENT;
	if ((r = open_node(fs, kind, v, writing, &f)))
		return r;
	fi->fh = (uintptr_t)f;
	fi->direct_io = kind != NODE_VOLUME || !fs->page_cache;
	return 0;
}

static int tfs_release(const char *path, struct fuse_file_info *fi)
{
	struct openfile *f = of(fi);

	if (f->kind == NODE_VOLUME)
		volume_put(ctx_fs(), f->vol);
	free(f);
	return 0;
}

/* Copy the bytes of @text at @off into @buf. */
static int read_text(const char *text, char *buf, size_t size, off_t off)
{
	size_t len = strlen(text);

	if ((size_t)off >= len)
		return 0;
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	memcpy(buf, text + off, size);
	return (int)size;
}

static int read_control(struct tfs *fs, char *buf, size_t size, off_t off)
{
	int r;

	pthread_mutex_lock(&fs->reply_lock);
	r = read_text(fs->reply, buf, size, off);
	pthread_mutex_unlock(&fs->reply_lock);
	return r;
}

/* The volume of an open volume file, or NULL. */
static struct volume *fh_volume(const struct fuse_file_info *fi)
{
	return of(fi)->kind == NODE_VOLUME ? of(fi)->vol : NULL;
}

static int tfs_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct volume *v = fh_volume(fi);
	int r;

	if (of(fi)->kind == NODE_STATUS)
		return read_text(of(fi)->text, buf, size, off);
	if (of(fi)->kind == NODE_CONTROL)
		return read_control(ctx_fs(), buf, size, off);
	if ((uint64_t)off >= v->size)
		return 0;
	if (size > v->size - (uint64_t)off)
		size = (size_t)(v->size - (uint64_t)off);
	r = thinp_thin_read(v->thin, buf, size, (uint64_t)off);
	return r ? r : (int)size;
}

static int tfs_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct volume *v = fh_volume(fi);
	int r;

	if (of(fi)->kind == NODE_CONTROL) {
		r = control_message(ctx_fs(), buf, size);
		return r ? r : (int)size;
	}
	if (!v)
		return -EBADF;
	if ((uint64_t)off >= v->size)
		return -ENOSPC;
	if (size > v->size - (uint64_t)off)
		size = (size_t)(v->size - (uint64_t)off);
	r = thinp_thin_write(v->thin, buf, size, (uint64_t)off);
	return r ? r : (int)size;
}

static int tfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct volume *v = fh_volume(fi);

	return v ? thinp_thin_flush(v->thin) : 0;
}

/* A volume keeps its size; `echo msg > .control` truncates, harmlessly. */
static int tfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct volume *v = NULL;

	switch (lookup(ctx_fs(), path, &v)) {
	case NODE_CONTROL: return 0;
	case NODE_VOLUME: return (uint64_t)size == v->size ? 0 : -EPERM;
	case NODE_NONE: return -ENOENT;
	default: return -EPERM;
	}
}

/*
 * Punch a hole: whole blocks are discarded (unmapped: they read as zeroes
 * and go back to the pool), the partial blocks at either end are zeroed. A
 * pool that ignores discards gets zeroes written instead.
 */
static int punch(struct tfs *fs, struct volume *v, uint64_t off, uint64_t len)
{
	uint64_t bs = fs->block_size, end = off + len;
	uint64_t first = (off + bs - 1) / bs * bs, last = end / bs * bs;
	int r;

	if (first >= last || v->origin)
		return thinp_thin_write_zeroes(v->thin, len, off);
	if (first > off && (r = thinp_thin_write_zeroes(v->thin, first - off, off)))
		return r;
	if (last < end && (r = thinp_thin_write_zeroes(v->thin, end - last, last)))
		return r;
	r = thinp_thin_discard(v->thin, last - first, first);
	if (r == -EOPNOTSUPP)
		r = thinp_thin_write_zeroes(v->thin, last - first, first);
	return r;
}

static int tfs_fallocate(const char *path, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct volume *v = fi ? fh_volume(fi) : NULL;
	uint64_t end;

	if (!v)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	/* Nothing can be reserved in a thin volume, nor can it grow. */
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) ||
	    (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if ((uint64_t)off >= v->size)
		return (mode & FALLOC_FL_KEEP_SIZE) ? 0 : -EOPNOTSUPP;
	end = (uint64_t)off + (uint64_t)len;
	if (end > v->size) {
		if (!(mode & FALLOC_FL_KEEP_SIZE))
			return -EOPNOTSUPP;
		end = v->size;
	}
	if (mode & FALLOC_FL_PUNCH_HOLE)
		return punch(ctx_fs(), v, (uint64_t)off, end - (uint64_t)off);
	return thinp_thin_write_zeroes(v->thin, end - (uint64_t)off, (uint64_t)off);
}

/* The first virtual block at or after @vb that is mapped (@want_mapped) or
 * not; UINT64_MAX if none is mapped from @vb on. */
static int next_block(struct tfs *fs, uint64_t id, uint64_t vb, bool want_mapped, uint64_t *out)
{
	thinp_mapping m = THINP_MAPPING_INIT;
	uint64_t at;
	int r;

	for (;;) {
		r = thinp_pool_thin_next_map(fs->pool, id, vb, &at, &m);
		if (r == -ENODATA) {
			*out = want_mapped ? UINT64_MAX : vb;
			return 0;
		}
		if (r)
			return r;
		if (want_mapped || at != vb) {
			*out = want_mapped ? at : vb;
			return 0;
		}
		vb++;
	}
}

static off_t tfs_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	struct tfs *fs = ctx_fs();
	struct volume *v = fi ? fh_volume(fi) : NULL;
	uint64_t vb, pos;
	int r;

	if (!v || (whence != SEEK_DATA && whence != SEEK_HOLE))
		return -EINVAL;
	if (off < 0 || (uint64_t)off >= v->size)
		return -ENXIO;
	/* Unprovisioned blocks of a volume with an external origin read the
	 * origin: all of it is data. */
	if (v->origin)
		return whence == SEEK_DATA ? off : (off_t)v->size;
	r = next_block(fs, v->id, (uint64_t)off / fs->block_size, whence == SEEK_DATA, &vb);
	if (r)
		return r;
	if (vb == UINT64_MAX || vb >= (v->size + fs->block_size - 1) / fs->block_size)
		pos = v->size;
	else
		pos = vb * fs->block_size;
	if (pos < (uint64_t)off)
		pos = (uint64_t)off;
	/* End of file is the hole after the last data. */
	if (whence == SEEK_DATA && pos >= v->size)
		return -ENXIO;
	return (off_t)pos;
}

static int tfs_statfs(const char *path, struct statvfs *sv)
{
	struct tfs *fs = ctx_fs();
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r = thinp_pool_get_status(fs->pool, &st);

	if (r)
		return r;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = st.data_block_size;
	sv->f_blocks = st.data_total;
	sv->f_bfree = sv->f_bavail = st.data_total - st.data_used;
	sv->f_files = volset_count(&fs->vols) + 2;
	sv->f_ffree = sv->f_favail = MAX_VOLUME_ID + 3 - sv->f_files;
	sv->f_namemax = 255;
	return 0;
}

/*
 * No attribute or entry caching: volumes come and go through the control
 * file and their mapped blocks (st_blocks) change with every write. With
 * attributes never fresh, auto_inval_data would cost a getattr on every
 * page-cached read; it is not needed either, since only this daemon changes
 * a volume and the page cache is dropped at each open (no keep_cache).
 */
static void *tfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	return ctx_fs();
}

const struct fuse_operations tfs_ops = {
	.init = tfs_init,
	.getattr = tfs_getattr,
	.readdir = tfs_readdir,
	.open = tfs_open,
	.release = tfs_release,
	.read = tfs_read,
	.write = tfs_write,
	.fsync = tfs_fsync,
	.truncate = tfs_truncate,
	.fallocate = tfs_fallocate,
	.lseek = tfs_lseek,
	.statfs = tfs_statfs,
};
