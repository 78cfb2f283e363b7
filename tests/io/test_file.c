/*
 * The file backend beyond the conformance table: the transfer loop under
 * short transfers and EINTR, open errors, persistence across handles,
 * exclusive ownership (an OFD lock between handles and processes), and a
 * real block device (a loop device, when the test may make one), claimed
 * with O_EXCL.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/testutil.h"
#include <libthinp/io.h>
#include "os/posix/file_xfer.h"

static uint64_t suite_seed;

/* A fake pread over `src`: moves at most `chunk` bytes a call and fails
 * every `eintr_every`-th call with EINTR. */
struct fake {
	const unsigned char *src;
	uint64_t src_len;
	size_t chunk;
	unsigned eintr_every;
	unsigned calls;
	unsigned eintrs;
	int fail_errno;  /* if set, fail with it on call `fail_at` */
	unsigned fail_at;
	bool stop_early; /* return 0 (end of file) after half the data */
};

static ssize_t fake_pread(int fd, void *buf, size_t len, off_t off, void *ctx)
{
	struct fake *f = ctx;
	size_t n;

	f->calls++;
	if (f->fail_errno && f->calls == f->fail_at) {
		errno = f->fail_errno;
		return -1;
	}
	if (f->eintr_every && f->calls % f->eintr_every == 0) {
		f->eintrs++;
		errno = EINTR;
		return -1;
	}
	if (f->stop_early && (uint64_t)off >= f->src_len / 2)
		return 0;
	n = len < f->chunk ? len : f->chunk;
	memcpy(buf, f->src + off, n);
	return (ssize_t)n;
}

static void test_xfer_short_and_eintr(void **state)
{
	unsigned char src[10000], dst[10000];
	struct test_rng rng;
	struct fake f = { src, sizeof(src), 7, 3, 0, 0, 0, 0, false };

	test_rng_init(&rng, suite_seed);
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)test_rng_next(&rng);
	memset(dst, 0, sizeof(dst));
	/* From offset 100: the loop must advance buffer and offset together. */
	assert_int_equal(thinp_file_xfer(fake_pread, &f, -1, dst + 100, 9900, 100), 0);
	assert_memory_equal(dst + 100, src + 100, 9900);
	assert_true(dst[0] == 0 && dst[99] == 0);
	/* 9900 bytes at 7 a call: 1415 calls that moved data, plus the EINTRs. */
	assert_int_equal(f.calls - f.eintrs, (9900 + 6) / 7);
	assert_true(f.eintrs > 0);
}

static void test_xfer_errors(void **state)
{
	unsigned char src[4096], dst[4096];
	struct fake f = { src, sizeof(src), 512, 0, 0, 0, ENOSPC, 3, false };

	memset(src, 1, sizeof(src));
	assert_int_equal(thinp_file_xfer(fake_pread, &f, -1, dst, 4096, 0), -ENOSPC);
	assert_int_equal(f.calls, 3);

	/* A file that ends early: no progress is an I/O error, not a hang. */
	f = (struct fake){ src, sizeof(src), 512, 0, 0, 0, 0, 0, true };
	assert_int_equal(thinp_file_xfer(fake_pread, &f, -1, dst, 4096, 0), -EIO);
	assert_int_equal(f.calls, 5);
	assert_int_equal(thinp_file_xfer(fake_pread, &f, -1, dst, 0, 0), 0);
}

static void path_in_tmp(char *path, size_t n, const char *name)
{
	const char *dir = test_tmpdir();

	assert_non_null(dir);
	snprintf(path, n, "%s/%s", dir, name);
}

static void test_open_errors(void **state)
{
	char path[512];
	thinp_io *io = (thinp_io *)&io;

	path_in_tmp(path, sizeof(path), "missing");
	assert_int_equal(thinp_io_open_file(&io, path, 0), -ENOENT);
	assert_null(io);
	assert_int_equal(thinp_io_open_file(&io, NULL, 0), -EINVAL);
	assert_int_equal(thinp_io_open_file(&io, path, 1u << 9), -EINVAL);
	assert_int_equal(thinp_io_open_file(NULL, path, 0), -EINVAL);
	/* Neither a regular file nor a block device. */
	assert_int_equal(thinp_io_open_file(&io, "/dev/null", 0), -EINVAL);
	assert_int_equal(thinp_io_open_file(&io, test_tmpdir(), THINP_IO_RDONLY), -EINVAL);
	assert_null(io);
}

/* Create, grow, write, flush, close; a new handle reads the data back. */
static void test_create_and_persist(void **state)
{
	char path[512];
	thinp_io *io;
	uint64_t size;
	char buf[6];
	struct stat st;

	path_in_tmp(path, sizeof(path), "persist");
	assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_size(io, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(thinp_io_write(io, "x", 1, 0, 0), -EINVAL);
	assert_int_equal(thinp_io_resize(io, 1 << 20), 0);
	assert_int_equal(thinp_io_write(io, "durable", 7, 65536, 0), 0);
	assert_int_equal(thinp_io_flush(io), 0);
	thinp_io_close(io);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);

	assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_io_caps(io) & THINP_IO_CAP_DISCARD, 0);
	assert_int_equal(thinp_io_read(io, buf, 6, 65537, 0), 0);
	assert_memory_equal(buf, "urable", 6);
	thinp_io_close(io);
	unlink(path);
}

/* Write-zeroes on a file reads back zeroes either way; without NO_UNMAP it
 * leaves a hole (where holes can be punched: THINP_IO_CAP_DISCARD), with
 * NO_UNMAP the blocks stay allocated. */
static void test_write_zeroes_unmap(void **state)
{
	static char buf[65536], back[65536], zero[65536];
	char path[512];
	struct stat st;
	blkcnt_t full;
	thinp_io *io;
	int fd;

	path_in_tmp(path, sizeof(path), "zeroes");
	assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_resize(io, 1 << 20), 0);
	memset(buf, 0xA5, sizeof(buf));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (unsigned unmap = 0; unmap < 2; unmap++) {
		assert_int_equal(thinp_io_write(io, buf, sizeof(buf), 65536, 0), 0);
		assert_int_equal(thinp_io_flush(io), 0);
		assert_int_equal(fstat(fd, &st), 0);
		full = st.st_blocks;
		assert_int_equal(thinp_io_write_zeroes(io, 61440, 69632,
						       unmap ? 0 : THINP_IO_NO_UNMAP), 0);
		assert_int_equal(thinp_io_flush(io), 0);
		assert_int_equal(thinp_io_read(io, back, sizeof(back), 65536, 0), 0);
		assert_memory_equal(back, buf, 4096);
		assert_memory_equal(back + 4096, zero, 61440);
		assert_int_equal(fstat(fd, &st), 0);
		if (!unmap)
			assert_true(st.st_blocks >= full);
		else if (thinp_io_caps(io) & THINP_IO_CAP_DISCARD)
			assert_true(st.st_blocks + 61440 / 512 <= full);
	}
	close(fd);
	thinp_io_close(io);
	unlink(path);
	(void)state;
}

/*
 * thinp_io_is_zero on a regular file answers from its holes: a sparse
 * file's never-written range is zeroes, a written one (flushed or still in
 * the page cache) is not, a punched one is again, and a range past the last
 * data reads as zeroes up to the end. Both with and without O_DIRECT.
 */
static void test_is_zero_from_holes(void **state)
{
	static char buf[65536];
	char path[512];
	thinp_io *io;

	memset(buf, 0x3C, sizeof(buf));
	for (unsigned direct = 0; direct < 2; direct++) {
		path_in_tmp(path, sizeof(path), "holes");
		unlink(path);
		assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_CREATE |
							       (direct ? THINP_IO_DIRECT : 0)), 0);
		assert_int_equal(thinp_io_resize(io, 1 << 20), 0);
		assert_int_equal(thinp_io_is_zero(io, 1 << 20, 0), 1);
		assert_int_equal(thinp_io_write(io, buf, 4096, 65536 + 8192, 0), 0);
		/* Unflushed: dirty page cache (or, with O_DIRECT, written). */
		assert_int_equal(thinp_io_is_zero(io, 65536, 65536), 0);
		assert_int_equal(thinp_io_is_zero(io, 65536, 0), 1);
		assert_int_equal(thinp_io_is_zero(io, 65536, 131072), 1);
		assert_int_equal(thinp_io_flush(io), 0);
		assert_int_equal(thinp_io_is_zero(io, 65536, 65536), 0);
		assert_int_equal(thinp_io_is_zero(io, 1 << 20, 0), 0);
		assert_int_equal(thinp_io_is_zero(io, (1 << 20) - 131072, 131072), 1);
		if (thinp_io_caps(io) & THINP_IO_CAP_DISCARD) {
			assert_int_equal(thinp_io_discard(io, 65536, 65536, 0), 0);
			assert_int_equal(thinp_io_is_zero(io, 1 << 20, 0), 1);
		}
		/* Checked like any request. */
		assert_int_equal(thinp_io_is_zero(io, 4096, 1 << 20), -EINVAL);
		if (direct)
			assert_int_equal(thinp_io_is_zero(io, 512, 0), -EINVAL);
		assert_int_equal(thinp_io_is_zero(NULL, 4096, 0), -EINVAL);
		thinp_io_close(io);
		unlink(path);
	}
	(void)state;
}

/* A file that shrinks under the handle: reads of the vanished tail fail
 * cleanly once the handle notices, and at worst with -EIO before. */
static void test_shrunk_behind_back(void **state)
{
	char path[512];
	thinp_io *io;
	char buf[4096];

	path_in_tmp(path, sizeof(path), "shrink");
	assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_resize(io, 65536), 0);
	assert_int_equal(truncate(path, 8192), 0);
	/* The handle still believes 64 KiB: the short file ends the read. */
	assert_int_equal(thinp_io_read(io, buf, 4096, 16384, 0), -EIO);
	assert_int_equal(thinp_io_read(io, buf, 4096, 4096, 0), 0);
	thinp_io_close(io);
	unlink(path);
}

/* ---- a block device, through a loop device over a file ---- */

struct loopdev {
	int fd; /* holds the device; autoclear detaches it when closed */
	char path[64];
};

/* Attach `backing` to a free loop device; false (and why) if we may not. */
static bool loop_attach(struct loopdev *l, const char *backing, const char **why)
{
	struct loop_info64 info;
	int ctl, nr, bfd;

	*why = "not root";
	if (geteuid() != 0)
		return false;
	*why = "no /dev/loop-control";
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return false;
	bfd = open(backing, O_RDWR | O_CLOEXEC);
	for (int tries = 0; tries < 5; tries++) {
		*why = "no free loop device";
		nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (nr < 0)
			break;
		snprintf(l->path, sizeof(l->path), "/dev/loop%d", nr);
		*why = "cannot open the loop device node";
		l->fd = open(l->path, O_RDWR | O_CLOEXEC);
		if (l->fd < 0)
			break;
		if (ioctl(l->fd, LOOP_SET_FD, bfd) == 0) {
			memset(&info, 0, sizeof(info));
			info.lo_flags = LO_FLAGS_AUTOCLEAR;
			ioctl(l->fd, LOOP_SET_STATUS64, &info);
			close(bfd);
			close(ctl);
			return true;
		}
		*why = "LOOP_SET_FD failed";
		close(l->fd);
		if (errno != EBUSY)
			break; /* else another process took it: try the next */
	}
	close(bfd);
	close(ctl);
	return false;
}

/* Two handles (two open file descriptions) on one file: one owner at a time;
 * readers are never refused; the lock goes with NONE or with the handle. */
static void test_lock_between_handles(void **state)
{
	char path[512], buf[8];
	thinp_io *a, *b, *ro;

	path_in_tmp(path, sizeof(path), "lock-handles");
	assert_int_equal(thinp_io_open_file(&a, path, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_resize(a, 4096), 0);
	assert_int_equal(thinp_io_open_file(&b, path, 0), 0);
	assert_int_equal(thinp_io_open_file(&ro, path, THINP_IO_RDONLY), 0);

	assert_int_equal(thinp_io_lock(a, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(a, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(thinp_io_lock(b, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(thinp_io_lock(ro, THINP_IO_LOCK_EXCLUSIVE), -EROFS);
	assert_int_equal(thinp_io_lock(a, 7), -EINVAL);
	/* Advisory: reading (and, for that matter, writing) still works. */
	assert_int_equal(thinp_io_write(a, "owner", 5, 0, 0), 0);
	assert_int_equal(thinp_io_read(ro, buf, 5, 0, 0), 0);
	assert_memory_equal(buf, "owner", 5);

	/* Released by NONE (twice is harmless), taken by the other. */
	assert_int_equal(thinp_io_lock(a, THINP_IO_LOCK_NONE), 0);
	assert_int_equal(thinp_io_lock(a, THINP_IO_LOCK_NONE), 0);
	assert_int_equal(thinp_io_lock(b, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(a, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	/* Released by close. */
	thinp_io_close(b);
	assert_int_equal(thinp_io_lock(a, THINP_IO_LOCK_EXCLUSIVE), 0);
	thinp_io_close(a);
	thinp_io_close(ro);
	unlink(path);
}

/* Another process: refused while the child holds the lock, free once it has
 * exited (its descriptors closed by the kernel, not by thinp_io_close). */
static void test_lock_between_processes(void **state)
{
	int to_child[2], to_parent[2], status;
	char path[512], c = 0;
	thinp_io *io;
	pid_t pid;

	path_in_tmp(path, sizeof(path), "lock-procs");
	assert_int_equal(thinp_io_open_file(&io, path, THINP_IO_CREATE), 0);
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		thinp_io *mine;

		if (thinp_io_open_file(&mine, path, 0) ||
		    thinp_io_lock(mine, THINP_IO_LOCK_EXCLUSIVE))
			_exit(1);
		c = 'L';
		if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1)
			_exit(2);
		_exit(0); /* without closing the handle */
	}
	assert_int_equal(read(to_parent[0], &c, 1), 1);
	assert_int_equal(c, 'L');
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	assert_int_equal(write(to_child[1], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE), 0);
	thinp_io_close(io);
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
	unlink(path);
}

/* A block device is claimed with O_EXCL: another handle, and any other
 * O_EXCL opener, are refused until the claim is released. */
static void block_device_lock(const char *path, thinp_io *io)
{
	thinp_io *other;
	int fd;

	assert_int_equal(thinp_io_open_file(&other, path, 0), 0);
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE), 0);
	assert_int_equal(thinp_io_lock(other, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
	assert_true(fd < 0 && errno == EBUSY);
	assert_int_equal(thinp_io_lock(io, THINP_IO_LOCK_NONE), 0);
	fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(thinp_io_lock(other, THINP_IO_LOCK_EXCLUSIVE), -EBUSY);
	close(fd);
	assert_int_equal(thinp_io_lock(other, THINP_IO_LOCK_EXCLUSIVE), 0);
	thinp_io_close(other);
}

static void test_block_device(void **state)
{
	const uint64_t size = 8u << 20;
	char backing[512], buf[4096], back[4096];
	struct loopdev l;
	const char *why;
	thinp_io *io;
	uint64_t got;
	int fd, r;

	path_in_tmp(backing, sizeof(backing), "loop-backing");
	fd = open(backing, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	if (!loop_attach(&l, backing, &why)) {
		printf("SKIP test_block_device: %s\n", why);
		unlink(backing);
		skip();
	}
	r = thinp_io_open_file(&io, l.path, THINP_IO_DIRECT);
	if (r == 0) {
		/* BLKGETSIZE64, not st_size (0 for a device node). */
		assert_int_equal(thinp_io_size(io, &got), 0);
		assert_int_equal(got, size);
		assert_int_equal(thinp_io_align(io), 4096);
		memset(buf, 0xC3, sizeof(buf));
		assert_int_equal(thinp_io_write(io, buf, 4096, size - 4096, 0), 0);
		assert_int_equal(thinp_io_flush(io), 0);
		assert_int_equal(thinp_io_read(io, back, 4096, size - 4096, 0), 0);
		assert_memory_equal(buf, back, 4096);
		assert_int_equal(thinp_io_read(io, back, 4096, size, 0), -EINVAL);
		assert_int_equal(thinp_io_resize(io, 2 * size), -EOPNOTSUPP);
		/* No holes to find on a device: never "zeroes" without reading. */
		assert_int_equal(thinp_io_is_zero(io, 4096, 0), 0);
		assert_int_equal(thinp_io_write_zeroes(io, 4096, size - 4096, 0), 0);
		assert_int_equal(thinp_io_read(io, back, 4096, size - 4096, 0), 0);
		memset(buf, 0, sizeof(buf));
		assert_memory_equal(buf, back, 4096);
		block_device_lock(l.path, io);
		thinp_io_close(io);
	}
	close(l.fd);
	unlink(backing);
	assert_int_equal(r, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xfer_short_and_eintr),
		cmocka_unit_test(test_xfer_errors),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_create_and_persist),
		cmocka_unit_test(test_write_zeroes_unmap),
		cmocka_unit_test(test_is_zero_from_holes),
		cmocka_unit_test(test_shrunk_behind_back),
		cmocka_unit_test(test_lock_between_handles),
		cmocka_unit_test(test_lock_between_processes),
		cmocka_unit_test(test_block_device),
	};
	int r;

	suite_seed = test_seed("test_file");
	r = cmocka_run_group_tests(tests, NULL, NULL);
	test_tmpdir_cleanup();
	return r;
}
