/*
 * thinp-fuse: a pool's thin volumes as files of one directory.
 *
 * The program is a libthinp client like any other: it uses only the public
 * headers and links the shared library. Pieces, one file each:
 *   main.c     options, opening the pool, mounting, the FUSE loop
 *   volumes.c  the set of volumes served (ids, sizes, open handles)
 *   fs.c       the FUSE operations on the directory and its files
 *   control.c  the control file's messages and the status file's line
 *
 * Threading: FUSE runs operations on several threads at once. The pool and
 * its volumes are thread-safe; the volume set has one lock (see struct
 * volset).
 */
#ifndef THINP_FUSE_H
#define THINP_FUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libthinp/thinp.h>

/* The two special files beside the volumes. Their names cannot clash with a
 * volume's, which is a decimal id. */
#define CONTROL_NAME ".control"
#define STATUS_NAME ".status"

/* Ids a pool message accepts (the kernel's limit, 2^24 - 1). */
#define MAX_VOLUME_ID 16777215u

/* One served volume. `id`, `size` and `rdonly` never change; `thin` and
 * `opens` are guarded by the set's lock. */
struct volume {
	uint64_t id;
	uint64_t size;     /* virtual size in bytes */
	bool rdonly;       /* refuses writes, discards and write-zeroes */
	thinp_io *origin;  /* external origin (read-only), or NULL; owned */
	thinp_thin *thin;  /* open while opens > 0 */
	unsigned opens;    /* open files on this volume */
};

/*
 * The volumes, sorted by id. `lock` guards the array and each volume's
 * `thin` and `opens`. A volume is freed only when removed, which needs
 * opens == 0: an open file's struct volume stays valid without the lock.
 */
struct volset {
	pthread_mutex_t lock;
	struct volume **v;
	size_t n, cap;
};

/* The whole file system: what main() opened, shared by every operation. */
struct tfs {
	const char *meta_path, *data_path, *catalog_path;
	thinp_io *meta, *data, *catalog_io;
	thinp_catalog *catalog; /* the volume table (table.c) */
	thinp_pool *pool;
	uint32_t block_size;    /* the pool's data block size, bytes */
	uint64_t default_size;  /* -o size=: size of volumes the table does not know; 0 = none */
	bool page_cache;        /* -o page_cache: no direct_io on volume files */
	time_t mounted;         /* every file's times */
	struct volset vols;
	/* Serializes messages: each changes the pool, then the catalog. */
	pthread_mutex_t msg_lock;
	/* The control file's answer to the last message, read back by `cat`. */
	pthread_mutex_t reply_lock;
	char reply[256];
};

/* volumes.c */
int volset_init(struct volset *s);
/* Frees every volume, closing the handles still open. */
void volset_destroy(struct volset *s);
/* Ids of the pool's devices, read from the metadata before the pool is
 * opened (malloc'd array). */
int pool_device_ids(struct tfs *fs, uint64_t **ids, size_t *n);
/* The volume with this id, or NULL. Borrowed; see struct volset. */
struct volume *volset_find(struct volset *s, uint64_t id);
/* Add a volume as described by @tmpl (copied; the set takes its origin):
 * -EEXIST, -ENOMEM. */
int volset_add(struct volset *s, const struct volume *tmpl);
/* Remove volume @id: -EBUSY while a file on it is open, -ENODATA. */
int volset_remove(struct volset *s, uint64_t id);
/* Ids of every volume, ascending, into a malloc'd array (*out, *n). */
int volset_ids(struct volset *s, uint64_t **out, size_t *n);
/* How many volumes there are. */
size_t volset_count(struct volset *s);
/* Open a file on @v: opens the thin handle on the first open. */
int volume_get(struct tfs *fs, struct volume *v);
/* Close a file on @v: closes the thin handle on the last close. */
void volume_put(struct tfs *fs, struct volume *v);

/* table.c: the volume table (the pool's catalog) */
int table_open(struct tfs *fs);
void table_close(struct tfs *fs);
/* Drop entries of devices gone behind the catalog's back (committed). */
int table_reconcile(struct tfs *fs);
/* How device @id is served, into @v (id, size, rdonly, origin opened):
 * -ENODATA when no size is known, -EAGAIN for a partial receive, -EPERM
 * for an anchor: these are not served. */
int table_describe(struct tfs *fs, uint64_t id, struct volume *v);

/* control.c */
/* Run the pool message(s) in @buf (one per line), as `dmsetup message`
 * does for the kernel's pool: 0 or the first failing message's -errno. */
int control_message(struct tfs *fs, const char *buf, size_t len);
/* The pool's status line (the kernel's thin-pool status fields) into
 * @buf; returns its length, or -errno. */
int control_status(struct tfs *fs, char *buf, size_t size);

/* fs.c */
struct fuse_operations;
extern const struct fuse_operations tfs_ops;

#endif
