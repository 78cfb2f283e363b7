/* thinp_strerror: the library's meaning for each errno it returns. */
#include <errno.h>
#include <string.h>

#include <libthinp/common.h>

static const struct {
	int err;
	const char *msg;
} meanings[] = {
	{ ENODATA, "no such key, mapping or device" },
	{ ENOSPC, "out of data or metadata space" },
	{ EILSEQ, "metadata block failed its checksum or structure check" },
	{ ENOTBLK, "metadata block records a different location" },
	{ EEXIST, "id already in use" },
	{ EBUSY, "device open or resource held" },
	{ EROFS, "read-only, or the pool dropped to read-only/failed mode" },
	{ EINVAL, "invalid argument" },
	{ ENOMEM, "out of memory" },
	{ EIO, "I/O error" },
	{ EOPNOTSUPP, "operation not supported" },
	{ ETIMEDOUT, "timed out" },
};

const char *thinp_strerror(int err)
{
	size_t i;

	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	for (i = 0; i < sizeof(meanings) / sizeof(meanings[0]); i++)
		if (meanings[i].err == err)
			return meanings[i].msg;
	return "unknown error";
}
