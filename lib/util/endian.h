/*
 * Little-endian on-disk integers. Every multi-byte integer in the dm-thin
 * format is little-endian; wrapping them in one-member structs makes raw use
 * in arithmetic a compile error, so every access goes through a conversion.
 */
#ifndef THINP_UTIL_ENDIAN_H
#define THINP_UTIL_ENDIAN_H

#include "os/os.h"

typedef struct { uint32_t v; } le32;
typedef struct { uint64_t v; } le64;

static inline uint32_t le32_to_cpu(le32 x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return x.v;
#else
	return __builtin_bswap32(x.v);
#endif
}

static inline le32 cpu_to_le32(uint32_t x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (le32){ x };
#else
	return (le32){ __builtin_bswap32(x) };
#endif
}

static inline uint64_t le64_to_cpu(le64 x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return x.v;
#else
	return __builtin_bswap64(x.v);
#endif
}

static inline le64 cpu_to_le64(uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (le64){ x };
#else
	return (le64){ __builtin_bswap64(x) };
#endif
}

/* Unaligned loads/stores of little-endian values from byte buffers. */
static inline uint64_t load_le64(const void *p)
{
	le64 x;
	memcpy(&x, p, sizeof(x));
	return le64_to_cpu(x);
}

static inline void store_le64(void *p, uint64_t v)
{
	le64 x = cpu_to_le64(v);
	memcpy(p, &x, sizeof(x));
}

static inline uint32_t load_le32(const void *p)
{
	le32 x;
	memcpy(&x, p, sizeof(x));
	return le32_to_cpu(x);
}

static inline void store_le32(void *p, uint32_t v)
{
	le32 x = cpu_to_le32(v);
	memcpy(p, &x, sizeof(x));
}

#endif
