/*
 * thinp_strerror: the library's meaning for each errno it returns, and the C
 * host's description for the rest (open(2) errors and others a file
 * backend passes through unchanged).
 */
#include "os/os.h"

#include <libthinp/common.h>

/* The texts are common.h's list, word for word (tests/util checks). */
static const struct {
	int err;
	const char *msg;
} meanings[] = {
	{ ENODATA, "no such key, mapping or device" },
	{ ENOSPC, "out of data or metadata space" },
	{ EILSEQ, "a metadata block failed its checksum or structure check" },
	{ ENOTBLK, "a metadata block records a location other than where it was read" },
	{ EEXIST, "id already in use" },
	{ EBUSY, "device open, or resource held" },
	{ EROFS, "read-only handle, or a pool dropped to read-only/failed mode" },
	{ EINVAL, "misuse: bad argument, bad alignment, unknown struct version" },
	{ ENOMEM, "allocation failed" },
	{ EIO, "an I/O error from a backend" },
	{ EOPNOTSUPP, "not supported by the backend or the pool's features" },
	{ EAGAIN, "a pool thread could not be started" },
	{ EOVERFLOW, "a reference count would overflow" },
	{ ERANGE, "a number in a message is too large" },
	{ EFBIG, "a size beyond what the device can hold" },
};

const char *thinp_strerror(int err)
{
	const char *host;
	size_t i;

	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	for (i = 0; i < sizeof(meanings) / sizeof(meanings[0]); i++)
		if (meanings[i].err == err)
			return meanings[i].msg;
	host = thinp_os_strerror(err);
	return host ? host : "unknown error";
}
