/*
 * The thinp_io handle: the library's only door to a device.
 *
 * A handle owns a private copy of the caller's thinp_io_ops (so a caller may
 * build the struct on its stack, and a struct from an older header is zero-
 * extended), checks each request (alignment, bounds, read-only), and, for a
 * backend that did not declare THINP_IO_CAP_THREADSAFE, serializes the calls
 * with `serial`. Range checks use the size last reported by the backend; the
 * size is re-read on thinp_io_size() and before failing a request as out of
 * range, so a device that grew is noticed without a call per I/O. A read-only
 * handle refuses every change with -EROFS before any other check.
 *
 * Request flags are checked here too, against the set each kind of request
 * accepts, so that a backend sees only flags it was promised. THINP_IO_FUA
 * on a backend without THINP_IO_CAP_FUA is emulated: the request goes down
 * without it and a flush follows.
 */
#include "os/os.h"

#include <libthinp/io.h>
#include "io/io_internal.h"
#include "util/abi_struct.h"

/* The smallest struct_size that still holds every version-1 field. */
#define OPS_V1_SIZE (offsetof(thinp_io_ops, is_zero) + sizeof(((thinp_io_ops *)0)->is_zero))

struct thinp_io {
	thinp_io_ops ops;
	void *ctx;
	uint32_t flags;
	uint32_t align;
	bool serialize;
	thinp_os_mutex serial;    /* guards backend calls when serialize is set */
	/* The size the backend last reported: every request's range check
	 * reads it, from any number of threads. */
	thinp_os_atomic_u64 size;
	thinp_os_mutex owner_lock; /* guards owned, held across ops.lock */
	bool owned;                 /* THINP_IO_LOCK_EXCLUSIVE is held */
};

/* Take the caller's ops into the handle's zero-extended copy, and check it. */
static int read_ops(thinp_io_ops *dst, const thinp_io_ops *src)
{
	const thinp_io_ops *ops = dst;

	if (thinp_abi_copy_in(dst, sizeof(*dst), src, OPS_V1_SIZE, THINP_IO_OPS_VERSION))
		return -EINVAL;
	if (!ops->read || !ops->write || !ops->flush || !ops->size)
		return -EINVAL;
	if (ops->align > 1 && (ops->align & (ops->align - 1)))
		return -EINVAL;
	if ((ops->caps & THINP_IO_CAP_DISCARD) && !ops->discard)
		return -EINVAL;
	if ((ops->caps & THINP_IO_CAP_WRITE_ZEROES) && !ops->write_zeroes)
		return -EINVAL;
	return 0;
}

static void destroy_locks(thinp_io *io)
{
	thinp_os_mutex_destroy(&io->serial);
	thinp_os_mutex_destroy(&io->owner_lock);
}

int thinp_io_new(thinp_io **out, const thinp_io_ops *ops, void *ctx, uint32_t flags)
{
	uint64_t size;
	thinp_io *io;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~(uint32_t)THINP_IO_RDONLY)
		return -EINVAL;
	io = thinp_os_zalloc(sizeof(*io));
	if (!io)
		return -ENOMEM;
	r = read_ops(&io->ops, ops);
	if (r) {
		thinp_os_free(io);
		return r;
	}
	/* Capability bits for callbacks that are absent are meaningless. */
	if (!io->ops.discard)
		io->ops.caps &= ~(uint32_t)(THINP_IO_CAP_DISCARD | THINP_IO_CAP_DISCARD_ZEROES);
	if (!io->ops.write_zeroes)
		io->ops.caps &= ~(uint32_t)THINP_IO_CAP_WRITE_ZEROES;
	io->ctx = ctx;
	io->flags = flags;
	io->align = io->ops.align ? io->ops.align : 1;
	io->serialize = !(io->ops.caps & THINP_IO_CAP_THREADSAFE);
	thinp_os_mutex_init(&io->serial);
	thinp_os_mutex_init(&io->owner_lock);
	r = io->ops.size(ctx, &size);
	if (r) {
		destroy_locks(io);
		thinp_os_free(io);
		return r;
	}
	thinp_os_atomic_u64_store(&io->size, size);
	*out = io;
	return 0;
}

void thinp_io_close(thinp_io *io)
{
	if (!io)
		return;
	/* A backend's lock may outlive its descriptor (the fault backend's
	 * lower device does): release it explicitly. */
	thinp_io_lock(io, THINP_IO_LOCK_NONE);
	if (io->ops.close)
		io->ops.close(io->ctx);
	destroy_locks(io);
	thinp_os_free(io);
}

static void enter(thinp_io *io)
{
	if (io->serialize)
		thinp_os_mutex_lock(&io->serial);
}

static void leave(thinp_io *io)
{
	if (io->serialize)
		thinp_os_mutex_unlock(&io->serial);
}

int thinp_io_size(thinp_io *io, uint64_t *bytes)
{
	uint64_t size;
	int r;

	if (!io || !bytes)
		return -EINVAL;
	enter(io);
	r = io->ops.size(io->ctx, &size);
	leave(io);
	if (r)
		return r;
	thinp_os_atomic_u64_store(&io->size, size);
	*bytes = size;
	return 0;
}

static bool in_range(thinp_io *io, uint64_t len, uint64_t off)
{
	uint64_t size = thinp_os_atomic_u64_load(&io->size);

	return off <= size && len <= size - off;
}

/* Alignment and bounds of one request; -EINVAL if it is bad. */
static int check_range(thinp_io *io, uint64_t len, uint64_t off)
{
	uint64_t size;

	if ((off | len) & (io->align - 1))
		return -EINVAL;
	if (off + len < off)
		return -EINVAL;
	if (in_range(io, len, off))
		return 0;
	/* The device may have grown since we last asked. */
	if (thinp_io_size(io, &size) == 0 && in_range(io, len, off))
		return 0;
	return -EINVAL;
}

static int check_write(thinp_io *io, uint64_t len, uint64_t off)
{
	if (io->flags & THINP_IO_RDONLY)
		return -EROFS;
	return check_range(io, len, off);
}

/* The request flags each kind accepts. */
#define READ_FLAGS 0u
#define WRITE_FLAGS THINP_IO_FUA
#define DISCARD_FLAGS THINP_IO_FUA
#define WRITE_ZEROES_FLAGS (THINP_IO_FUA | THINP_IO_NO_UNMAP)

/* The flags the backend gets for a request: FUA only where the backend
 * honours it itself; *flush_after says the handle must flush instead. */
static uint32_t backend_flags(const thinp_io *io, uint32_t flags, bool *flush_after)
{
	*flush_after = (flags & THINP_IO_FUA) && !(io->ops.caps & THINP_IO_CAP_FUA);
	return *flush_after ? flags & ~(uint32_t)THINP_IO_FUA : flags;
}

/* Complete an emulated FUA: the request's result, or the flush's. */
static int finish_fua(thinp_io *io, int r, bool flush_after)
{
	if (r || !flush_after)
		return r;
	enter(io);
	r = io->ops.flush(io->ctx);
	leave(io);
	return r;
}

int thinp_io_read(thinp_io *io, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	int r;

	if (!io || (!buf && len) || (flags & ~READ_FLAGS))
		return -EINVAL;
	r = check_range(io, len, off);
	if (r || !len)
		return r;
	enter(io);
	r = io->ops.read(io->ctx, buf, len, off, flags);
	leave(io);
	return r;
}

int thinp_io_write(thinp_io *io, const void *buf, uint64_t len, uint64_t off,
		   uint32_t flags)
{
	bool flush_after;
	int r;

	if (!io || (!buf && len) || (flags & ~WRITE_FLAGS))
		return -EINVAL;
	r = check_write(io, len, off);
	if (r || !len)
		return r;
	flags = backend_flags(io, flags, &flush_after);
	enter(io);
	r = io->ops.write(io->ctx, buf, len, off, flags);
	leave(io);
	return finish_fua(io, r, flush_after);
}

int thinp_io_flush(thinp_io *io)
{
	int r;

	if (!io)
		return -EINVAL;
	if (io->flags & THINP_IO_RDONLY)
		return 0;
	enter(io);
	r = io->ops.flush(io->ctx);
	leave(io);
	return r;
}

int thinp_io_discard(thinp_io *io, uint64_t len, uint64_t off, uint32_t flags)
{
	bool flush_after;
	int r;

	if (!io || (flags & ~DISCARD_FLAGS))
		return -EINVAL;
	/* Read-only is the stronger refusal: say it even where discard
	 * would not be supported anyway. */
	if (io->flags & THINP_IO_RDONLY)
		return -EROFS;
	if (!(io->ops.caps & THINP_IO_CAP_DISCARD))
		return -EOPNOTSUPP;
	r = check_write(io, len, off);
	if (r || !len)
		return r;
	flags = backend_flags(io, flags, &flush_after);
	enter(io);
	r = io->ops.discard(io->ctx, len, off, flags);
	leave(io);
	return finish_fua(io, r, flush_after);
}

/* Zero a range with plain writes, for backends without write_zeroes. Written
 * blocks stay allocated, so THINP_IO_NO_UNMAP holds; FUA is the caller's. */
static int write_zeroes_by_writing(thinp_io *io, uint64_t len, uint64_t off)
{
	const uint64_t chunk = 1 << 20;
	void *zero;
	int r = 0;

	/* Aligned so that O_DIRECT-style backends accept it. */
	if (!(zero = thinp_os_alloc_aligned(chunk, THINP_MAX(io->align, 4096u))))
		return -ENOMEM;
	memset(zero, 0, chunk);
	while (len && !r) {
		uint64_t n = THINP_MIN(len, chunk);

		enter(io);
		r = io->ops.write(io->ctx, zero, n, off, 0);
		leave(io);
		len -= n;
		off += n;
	}
	thinp_os_free(zero);
	return r;
}

int thinp_io_write_zeroes(thinp_io *io, uint64_t len, uint64_t off, uint32_t flags)
{
	bool flush_after = false;
	int r;

	if (!io || (flags & ~WRITE_ZEROES_FLAGS))
		return -EINVAL;
	r = check_write(io, len, off);
	if (r || !len)
		return r;
	r = -EOPNOTSUPP;
	if (io->ops.caps & THINP_IO_CAP_WRITE_ZEROES) {
		uint32_t bflags = backend_flags(io, flags, &flush_after);

		enter(io);
		r = io->ops.write_zeroes(io->ctx, len, off, bflags);
		leave(io);
	}
	/* No callback, or a backend that learns only now that its device
	 * cannot zero: write zeroes, and flush here for a FUA request. */
	if (r == -EOPNOTSUPP) {
		flush_after = flags & THINP_IO_FUA;
		r = write_zeroes_by_writing(io, len, off);
	}
	return finish_fua(io, r, flush_after);
}

int thinp_io_is_zero(thinp_io *io, uint64_t len, uint64_t off)
{
	int r;

	if (!io)
		return -EINVAL;
	r = check_range(io, len, off);
	if (r)
		return r;
	if (!len)
		return 1;
	if (!io->ops.is_zero)
		return 0;
	enter(io);
	r = io->ops.is_zero(io->ctx, len, off);
	leave(io);
	return r < 0 ? r : r > 0;
}

int thinp_io_resize(thinp_io *io, uint64_t bytes)
{
	uint64_t size;
	int r;

	if (!io)
		return -EINVAL;
	if (io->flags & THINP_IO_RDONLY)
		return -EROFS;
	if (!io->ops.resize)
		return -EOPNOTSUPP;
	if (bytes & (io->align - 1))
		return -EINVAL;
	enter(io);
	r = io->ops.resize(io->ctx, bytes);
	leave(io);
	if (r)
		return r;
	/* Refresh the cached size so a shrink is enforced at once. */
	return thinp_io_size(io, &size);
}

/*
 * Ownership is tracked here, so a second EXCLUSIVE through one handle is
 * refused the same way for every backend; the backend's callback extends the
 * exclusion to other handles and processes.
 */
int thinp_io_lock(thinp_io *io, uint32_t how)
{
	int r = 0;

	if (!io || how > THINP_IO_LOCK_EXCLUSIVE)
		return -EINVAL;
	if (how == THINP_IO_LOCK_EXCLUSIVE && (io->flags & THINP_IO_RDONLY))
		return -EROFS;
	thinp_os_mutex_lock(&io->owner_lock);
	if (how == THINP_IO_LOCK_EXCLUSIVE && io->owned) {
		r = -EBUSY;
	} else if (io->owned != (how == THINP_IO_LOCK_EXCLUSIVE)) {
		if (io->ops.lock) {
			enter(io);
			r = io->ops.lock(io->ctx, how);
			leave(io);
		}
		if (!r)
			io->owned = how == THINP_IO_LOCK_EXCLUSIVE;
	}
	thinp_os_mutex_unlock(&io->owner_lock);
	return r;
}

uint32_t thinp_io_caps(const thinp_io *io)
{
	return io ? io->ops.caps : 0;
}

uint32_t thinp_io_align(const thinp_io *io)
{
	return io ? io->align : 1;
}

bool thinp_io_is_read_only(const thinp_io *io)
{
	return io->flags & THINP_IO_RDONLY;
}
