/*
 * libthinp common definitions: export macro, error strings, logging.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * Conventions for the whole public API:
 *  - functions return 0 on success or a negative errno value;
 *  - results come back through "out" parameters placed first; what they point
 *    at belongs to the caller and is freed by the matching close/free call;
 *  - structs the caller fills in begin with their size or version so that they
 *    can grow without breaking compiled callers;
 *  - the library never prints and never exits; messages go to a log callback
 *    that the caller sets on a handle (see thinp_log_fn).
 *
 * Error codes and their one meaning each:
 *   -ENODATA  no such key, mapping or device
 *   -ENOSPC   out of data or metadata space
 *   -EILSEQ   a metadata block failed its checksum or structure check
 *   -ENOTBLK  a metadata block records a location other than where it was read
 *   -EEXIST   id already in use
 *   -EBUSY    device open, or resource held
 *   -EROFS    read-only handle, or a pool dropped to read-only/failed mode
 *   -EINVAL   misuse: bad argument, bad alignment, unknown struct version
 *   -ENOMEM   allocation failed
 *   -EIO      an I/O error from a backend
 * and, from fewer places:
 *   -EOPNOTSUPP  not supported by the backend or the pool's features
 *                (-ENOTSUP is the same code on Linux)
 *   -EAGAIN   a pool thread could not be started
 *   -EOVERFLOW  a reference count would overflow
 *   -ERANGE   a number in a message is too large
 *   -EFBIG    a size beyond what the device can hold
 * A file backend passes other errors of the system calls it makes (open(2):
 * -ENOENT, -EACCES, ...; I/O: -ENOSPC, -EIO, ...) through unchanged.
 */
#ifndef LIBTHINP_COMMON_H
#define LIBTHINP_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define THINP_API __attribute__((visibility("default")))
#else
#define THINP_API
#endif

/* Log levels passed to thinp_log_fn. */
#define THINP_LOG_ERROR 0
#define THINP_LOG_WARNING 1
#define THINP_LOG_INFO 2
#define THINP_LOG_DEBUG 3

/*
 * A log callback. `level` is one of THINP_LOG_*, `msg` a NUL-terminated line
 * without trailing newline, valid only during the call. Called from whichever
 * thread hit the event, with no library lock held unless documented otherwise.
 */
typedef void (*thinp_log_fn)(int level, const char *msg, void *ctx);

/*
 * thinp_strerror - describe an error code returned by libthinp.
 * @err: a negative errno as returned by the library (a positive one is
 *       accepted too).
 * Returns a static string, never NULL; thread-safe. Codes the library gives a
 * meaning (the list above) get that meaning, word for word; any other code
 * gets the C library's description (through a thread-safe call, never
 * strerror()), and a code the C library does not know "unknown error".
 * 0 gives "success". Since 1.0.
 */
THINP_API const char *thinp_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
