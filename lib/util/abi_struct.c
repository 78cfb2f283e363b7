/*
 * The copy-in and copy-out of structs that cross the ABI (see abi_struct.h).
 * Fields are read with memcpy, not through a cast: the caller's struct is of
 * its own, possibly older, type.
 */
#include "os/os.h"

#include "util/abi_struct.h"
#include "util/compiler.h"

/* The leading uint32_t struct_size and, after it, version. */
static uint32_t field32(const void *s, size_t index)
{
	uint32_t v;

	memcpy(&v, (const unsigned char *)s + index * sizeof(v), sizeof(v));
	return v;
}

/* A caller's struct_size, if the struct is there and at least min_size
 * bytes; 0 if not. */
static uint32_t caller_size(const void *s, size_t min_size)
{
	uint32_t n;

	if (!s)
		return 0;
	n = field32(s, 0);
	return n >= min_size && n >= sizeof(uint32_t) ? n : 0;
}

/* Set the struct_size of the struct at p. */
static void set_size(void *p, uint32_t n)
{
	memcpy(p, &n, sizeof(n));
}

int thinp_abi_copy_in(void *dst, size_t size, const void *src, size_t min_size,
		      uint32_t version)
{
	uint32_t n = caller_size(src, min_size);

	if (!n || (version && (n < 2 * sizeof(uint32_t) || field32(src, 1) != version)))
		return -EINVAL;
	memset(dst, 0, size);
	memcpy(dst, src, THINP_MIN((size_t)n, size));
	set_size(dst, (uint32_t)size);
	return 0;
}

int thinp_abi_copy_out(void *dst, const void *src, size_t size, size_t min_size)
{
	uint32_t n = caller_size(dst, min_size);

	if (!n)
		return -EINVAL;
	if (!src)
		return 0;
	n = (uint32_t)THINP_MIN((size_t)n, size);
	memcpy(dst, src, n);
	set_size(dst, n);
	return 0;
}

size_t thinp_abi_copy_string(char *buf, size_t len, const char *s, thinp_os_mutex *lock)
{
	size_t n;

	if (lock)
		thinp_os_mutex_lock(lock);
	n = strlen(s);
	if (len) {
		size_t k = THINP_MIN(n, len - 1);

		memcpy(buf, s, k);
		buf[k] = '\0';
	}
	if (lock)
		thinp_os_mutex_unlock(lock);
	return n;
}
