/*
 * The file backend: a regular file or a block device, through pread/pwrite.
 *
 * pread and pwrite may move fewer bytes than asked (a signal, a huge
 * request, a quirky filesystem) or fail with EINTR; the backend contract says
 * a read or write succeeds only when all of it moved, so both go through one
 * loop, thinp_file_xfer(), which takes the syscall as a function pointer so a
 * test can inject both cases.
 *
 * With O_DIRECT the kernel wants the memory buffer aligned as well as the
 * offset and length. The handle enforces 4096-byte offsets and lengths
 * (ops.align); a caller's buffer that is not 4096-aligned is staged through
 * an aligned bounce buffer, chunk by chunk, instead of being refused, because
 * layers above should not have to know how the device was opened.
 *
 * Discard punches holes and write-zeroes too (FALLOC_FL_ZERO_RANGE with
 * THINP_IO_NO_UNMAP, or where no hole can be punched); where the
 * filesystem lacks them the callbacks return -EOPNOTSUPP: the handle then
 * writes zeroes itself (write-zeroes) or reports it (discard). Discard support
 * is probed at open on regular files, by punching a hole past the end of the
 * file, which changes nothing, so THINP_IO_CAP_DISCARD is declared only where
 * it works.
 *
 * A regular file tells where it reads as zeroes from its holes
 * (thinp_io_is_zero), which costs one lseek instead of reading.
 *
 * Exclusive ownership (thinp_io_lock) differs by kind. A regular file takes
 * an open-file-description lock (F_OFD_SETLK) over the whole file: it belongs
 * to this descriptor, so it conflicts with every other open(2) of the file,
 * in this process too (a classic POSIX lock would not), and it goes away
 * with the descriptor, even if the process dies. A block device is claimed
 * by opening it a second time with O_EXCL, which the kernel refuses while
 * anything else claims it (a mount, a device-mapper table, another O_EXCL
 * opener); the descriptor is kept until the lock is released. It is opened
 * through /proc/self/fd, so it is the same device even if the path changed.
 *
 * Host-specific: it is made of POSIX and Linux system calls, so it belongs to
 * the POSIX OS backend's set (lib/os/posix/) and stays out of the
 * freestanding build check; a kernel build gets a bio backend instead.
 */
#include "config.h" /* _GNU_SOURCE, for O_DIRECT and fallocate() */

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libthinp/io.h>
#include "os/posix/file_xfer.h"
#include "util/compiler.h"

#define DIRECT_ALIGN 4096u
/* Bounce buffer size, and the largest single syscall (Linux moves at most
 * about 2 GiB per call anyway). */
#define BOUNCE_CHUNK (1u << 20)
#define XFER_MAX (1u << 30)

struct filedev {
	int fd;
	int excl_fd; /* a block device's O_EXCL claim, or -1 */
	bool blockdev;
	bool direct;
};

int thinp_file_xfer(thinp_xfer_fn fn, void *ctx, int fd, void *buf, uint64_t len,
		    uint64_t off)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = fn(fd, p, THINP_MIN(len, XFER_MAX), (off_t)off, ctx);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static ssize_t sys_pread(int fd, void *buf, size_t len, off_t off, void *ctx)
{
	return pread(fd, buf, len, off);
}

static ssize_t sys_pwrite(int fd, void *buf, size_t len, off_t off, void *ctx)
{
	return pwrite(fd, buf, len, off);
}

static bool needs_bounce(const struct filedev *d, const void *buf)
{
	return d->direct && ((uintptr_t)buf & (DIRECT_ALIGN - 1));
}

/* O_DIRECT with an unaligned caller buffer: move the data through an
 * aligned buffer, one chunk at a time. */
static int bounce_xfer(struct filedev *d, bool write, unsigned char *buf,
		       uint64_t len, uint64_t off)
{
	void *bounce;
	int r = 0;

	if (posix_memalign(&bounce, DIRECT_ALIGN, BOUNCE_CHUNK))
		return -ENOMEM;
	while (len && !r) {
		uint64_t n = THINP_MIN(len, BOUNCE_CHUNK);

		if (write) {
			memcpy(bounce, buf, n);
			r = thinp_file_xfer(sys_pwrite, NULL, d->fd, bounce, n, off);
		} else {
			r = thinp_file_xfer(sys_pread, NULL, d->fd, bounce, n, off);
			if (!r)
				memcpy(buf, bounce, n);
		}
		buf += n;
		off += n;
		len -= n;
	}
	free(bounce);
	return r;
}

static int file_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct filedev *d = ctx;

	if (needs_bounce(d, buf))
		return bounce_xfer(d, false, buf, len, off);
	return thinp_file_xfer(sys_pread, NULL, d->fd, buf, len, off);
}

/* No THINP_IO_CAP_FUA: the handle follows a FUA write with fdatasync. */
static int file_write(void *ctx, const void *buf, uint64_t len, uint64_t off,
		      uint32_t flags)
{
	struct filedev *d = ctx;

	/* pwrite does not modify buf; the loop's signature is shared with reads. */
	if (needs_bounce(d, buf))
		return bounce_xfer(d, true, (unsigned char *)buf, len, off);
	return thinp_file_xfer(sys_pwrite, NULL, d->fd, (void *)buf, len, off);
}

static int file_flush(void *ctx)
{
	struct filedev *d = ctx;

	return fdatasync(d->fd) ? -errno : 0;
}

static int file_size(void *ctx, uint64_t *bytes)
{
	struct filedev *d = ctx;
	struct stat st;

	if (d->blockdev)
		return ioctl(d->fd, BLKGETSIZE64, bytes) ? -errno : 0;
	if (fstat(d->fd, &st))
		return -errno;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

/* fallocate, with ENOTSUP (a synonym on Linux, but not everywhere) folded
 * into the one code the handle understands. */
static int falloc(struct filedev *d, int mode, uint64_t len, uint64_t off)
{
	if (!fallocate(d->fd, mode, (off_t)off, (off_t)len))
		return 0;
	return errno == ENOTSUP ? -EOPNOTSUPP : -errno;
}

static int file_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	return falloc(ctx, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, len, off);
}

/* Without THINP_IO_NO_UNMAP a hole serves: on a sparse file it allocates
 * nothing, where ZERO_RANGE allocates the range (as unwritten extents, which
 * the next flush journals on ext4: in a microbenchmark, zeroing around a
 * 4 KiB write into each fresh 64 KiB block of a sparse file made a
 * flush-every-64 loop ~0.5-0.6 x a plain pwrite loop, holes ~0.8 x). ZERO_RANGE keeps the blocks allocated, for NO_UNMAP and where
 * holes cannot be punched (a block device that cannot zero without
 * fallback). */
static int file_write_zeroes(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	if (!(flags & THINP_IO_NO_UNMAP)) {
		int r = falloc(ctx, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, len, off);

		if (r != -EOPNOTSUPP)
			return r;
	}
	return falloc(ctx, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, len, off);
}

/* A range of a regular file reads as zeroes when no data starts before its
 * end: SEEK_DATA gives the first byte at or after off outside a hole, with
 * dirty page cache counted as data (ENXIO: none before the end of the file).
 * It moves the descriptor's offset, which the backend never uses (pread and
 * pwrite take theirs). */
static int file_is_zero(void *ctx, uint64_t len, uint64_t off)
{
	struct filedev *d = ctx;
	off_t data = lseek(d->fd, (off_t)off, SEEK_DATA);

	if (data < 0)
		return errno == ENXIO ? 1 : -errno;
	return (uint64_t)data >= off + len;
}

static int file_resize(void *ctx, uint64_t bytes)
{
	struct filedev *d = ctx;

	if (d->blockdev)
		return -EOPNOTSUPP;
	if (bytes > INT64_MAX)
		return -EFBIG;
	return ftruncate(d->fd, (off_t)bytes) ? -errno : 0;
}

static int ofd_lock(struct filedev *d, uint32_t how)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl)); /* whole file; l_pid 0, as OFD locks require */
	fl.l_type = how == THINP_IO_LOCK_EXCLUSIVE ? F_WRLCK : F_UNLCK;
	fl.l_whence = SEEK_SET;
	if (!fcntl(d->fd, F_OFD_SETLK, &fl))
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

static int bdev_lock(struct filedev *d, uint32_t how)
{
	char self[64];

	if (how == THINP_IO_LOCK_NONE) {
		close(d->excl_fd);
		d->excl_fd = -1;
		return 0;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", d->fd);
	d->excl_fd = open(self, O_RDONLY | O_EXCL | O_CLOEXEC);
	return d->excl_fd < 0 ? -errno : 0;
}

static int file_lock(void *ctx, uint32_t how)
{
	struct filedev *d = ctx;

	return d->blockdev ? bdev_lock(d, how) : ofd_lock(d, how);
}

static void file_close(void *ctx)
{
	struct filedev *d = ctx;

	if (d->excl_fd >= 0)
		close(d->excl_fd);
	close(d->fd);
	free(d);
}

/* Punch a hole past the end of the file: a no-op where holes are
 * supported, EOPNOTSUPP where they are not. */
static bool probe_discard(struct filedev *d, const struct stat *st)
{
	uint64_t past = ((uint64_t)st->st_size / DIRECT_ALIGN + 1) * DIRECT_ALIGN;

	return falloc(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, DIRECT_ALIGN,
		      past) == 0;
}

static int open_fd(const char *path, uint32_t flags)
{
	int oflags = O_CLOEXEC;
	int fd;

	oflags |= (flags & THINP_IO_RDONLY) ? O_RDONLY : O_RDWR;
	if (flags & THINP_IO_DIRECT)
		oflags |= O_DIRECT;
	if (flags & THINP_IO_CREATE)
		oflags |= O_CREAT;
	fd = open(path, oflags, 0666);
	return fd < 0 ? -errno : fd;
}

/* Decide the backend's capabilities for an open file. */
static uint32_t file_caps(struct filedev *d, const struct stat *st, uint32_t flags)
{
	uint32_t caps = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_WRITE_ZEROES;

	if (flags & THINP_IO_RDONLY)
		return caps;
	/* A hole, and a block device's punched range, read back as zeroes. A
	 * block device is not probed: punching it would destroy data; it
	 * answers -EOPNOTSUPP at discard time if it cannot. */
	if (d->blockdev || probe_discard(d, st))
		caps |= THINP_IO_CAP_DISCARD | THINP_IO_CAP_DISCARD_ZEROES;
	return caps;
}

int thinp_io_open_file(thinp_io **out, const char *path, uint32_t flags)
{
	const uint32_t known = THINP_IO_RDONLY | THINP_IO_DIRECT | THINP_IO_CREATE;
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct filedev *d;
	struct stat st;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || (flags & ~known))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->excl_fd = -1;
	d->fd = open_fd(path, flags);
	if (d->fd < 0) {
		r = d->fd;
		free(d);
		return r;
	}
	if (fstat(d->fd, &st)) {
		r = -errno;
		goto fail;
	}
	r = -EINVAL;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		goto fail;
	d->blockdev = S_ISBLK(st.st_mode);
	d->direct = flags & THINP_IO_DIRECT;
	ops.caps = file_caps(d, &st, flags);
	ops.align = d->direct ? DIRECT_ALIGN : 1;
	ops.read = file_read;
	ops.write = file_write;
	ops.flush = file_flush;
	ops.size = file_size;
	ops.discard = file_discard;
	ops.write_zeroes = file_write_zeroes;
	ops.close = file_close;
	ops.resize = file_resize;
	ops.lock = file_lock;
	/* A block device has no holes to find (lseek calls all of it data). */
	ops.is_zero = d->blockdev ? NULL : file_is_zero;
	r = thinp_io_new(out, &ops, d, flags & THINP_IO_RDONLY);
	if (!r)
		return 0;
fail:
	file_close(d);
	return r;
}
