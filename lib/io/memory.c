/*
 * The memory backend: a device held in one calloc'd buffer. It is the
 * reference backend for tests and embedding; a rwlock lets reads run in
 * parallel, so it declares itself thread-safe. Resize reallocates the buffer
 * under the write lock, which is why even size() takes the lock.
 */
#include "os/os.h"

#include <libthinp/io.h>
#include "util/zeroes.h"

struct memdev {
	thinp_os_rwlock lock; /* guards size and bytes[] (resize moves it) */
	uint64_t size;
	unsigned char *bytes;
};

static int mem_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct memdev *m = ctx;

	thinp_os_rwlock_read_lock(&m->lock);
	memcpy(buf, m->bytes + off, len);
	thinp_os_rwlock_read_unlock(&m->lock);
	return 0;
}

static int mem_write(void *ctx, const void *buf, uint64_t len, uint64_t off,
		     uint32_t flags)
{
	struct memdev *m = ctx;

	thinp_os_rwlock_write_lock(&m->lock);
	memcpy(m->bytes + off, buf, len);
	thinp_os_rwlock_write_unlock(&m->lock);
	return 0;
}

/* Discard and write-zeroes alike; the buffer is never deallocated, so
 * THINP_IO_NO_UNMAP holds. */
static int mem_zero(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct memdev *m = ctx;

	thinp_os_rwlock_write_lock(&m->lock);
	memset(m->bytes + off, 0, len);
	thinp_os_rwlock_write_unlock(&m->lock);
	return 0;
}

/* RAM is as durable as it gets for this backend, so every request is
 * already FUA. */
/* Comparing memory with zero costs less than the zeroing it may spare. */
static int mem_is_zero(void *ctx, uint64_t len, uint64_t off)
{
	struct memdev *m = ctx;
	bool zero;

	thinp_os_rwlock_read_lock(&m->lock);
	zero = thinp_is_zeroes(m->bytes + off, len);
	thinp_os_rwlock_read_unlock(&m->lock);
	return zero;
}

static int mem_flush(void *ctx)
{
	return 0;
}

static int mem_size(void *ctx, uint64_t *bytes)
{
	struct memdev *m = ctx;

	thinp_os_rwlock_read_lock(&m->lock);
	*bytes = m->size;
	thinp_os_rwlock_read_unlock(&m->lock);
	return 0;
}

static int mem_resize(void *ctx, uint64_t bytes)
{
	struct memdev *m = ctx;
	unsigned char *p;

	if (bytes > SIZE_MAX)
		return -ENOMEM;
	thinp_os_rwlock_write_lock(&m->lock);
	p = thinp_os_realloc(m->bytes, m->size, bytes ? bytes : 1);
	if (!p) {
		thinp_os_rwlock_write_unlock(&m->lock);
		return -ENOMEM;
	}
	if (bytes > m->size)
		memset(p + m->size, 0, bytes - m->size);
	m->bytes = p;
	m->size = bytes;
	thinp_os_rwlock_write_unlock(&m->lock);
	return 0;
}

static void mem_close(void *ctx)
{
	struct memdev *m = ctx;

	thinp_os_rwlock_destroy(&m->lock);
	thinp_os_free(m->bytes);
	thinp_os_free(m);
}

int thinp_io_open_memory(thinp_io **out, uint64_t size, uint32_t flags)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct memdev *m;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (size > SIZE_MAX)
		return -ENOMEM;
	m = thinp_os_zalloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->bytes = thinp_os_zalloc(size ? size : 1);
	if (!m->bytes) {
		thinp_os_free(m);
		return -ENOMEM;
	}
	m->size = size;
	thinp_os_rwlock_init(&m->lock);
	ops.caps = THINP_IO_CAP_DISCARD | THINP_IO_CAP_DISCARD_ZEROES |
		   THINP_IO_CAP_WRITE_ZEROES | THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_FUA;
	ops.read = mem_read;
	ops.write = mem_write;
	ops.flush = mem_flush;
	ops.size = mem_size;
	ops.discard = mem_zero;
	ops.write_zeroes = mem_zero;
	ops.close = mem_close;
	ops.resize = mem_resize;
	ops.is_zero = mem_is_zero;
	r = thinp_io_new(out, &ops, m, flags);
	if (r)
		mem_close(m);
	return r;
}
