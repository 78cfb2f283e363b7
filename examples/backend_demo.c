/*
 * backend_demo: a tour of libthinp's block-IO layer, using only the public
 * API.
 *
 *   1. a memory device: write, read back;
 *   2. a file device (a temporary file, or the path given as argument):
 *      create, grow, write, flush, take the exclusive lock (a second handle
 *      on the file is refused), reopen and read back;
 *   3. a custom backend plugged in through thinp_io_ops: a tiny device that
 *      keeps its bytes in a static array and counts its calls;
 *   4. the fault-injecting wrapper (<libthinp/testing.h>): a write made
 *      durable by a flush, one made durable by THINP_IO_FUA, a write left
 *      unflushed, then a power cut; "rebooting" on the device below shows
 *      which survived.
 *
 * Build against an installed libthinp:
 *   cc backend_demo.c $(pkg-config --cflags --libs libthinp)
 */
#include <libthinp/thinp.h>
#include <libthinp/testing.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(call)                                                          \
	do {                                                                 \
		int r_ = (call);                                             \
		if (r_ < 0) {                                                \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, \
				#call, thinp_strerror(r_));                  \
			exit(1);                                             \
		}                                                            \
	} while (0)

static void demo_memory(void)
{
	thinp_io *io;
	char buf[32] = { 0 };
	uint64_t size;

	CHECK(thinp_io_open_memory(&io, 1 << 20, 0));
	CHECK(thinp_io_size(io, &size));
	CHECK(thinp_io_write(io, "hello, memory", 13, 4096, 0));
	CHECK(thinp_io_read(io, buf, 13, 4096, 0));
	printf("memory: %llu-byte device, read back \"%s\"\n",
	       (unsigned long long)size, buf);
	/* Range checks happen in the handle, before any backend sees them. */
	printf("memory: a read past the end fails: %s\n",
	       thinp_strerror(thinp_io_read(io, buf, 16, size - 8, 0)));
	thinp_io_close(io);
}

static void demo_file(const char *given)
{
	char tmpl[] = "/tmp/backend_demo-XXXXXX";
	const char *path = given;
	char buf[32] = { 0 };
	thinp_io *io, *other;
	uint64_t size;

	if (!path) {
		int fd = mkstemp(tmpl);

		if (fd < 0) {
			perror("mkstemp");
			exit(1);
		}
		close(fd);
		path = tmpl;
	}
	CHECK(thinp_io_open_file(&io, path, THINP_IO_CREATE));
	CHECK(thinp_io_resize(io, 1 << 20));
	CHECK(thinp_io_write(io, "hello, file", 11, 8192, 0));
	CHECK(thinp_io_flush(io));
	printf("file: %s, discard %s\n", path,
	       (thinp_io_caps(io) & THINP_IO_CAP_DISCARD) ? "supported" : "not supported");
	/* One writer at a time: what a pool does to its metadata device. */
	CHECK(thinp_io_lock(io, THINP_IO_LOCK_EXCLUSIVE));
	CHECK(thinp_io_open_file(&other, path, 0));
	printf("file: locked; a second handle's lock fails: %s\n",
	       thinp_strerror(thinp_io_lock(other, THINP_IO_LOCK_EXCLUSIVE)));
	thinp_io_close(other);
	thinp_io_close(io); /* releases the lock */

	CHECK(thinp_io_open_file(&io, path, THINP_IO_RDONLY));
	CHECK(thinp_io_size(io, &size));
	CHECK(thinp_io_read(io, buf, 11, 8192, 0));
	printf("file: reopened read-only, %llu bytes, read back \"%s\"\n",
	       (unsigned long long)size, buf);
	printf("file: a write to the read-only handle fails: %s\n",
	       thinp_strerror(thinp_io_write(io, "x", 1, 0, 0)));
	thinp_io_close(io);
	if (!given)
		unlink(path);
}

/* A custom backend: 64 KiB in an array, 512-byte sectors, call counting. */
struct tiny {
	unsigned char bytes[65536];
	unsigned calls;
};

static int tiny_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct tiny *t = ctx;

	t->calls++;
	memcpy(buf, t->bytes + off, len);
	return 0;
}

static int tiny_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct tiny *t = ctx;

	t->calls++;
	memcpy(t->bytes + off, buf, len);
	return 0;
}

static int tiny_flush(void *ctx)
{
	((struct tiny *)ctx)->calls++;
	return 0;
}

static int tiny_size(void *ctx, uint64_t *bytes)
{
	*bytes = sizeof(((struct tiny *)ctx)->bytes);
	return 0;
}

static void demo_custom(void)
{
	static struct tiny t;
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io;
	char sector[512] = "hello, custom backend";
	char buf[512];

	/* No THINP_IO_CAP_THREADSAFE: the handle serializes our calls. No
	 * write_zeroes: the handle writes zeroed buffers for us. */
	ops.align = 512;
	ops.read = tiny_read;
	ops.write = tiny_write;
	ops.flush = tiny_flush;
	ops.size = tiny_size;
	CHECK(thinp_io_new(&io, &ops, &t, 0));
	CHECK(thinp_io_write(io, sector, sizeof(sector), 1024, 0));
	CHECK(thinp_io_read(io, buf, sizeof(buf), 1024, 0));
	CHECK(thinp_io_write_zeroes(io, 4096, 8192, 0));
	printf("custom: read back \"%s\"; the backend saw %u calls\n", buf, t.calls);
	printf("custom: a misaligned write is refused: %s\n",
	       thinp_strerror(thinp_io_write(io, sector, 100, 0, 0)));
	printf("custom: discard without a discard callback: %s\n",
	       thinp_strerror(thinp_io_discard(io, 512, 0, 0)));
	thinp_io_close(io);
}

static void demo_power_cut(void)
{
	thinp_io *disk, *io;
	thinp_io_fault *fault;
	char a[16] = { 0 }, b[16] = { 0 }, c[16] = { 0 };
	uint64_t writes;

	CHECK(thinp_io_open_memory(&disk, 1 << 20, 0));
	CHECK(thinp_io_open_fault(&io, &fault, disk, 0));
	CHECK(thinp_io_write(io, "committed", 9, 0, 0));
	CHECK(thinp_io_flush(io));
	/* FUA: durable on return, as if a flush followed. */
	CHECK(thinp_io_write(io, "forced", 6, 8192, THINP_IO_FUA));
	CHECK(thinp_io_write(io, "in the cache", 12, 4096, 0));
	printf("fault: one write flushed, one pending (%llu pending)\n",
	       (unsigned long long)thinp_io_fault_pending(fault));
	CHECK(thinp_io_read(io, b, 12, 4096, 0));
	printf("fault: before the cut the wrapper reads \"%s\"\n", b);

	CHECK(thinp_io_fault_cut(fault, THINP_IO_FAULT_CUT_DROP, 0));
	printf("fault: power cut (drop unflushed); now every request fails: %s\n",
	       thinp_strerror(thinp_io_read(io, b, 12, 4096, 0)));
	CHECK(thinp_io_fault_counters(fault, THINP_IO_KIND_WRITE, &writes, NULL));
	printf("fault: %llu writes reached the wrapper\n", (unsigned long long)writes);
	thinp_io_close(io);
	thinp_io_fault_free(fault);

	/* "Reboot": look at the device below. */
	memset(b, 0, sizeof(b));
	CHECK(thinp_io_read(disk, a, 9, 0, 0));
	CHECK(thinp_io_read(disk, b, 12, 4096, 0));
	CHECK(thinp_io_read(disk, c, 6, 8192, 0));
	printf("fault: after reboot: flushed \"%s\", FUA \"%s\", unflushed %s\n", a, c,
	       b[0] ? "survived" : "lost");
	thinp_io_close(disk);
}

int main(int argc, char **argv)
{
	printf("libthinp %s\n", thinp_version());
	demo_memory();
	demo_file(argc > 1 ? argv[1] : NULL);
	demo_custom();
	demo_power_cut();
	return 0;
}
