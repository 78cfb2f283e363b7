/*
 * Is a buffer all zero bytes? One test shared by the layers that look for
 * zeroes (the memory backend's is_zero, the stream's reserved fields, send's
 * ZERO records).
 */
#ifndef THINP_UTIL_ZEROES_H
#define THINP_UTIL_ZEROES_H

#include "os/os.h"

/* Every byte after the first equals the one before it, and the first is 0:
 * memcmp of the buffer against itself shifted by one, which runs at memcmp's
 * speed instead of a byte loop's. */
static inline bool thinp_is_zeroes(const void *p, size_t len)
{
	const unsigned char *b = p;

	return len == 0 || (b[0] == 0 && !memcmp(b, b + 1, len - 1));
}

#endif
