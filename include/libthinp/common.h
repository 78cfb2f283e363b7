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
 * specific meaning (see above) get that meaning; others get a generic text.
 * Since 1.0.
 */
THINP_API const char *thinp_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
