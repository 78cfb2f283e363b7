/*
 * libthinp block-IO backends.
 *
 * Every device the library touches (a pool's metadata device, its data device,
 * an external origin) is reached through a thinp_io handle, which wraps a
 * backend: a table of callbacks (thinp_io_ops) plus the backend's own context
 * pointer. Built-in backends: memory (below), file and fault-injecting (see the
 * functions further down). Users plug in their own by filling a thinp_io_ops.
 *
 * The handle checks every request before the backend sees it: offsets and
 * lengths must be multiples of the backend's alignment and lie inside the
 * device (-EINVAL otherwise); writes, discards and write-zeroes on a read-only
 * handle fail with -EROFS. A backend that does not declare THINP_IO_CAP_THREADSAFE
 * has its calls serialized by the handle, so a handle may always be used from
 * several threads at once.
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
 * Offsets and lengths are in bytes.
 */
typedef struct thinp_io_ops {
	uint32_t struct_size; /* sizeof(thinp_io_ops) as compiled by the caller */
	uint32_t version;     /* THINP_IO_OPS_VERSION */
	uint32_t caps;        /* THINP_IO_CAP_* bits */
	/* Required alignment, in bytes, of every offset and length (a power of
	 * two; 0 or 1 means byte-granular). The handle enforces it. */
	uint32_t align;

	/* Required: read len bytes at off into buf. */
	int (*read)(void *ctx, void *buf, uint64_t len, uint64_t off);
	/* Required: write len bytes from buf at off. Not durable until flush. */
	int (*write)(void *ctx, const void *buf, uint64_t len, uint64_t off);
	/* Required: durability barrier. When it returns 0, every write that
	 * completed before the call is on stable storage. */
	int (*flush)(void *ctx);
	/* Required: the device size in bytes, through *bytes. May change over
	 * time (a grown file); the handle asks again on thinp_io_size(). */
	int (*size)(void *ctx, uint64_t *bytes);
	/* Optional (THINP_IO_CAP_DISCARD): the range's contents become
	 * unspecified (zeroes if THINP_IO_CAP_DISCARD_ZEROES). NULL: discard
	 * requests return -EOPNOTSUPP. */
	int (*discard)(void *ctx, uint64_t len, uint64_t off);
	/* Optional (THINP_IO_CAP_WRITE_ZEROES): write zeroes to the range. NULL:
	 * the handle writes a zeroed buffer instead. */
	int (*write_zeroes)(void *ctx, uint64_t len, uint64_t off);
	/* Optional: release ctx. Called once by thinp_io_close(). */
	void (*close)(void *ctx);
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_io_ops;

#define THINP_IO_OPS_INIT \
	{ sizeof(thinp_io_ops), THINP_IO_OPS_VERSION, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

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

/* thinp_io_read - read len bytes at off. -EINVAL if misaligned or past the
 * end; backend errors (-EIO...) as returned. Thread-safe. Since 1.0. */
THINP_API int thinp_io_read(thinp_io *io, void *buf, uint64_t len, uint64_t off);

/* thinp_io_write - write len bytes at off. -EROFS on a read-only handle;
 * -EINVAL if misaligned or past the end. Thread-safe. Since 1.0. */
THINP_API int thinp_io_write(thinp_io *io, const void *buf, uint64_t len,
			     uint64_t off);

/* thinp_io_flush - make every completed write durable. On a read-only handle
 * it succeeds without calling the backend. Thread-safe. Since 1.0. */
THINP_API int thinp_io_flush(thinp_io *io);

/* thinp_io_discard - discard a range. -EOPNOTSUPP if the backend cannot;
 * -EROFS, -EINVAL as for write. Thread-safe. Since 1.0. */
THINP_API int thinp_io_discard(thinp_io *io, uint64_t len, uint64_t off);

/* thinp_io_write_zeroes - zero a range, with the backend's write_zeroes if it
 * has one, else by writing zeroed buffers. Errors as for write. Since 1.0. */
THINP_API int thinp_io_write_zeroes(thinp_io *io, uint64_t len, uint64_t off);

/* thinp_io_size - the device's current size in bytes (asks the backend, and
 * remembers the answer for range checks). Since 1.0. */
THINP_API int thinp_io_size(thinp_io *io, uint64_t *bytes);

/* thinp_io_caps - the backend's THINP_IO_CAP_* bits. Since 1.0. */
THINP_API uint32_t thinp_io_caps(const thinp_io *io);

/* thinp_io_align - the alignment every offset and length must respect (>= 1).
 * Since 1.0. */
THINP_API uint32_t thinp_io_align(const thinp_io *io);

/*
 * thinp_io_open_memory - a RAM-backed device of `size` bytes, zero-filled,
 * byte-granular, thread-safe, supporting discard (reads back zeroes) and
 * write-zeroes. Flags: THINP_IO_RDONLY. Errors: -ENOMEM. Since 1.0.
 */
THINP_API int thinp_io_open_memory(thinp_io **out, uint64_t size, uint32_t flags);

#ifdef __cplusplus
}
#endif
#endif
