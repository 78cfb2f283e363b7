/* The file backend's transfer loop, exposed so tests can feed it short
 * transfers and EINTR that a real file rarely produces. */
#ifndef THINP_IO_FILE_XFER_H
#define THINP_IO_FILE_XFER_H

#include <stdint.h>
#include <sys/types.h>

/* One pread/pwrite-like call: returns bytes moved, 0 at end of file, or -1
 * with errno set. `ctx` is the loop's caller's. */
typedef ssize_t (*thinp_xfer_fn)(int fd, void *buf, size_t len, off_t off, void *ctx);

/*
 * Move exactly len bytes at off through fn, calling it again after a short
 * transfer or EINTR. Returns 0; -EIO if fn moves nothing (the file ended
 * early: it shrank behind the handle's back); or -errno from fn.
 */
int thinp_file_xfer(thinp_xfer_fn fn, void *ctx, int fd, void *buf, uint64_t len,
		    uint64_t off);

#endif
