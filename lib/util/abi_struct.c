/*
 * The copy-in and copy-out of structs that cross the ABI (see abi_struct.h).
 * Fields are read with memcpy, not through a cast: the caller's struct is of
 * its own, possibly older, type.
 */
#include <errno.h>
#include <string.h>

#include "util/abi_struct.h"
#include "util/compiler.h"

/* The leading uint32_t struct_size and, after it, version. */
static uint32_t field32(const void *s, size_t index)
{
	uint32_t v;

	memcpy(&v, (const unsigned char *)s + index * sizeof(v), sizeof(v));
	return v;
}

int thinp_abi_copy_in(void *dst, size_t size, const void *src, size_t min_size,
		      uint32_t version)
{
	uint32_t struct_size;

	if (!src)
		return -EINVAL;
	struct_size = field32(src, 0);
	if (struct_size < min_size || struct_size < sizeof(uint32_t))
		return -EINVAL;
	if (version && (struct_size < 2 * sizeof(uint32_t) || field32(src, 1) != version))
		return -EINVAL;
	memset(dst, 0, size);
	memcpy(dst, src, THINP_MIN((size_t)struct_size, size));
	struct_size = (uint32_t)size;
	memcpy(dst, &struct_size, sizeof(struct_size));
	return 0;
}

size_t thinp_abi_copy_string(char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (len) {
		size_t k = THINP_MIN(n, len - 1);

		memcpy(buf, s, k);
		buf[k] = '\0';
	}
	return n;
}

int thinp_abi_copy_out(void *dst, const void *src, size_t size, size_t min_size)
{
	uint32_t n;

	if (!dst)
		return -EINVAL;
	n = field32(dst, 0);
	if (n < min_size || n < sizeof(uint32_t))
		return -EINVAL;
	if (!src)
		return 0;
	n = (uint32_t)THINP_MIN((size_t)n, size);
	memcpy(dst, src, n);
	memcpy(dst, &n, sizeof(n));
	return 0;
}
