/*
 * libthinp block-IO backends.
 *
 * Every device the library touches (a pool's metadata device, its data device,
 * an external origin) is reached through a thinp_io handle, which wraps a
 * backend: a table of callbacks (thinp_io_ops) plus the backend's own context
 * pointer. Built-in backends: memory and file (below); the fault-injecting
 * backend for tests is in the testing tier, <libthinp/testing.h>. Users plug
 * in their own by filling a thinp_io_ops.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N), with pool.h, thin.h,
 * version.h and common.h; all of them come with <libthinp/thinp.h>.
 *
 * The handle checks every request before the backend sees it: offsets and
 * lengths must be multiples of the backend's alignment and lie inside the
 * device (-EINVAL otherwise); writes, discards and write-zeroes on a read-only
 * handle fail with -EROFS. A backend that does not declare THINP_IO_CAP_THREADSAFE
 * has its calls serialized by the handle, so a handle may always be used from
 * several threads at once.
 *
 * Durability: a write that returned 0 is visible to every later read of the
 * same handle, but survives a power loss only once a later thinp_io_flush()
 * has returned 0. Nothing is ordered between two flushes: after a crash, any
 * subset of the unflushed writes may have landed, and a write larger than a
 * 512-byte sector may have landed partly (the fault backend of
 * <libthinp/testing.h> simulates exactly this).
 */
#ifndef LIBTHINP_IO_H
#define LIBTHINP_IO_H

#include <stdint.h>
#include <stddef.h>
#include <libthinp/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of thinp_io_ops this header describes. */
#define THINP_IO_OPS_VERSION 1

/* Capability bits in thinp_io_ops.caps. */
#define THINP_IO_CAP_DISCARD (1u << 0)      /* discard() is implemented */
#define THINP_IO_CAP_WRITE_ZEROES (1u << 1) /* write_zeroes() is implemented */
#define THINP_IO_CAP_THREADSAFE (1u << 2)   /* callbacks may run concurrently */
#define THINP_IO_CAP_DISCARD_ZEROES (1u << 3) /* discarded ranges read back as zeroes */
#define THINP_IO_CAP_FUA (1u << 4)          /* the backend honours THINP_IO_FUA itself */

/*
 * Per-request flags: the last argument of the read, write, discard and
 * write-zeroes callbacks and of thinp_io_read/_write/_discard/_write_zeroes.
 * 0 asks for nothing special. The handle refuses a flag it does not know, or
 * one that does not apply to the request, with -EINVAL before the backend
 * sees it, so a backend only ever gets the flags listed here for its call.
 * Flush takes no flags: a flush already is the strongest barrier there is.
 */
/* Write, write-zeroes, discard: the request is durable when it returns 0,
 * as if a flush followed it (earlier unflushed writes need not be). A backend
 * without THINP_IO_CAP_FUA never sees the flag: the handle makes the request
 * without it, then calls flush. */
#define THINP_IO_FUA (1u << 0)
/* Write-zeroes only: the range must stay allocated (a later write to it must
 * not fail for lack of space). Without it a backend may deallocate the range
 * (punch a hole) as long as it reads back as zeroes. */
#define THINP_IO_NO_UNMAP (1u << 1)

/* Requests for thinp_io_lock() and thinp_io_ops.lock. */
#define THINP_IO_LOCK_NONE 0u      /* release the lock (a no-op if not held) */
#define THINP_IO_LOCK_EXCLUSIVE 1u /* become the device's only owner */

/* Flags for thinp_io_new() and the built-in openers. */
#define THINP_IO_RDONLY (1u << 0) /* refuse writes, discards and write-zeroes */
#define THINP_IO_DIRECT (1u << 1) /* file backend: O_DIRECT (4 KiB alignment) */
#define THINP_IO_CREATE (1u << 2) /* file backend: create the file if missing */

/*
 * A backend. Fill it from THINP_IO_OPS_INIT so struct_size and version are
 * right, then set the callbacks. The library copies the struct when the handle
 * is made; the caller's copy need not outlive the call.
 *
 * Every callback gets the backend's ctx first. Each returns 0 or a negative
 * errno; a short transfer is the backend's problem (it must loop), so
 * read/write succeed only when the whole range was transferred.
 * Offsets and lengths are in bytes. The handle has already checked them
 * (aligned, inside the device, len > 0), so a backend need not; the same goes
 * for `flags` (only the THINP_IO_* request flags valid for that call, FUA
 * only if the backend declared THINP_IO_CAP_FUA).
 */
typedef struct thinp_io_ops {
	uint32_t struct_size; /* sizeof(thinp_io_ops) as compiled by the caller */
	uint32_t version;     /* THINP_IO_OPS_VERSION */
	uint32_t caps;        /* THINP_IO_CAP_* bits */
	/* Required alignment, in bytes, of every offset and length (a power of
	 * two; 0 or 1 means byte-granular). The handle enforces it. */
	uint32_t align;

	/* Required: read len bytes at off into buf. No flag applies to reads
	 * yet: flags is 0. */
	int (*read)(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags);
	/* Required: write len bytes from buf at off. Not durable until flush,
	 * unless flags has THINP_IO_FUA. */
	int (*write)(void *ctx, const void *buf, uint64_t len, uint64_t off,
		     uint32_t flags);
	/* Required: durability barrier. When it returns 0, every write that
	 * completed before the call is on stable storage. */
	int (*flush)(void *ctx);
	/* Required: the device size in bytes, through *bytes. May change over
	 * time (a grown file); the handle asks again on thinp_io_size(). */
	int (*size)(void *ctx, uint64_t *bytes);
	/* Optional (THINP_IO_CAP_DISCARD): the range's contents become
	 * unspecified (zeroes if THINP_IO_CAP_DISCARD_ZEROES). NULL: discard
	 * requests return -EOPNOTSUPP. A backend that declared the capability
	 * may still return -EOPNOTSUPP when the device turns out not to
	 * support it; the range is then unchanged. Flags: THINP_IO_FUA. */
	int (*discard)(void *ctx, uint64_t len, uint64_t off, uint32_t flags);
	/* Optional (THINP_IO_CAP_WRITE_ZEROES): write zeroes to the range. NULL,
	 * or a return of -EOPNOTSUPP: the handle writes zeroed buffers instead.
	 * Flags: THINP_IO_FUA, THINP_IO_NO_UNMAP. */
	int (*write_zeroes)(void *ctx, uint64_t len, uint64_t off, uint32_t flags);
	/* Optional: release ctx. Called once by thinp_io_close(). */
	void (*close)(void *ctx);
	/* Optional: change the device size to `bytes` (grow or shrink; grown
	 * space reads back as zeroes). NULL: thinp_io_resize() returns
	 * -EOPNOTSUPP. Since version 1. */
	int (*resize)(void *ctx, uint64_t bytes);
	/* Optional: exclusive ownership of the device across handles and
	 * processes (see thinp_io_lock()). how = THINP_IO_LOCK_EXCLUSIVE: take
	 * it, or fail at once (never wait) with -EBUSY if someone else holds
	 * it; THINP_IO_LOCK_NONE: release it (must not fail). The handle calls
	 * it only for a change of state (never EXCLUSIVE twice without a NONE
	 * between) and releases a held lock before close. NULL: no exclusion
	 * beyond the handle's own. Since version 1. */
	int (*lock)(void *ctx, uint32_t how);
	/* Optional: does [off, off + len) read back as zeroes now, as far as the
	 * backend can tell without reading it (a hole in a sparse file)? 1: yes,
	 * every byte; 0: it may hold data, or the backend cannot tell cheaply;
	 * a negative errno on failure. "Now" includes unflushed writes and
	 * discards: a yes may rest on a discard not yet durable. NULL: always 0.
	 * See thinp_io_is_zero(). Since version 1. */
	int (*is_zero)(void *ctx, uint64_t len, uint64_t off);
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_io_ops;

#define THINP_IO_OPS_INIT                                                                  \
	{ sizeof(thinp_io_ops), THINP_IO_OPS_VERSION, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, \
	  NULL, NULL, NULL, NULL }

/* An open device. Opaque. */
typedef struct thinp_io thinp_io;

/*
 * thinp_io_new - wrap a backend in a handle.
 * @out:   receives the handle, owned by the caller (thinp_io_close()).
 * @ops:   the backend; copied (min(ops->struct_size, sizeof) bytes).
 * @ctx:   passed to every callback; owned by the backend (ops->close).
 * @flags: THINP_IO_RDONLY or 0.
 * Errors: -EINVAL for a NULL/unknown-version ops, a struct_size too small for
 * version 1, a missing required callback or a bad alignment; -ENOMEM.
 * On failure ops->close is NOT called: ctx stays the caller's.
 * Since 1.0.
 */
THINP_API int thinp_io_new(thinp_io **out, const thinp_io_ops *ops, void *ctx,
			   uint32_t flags);

/* thinp_io_close - close the backend (ops->close) and free the handle.
 * NULL is a no-op. Does not flush. Since 1.0. */
THINP_API void thinp_io_close(thinp_io *io);

/* thinp_io_read - read len bytes at off. @flags: 0 (no flag applies to
 * reads yet). -EINVAL if misaligned, past the end or with a flag;
 * backend errors (-EIO...) as returned. Thread-safe. Since 1.0. */
THINP_API int thinp_io_read(thinp_io *io, void *buf, uint64_t len, uint64_t off,
			    uint32_t flags);

/* thinp_io_write - write len bytes at off. @flags: THINP_IO_FUA or 0.
 * -EROFS on a read-only handle; -EINVAL if misaligned, past the end or with
 * another flag. Thread-safe. Since 1.0. */
THINP_API int thinp_io_write(thinp_io *io, const void *buf, uint64_t len,
			     uint64_t off, uint32_t flags);

/* thinp_io_flush - make every completed write durable. On a read-only handle
 * it succeeds without calling the backend. Thread-safe. Since 1.0. */
THINP_API int thinp_io_flush(thinp_io *io);

/* thinp_io_discard - discard a range. @flags: THINP_IO_FUA or 0. -EROFS on
 * a read-only handle (checked first); -EOPNOTSUPP if the backend cannot;
 * -EINVAL as for write. Thread-safe. Since 1.0. */
THINP_API int thinp_io_discard(thinp_io *io, uint64_t len, uint64_t off,
			       uint32_t flags);

/* thinp_io_write_zeroes - zero a range, with the backend's write_zeroes if it
 * has one (and it does not answer -EOPNOTSUPP), else by writing zeroed
 * buffers (which keeps the range allocated). @flags: THINP_IO_FUA,
 * THINP_IO_NO_UNMAP, or 0. Errors as for write. Thread-safe. Since 1.0. */
THINP_API int thinp_io_write_zeroes(thinp_io *io, uint64_t len, uint64_t off,
				    uint32_t flags);

/* thinp_io_size - the device's current size in bytes (asks the backend, and
 * remembers the answer for range checks). A device that grew behind the
 * handle's back (a file extended with ftruncate(2), a resized LV) is noticed
 * here, and also by any request that would otherwise be out of range.
 * Thread-safe. Since 1.0. */
THINP_API int thinp_io_size(thinp_io *io, uint64_t *bytes);

/* thinp_io_caps - the backend's THINP_IO_CAP_* bits. Since 1.0. */
THINP_API uint32_t thinp_io_caps(const thinp_io *io);

/* thinp_io_align - the alignment every offset and length must respect (>= 1).
 * Since 1.0. */
THINP_API uint32_t thinp_io_align(const thinp_io *io);

/*
 * thinp_io_resize - grow or shrink the device to `bytes` through the backend's
 * resize callback. Grown space reads back as zeroes. For the built-in
 * backends: memory resizes its buffer; file truncates or extends a regular
 * file (a block device gives -EOPNOTSUPP: resize it with its own tools, the
 * handle notices); fault passes the call to the device below at once (a
 * resize is not held back until the next flush).
 * Errors: -EOPNOTSUPP if the backend has no resize; -EROFS on a read-only
 * handle; -EINVAL if `bytes` is not a multiple of the alignment; -ENOMEM,
 * -EIO and others from the backend. Thread-safe, but a caller that shrinks a
 * device while other threads use the range being cut off gets what it asked
 * for: those requests fail with -EINVAL. Since 1.0.
 */
THINP_API int thinp_io_resize(thinp_io *io, uint64_t bytes);

/*
 * thinp_io_lock - take (THINP_IO_LOCK_EXCLUSIVE) or release
 * (THINP_IO_LOCK_NONE) exclusive ownership of the device, so that two
 * writers never use one device at once: a pool takes it on its metadata
 * device for as long as it is open for writing (see pool.h).
 * EXCLUSIVE fails with -EBUSY, without waiting, when the device is already
 * owned: through this handle, or (where the backend has a lock callback)
 * through another handle, another process or the kernel. For the built-in
 * backends: a regular file gets an open-file-description write lock over the
 * whole file (fcntl F_OFD_SETLK: any other open(2) of the file, in this
 * process or another, that asks for it is refused), a block device a second
 * descriptor opened with O_EXCL (refused while the kernel or another O_EXCL
 * opener holds the device: a mounted filesystem, a device-mapper table); the
 * memory backend has only the handle's own exclusion (one handle per
 * device anyway); the fault backend passes the request to its lower device.
 * A backend of the caller's without a lock callback gets the handle's own
 * exclusion only: anything wider is then the caller's business.
 * The lock is advisory: readers never take it, and opening or reading a
 * locked device is not refused. It is released by NONE or by
 * thinp_io_close(). Errors: -EBUSY (owned elsewhere), -EROFS (EXCLUSIVE on a
 * read-only handle), -EINVAL (unknown request), and the backend's own
 * (-ENOLCK, -EIO...). Thread-safe. Since 1.0.
 */
THINP_API int thinp_io_lock(thinp_io *io, uint32_t how);

/*
 * thinp_io_is_zero - does [off, off + len) read back as zeroes now, as far as
 * the backend can tell without reading it? Returns 1 (every byte reads as
 * zero), 0 (it may hold data; always 0 for a backend without is_zero) or a
 * negative errno: -EINVAL if misaligned or past the end, the backend's own
 * (-EIO...). "Now" is what a read would return now, unflushed writes and
 * discards included; a caller that relies on a yes across a crash must flush
 * the device before it makes anything durable that depends on the zeroes
 * (the pool does: its commits flush the data device first). For the
 * built-in backends: a regular file answers from its holes (lseek
 * SEEK_DATA: a range never written or punched out, with no dirty page
 * cache over it), a block device always 0; memory compares the bytes with
 * zero (cheap there); fault answers 0 where a write, write-zeroes or discard
 * is pending over the range and asks its lower device otherwise. The pool
 * uses it to skip zeroing the unwritten part of a newly provisioned block
 * that already reads as zeroes. Thread-safe. Since 1.0.
 */
THINP_API int thinp_io_is_zero(thinp_io *io, uint64_t len, uint64_t off);

/*
 * thinp_io_open_memory - a RAM-backed device of `size` bytes, zero-filled,
 * byte-granular, thread-safe, supporting discard (reads back zeroes),
 * write-zeroes, resize and FUA (RAM needs no flush). Its contents live
 * exactly as long as the handle.
 * Flags: THINP_IO_RDONLY. Errors: -ENOMEM. Since 1.0.
 */
THINP_API int thinp_io_open_memory(thinp_io **out, uint64_t size, uint32_t flags);

/*
 * thinp_io_open_file - a device backed by a regular file or a block device.
 * @out:   receives the handle, owned by the caller (thinp_io_close() closes
 *         the file descriptor; it does not flush).
 * @path:  the file or block device.
 * @flags: THINP_IO_RDONLY (open read-only), THINP_IO_DIRECT (O_DIRECT: every
 *         offset and length must then be a multiple of 4096; a caller buffer
 *         that is not 4096-aligned in memory goes through an aligned bounce
 *         buffer, which costs a copy but is not an error), THINP_IO_CREATE
 *         (create a missing regular file, mode 0666 minus umask, size 0: grow
 *         it with thinp_io_resize()).
 * The size comes from fstat(2) for a regular file and from the BLKGETSIZE64
 * ioctl for a block device, asked again on thinp_io_size(), so growth made
 * outside the library (ftruncate(2), lvextend) is noticed. Flush is
 * fdatasync(2). Discard punches a hole (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE) and
 * reads back zeroes; THINP_IO_CAP_DISCARD is declared only if a probe at open
 * found that the filesystem supports hole punching (and never on a read-only
 * handle). Write-zeroes uses FALLOC_FL_ZERO_RANGE, falling back to writing
 * zeroes where the filesystem lacks it. Resize (regular files only) is
 * ftruncate(2). FUA is left to the handle (the request, then fdatasync(2)).
 * The backend is thread-safe (pread/pwrite).
 * Errors: -EINVAL for unknown flags or a path that is neither a regular file
 * nor a block device (and, from open(2), a filesystem that refuses
 * O_DIRECT); -ENOENT, -EACCES and other open(2) errors; -ENOMEM.
 * Since 1.0.
 */
THINP_API int thinp_io_open_file(thinp_io **out, const char *path, uint32_t flags);

#ifdef __cplusplus
}
#endif
#endif
