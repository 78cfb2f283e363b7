/*
 * CRC-32C with the SSE4.2 crc32 instruction, 8 bytes per instruction: the
 * POSIX backend's thinp_os_crc32c_accel(), NULL off x86 (host-specific:
 * compiler intrinsics, CPUID). Compiled with a per-function target attribute so the
 * rest of the library keeps the baseline ISA. The instruction has a latency
 * of about three cycles but issues every cycle, so long inputs are cut in
 * chunks of three streams computed interleaved and combined with
 * crc32c_stream_shift() (lib/block/crc32c.c explains the algebra).
 */
#include "os/os.h"
#include "block/crc32c.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>

static uint32_t shift_stream(const uint32_t (*shift)[256], uint32_t x)
{
	return shift[0][x & 0xff] ^ shift[1][(x >> 8) & 0xff] ^ shift[2][(x >> 16) & 0xff] ^
	       shift[3][x >> 24];
}

#if defined(__x86_64__)
/* Whole chunks of 3 * CRC32C_STREAM_BYTES; returns the register, advances *pp. */
__attribute__((target("sse4.2")))
static uint32_t sse42_three_streams(uint32_t crc, const unsigned char **pp, size_t *lenp)
{
	const unsigned char *p = *pp;
	size_t len = *lenp;

	const uint32_t (*shift)[256] = crc32c_stream_shift();

	for (; len >= 3 * CRC32C_STREAM_BYTES; len -= 3 * CRC32C_STREAM_BYTES, p += 3 * CRC32C_STREAM_BYTES) {
		uint64_t a = crc, b = 0, c = 0;

		for (size_t i = 0; i < CRC32C_STREAM_BYTES; i += 8) {
			uint64_t wa, wb, wc;

			memcpy(&wa, p + i, 8);
			memcpy(&wb, p + CRC32C_STREAM_BYTES + i, 8);
			memcpy(&wc, p + 2 * CRC32C_STREAM_BYTES + i, 8);
			a = _mm_crc32_u64(a, wa);
			b = _mm_crc32_u64(b, wb);
			c = _mm_crc32_u64(c, wc);
		}
		crc = shift_stream(shift, shift_stream(shift, (uint32_t)a) ^ (uint32_t)b) ^
		      (uint32_t)c;
	}
	*pp = p;
	*lenp = len;
	return crc;
}
#endif

__attribute__((target("sse4.2")))
static uint32_t sse42_impl(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len && ((uintptr_t)p & 7)) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
#if defined(__x86_64__)
	if (len >= 3 * CRC32C_STREAM_BYTES)
		crc = sse42_three_streams(crc, &p, &len);
	{
		uint64_t c64 = crc;
		uint64_t w;

		for (; len >= 8; len -= 8, p += 8) {
			memcpy(&w, p, 8);
			c64 = _mm_crc32_u64(c64, w);
		}
		crc = (uint32_t)c64;
	}
#endif
	for (; len >= 4; len -= 4, p += 4) {
		uint32_t w;

		memcpy(&w, p, 4);
		crc = _mm_crc32_u32(crc, w);
	}
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}

thinp_os_crc32c_fn thinp_os_crc32c_accel(void)
{
	/* __builtin_cpu_supports reads a table libgcc fills at start-up: cheap
	 * enough to ask on every checksum. */
	return __builtin_cpu_supports("sse4.2") ? sse42_impl : NULL;
}
#else
thinp_os_crc32c_fn thinp_os_crc32c_accel(void)
{
	return NULL;
}
#endif
