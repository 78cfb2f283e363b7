/*
 * A program outside the tree: it sees only the installed headers and links
 * only -lthinp. Built two ways by tests/build/:
 *   install-test.sh: against the headers and library `make install` wrote,
 *                    found with nothing but pkg-config;
 *   old-client.sh:   against the headers of the last release (abi/include/),
 *                    then run against the library just built, as a program
 *                    compiled years ago would be.
 * It therefore uses only interfaces of the first release (1.0) and must keep
 * compiling against abi/include/.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libthinp/thinp.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "client: %s:%d: %s\n", __FILE__,       \
				__LINE__, #cond);                              \
			return 1;                                              \
		}                                                              \
	} while (0)

/* A backend of our own: 64 KiB in a static array. Its thinp_io_ops is the
 * size this program was compiled with, which the library must accept even
 * when its own struct has grown since. */
static unsigned char disk[64 * 1024];
static int closed;

static int d_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	(void)ctx;
	memcpy(buf, disk + off, len);
	return 0;
}

static int d_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	(void)ctx;
	memcpy(disk + off, buf, len);
	return 0;
}

static int d_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static int d_size(void *ctx, uint64_t *bytes)
{
	(void)ctx;
	*bytes = sizeof(disk);
	return 0;
}

static void d_close(void *ctx)
{
	(void)ctx;
	closed++;
}

static int own_backend(void)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io = NULL;
	char buf[512], back[512];

	ops.align = 512;
	ops.read = d_read;
	ops.write = d_write;
	ops.flush = d_flush;
	ops.size = d_size;
	ops.close = d_close;
	CHECK(thinp_io_new(&io, &ops, NULL, 0) == 0);
	memset(buf, 0xa5, sizeof(buf));
	CHECK(thinp_io_write(io, buf, sizeof(buf), 4096, 0) == 0);
	CHECK(thinp_io_flush(io) == 0);
	CHECK(thinp_io_read(io, back, sizeof(back), 4096, 0) == 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	CHECK(disk[4096] == 0xa5);
	/* The handle enforces the backend's alignment and size. */
	CHECK(thinp_io_read(io, back, 100, 0, 0) == -EINVAL);
	CHECK(thinp_io_read(io, back, sizeof(back), sizeof(disk), 0) == -EINVAL);
	/* No discard callback: the library says so. */
	CHECK(thinp_io_discard(io, 512, 0, 0) == -EOPNOTSUPP);
	thinp_io_close(io);
	CHECK(closed == 1);
	return 0;
}

static int memory_backend(void)
{
	thinp_io *io = NULL;
	uint64_t size = 0;
	char buf[100], back[100];

	CHECK(thinp_io_open_memory(&io, 1 << 20, 0) == 0);
	CHECK(thinp_io_size(io, &size) == 0 && size == 1 << 20);
	memcpy(buf, "hello from outside the tree", 28);
	CHECK(thinp_io_write(io, buf, 28, 12345, 0) == 0);
	CHECK(thinp_io_read(io, back, 28, 12345, 0) == 0);
	CHECK(memcmp(buf, back, 28) == 0);
	thinp_io_close(io);
	thinp_io_close(NULL);
	return 0;
}

int main(void)
{
	/* The library loaded may be newer than our headers, never older. */
	CHECK(thinp_version_number() >= THINP_VERSION_NUMBER);
	CHECK(thinp_version() != NULL);
	CHECK(strcmp(thinp_strerror(-EILSEQ), thinp_strerror(-ENOSPC)) != 0);
	if (own_backend() || memory_backend())
		return 1;
	printf("client: built against libthinp %s, running %s: ok\n",
	       THINP_VERSION_STRING, thinp_version());
	return 0;
}
