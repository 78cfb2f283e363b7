/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * dm-thin metadata block.
 *
 * Two implementations compute the same register value:
 *  - slice-by-8: eight 256-entry tables let the loop consume 8 bytes per step
 *    with independent lookups instead of one dependent lookup per byte. The
 *    tables are computed once (pthread_once) and never written again.
 *  - SSE4.2: the crc32 instruction, 8 bytes per instruction. Compiled with a
 *    per-function target attribute so the rest of the library keeps the
 *    baseline ISA; chosen at run time by CPUID.
 * Both work on the raw register (no pre/post inversion), which is what the
 * format's "raw(x) XOR salt" needs.
 */
#include <pthread.h>
#include <string.h>

#include "block/bm.h"
#include "block/crc32c.h"
#include "util/endian.h"

#define CRC32C_POLY 0x82F63B78u

struct crc32c_tables {
	uint32_t t[8][256];
};

static struct crc32c_tables tables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		tables.t[0][i] = c;
	}
	/* t[k][i]: the register contribution of byte i followed by k zero bytes. */
	for (unsigned i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			tables.t[k][i] = (tables.t[k - 1][i] >> 8) ^
					 tables.t[0][tables.t[k - 1][i] & 0xff];
}

static uint32_t table_bytes(const uint32_t (*t)[256], uint32_t crc,
			    const unsigned char *p, size_t len)
{
	while (len--)
		crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
	return crc;
}

uint32_t crc32c_raw_table(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	const uint32_t (*t)[256];

	pthread_once(&tables_once, init_tables);
	t = tables.t;
	/* Byte-wise up to 8-byte alignment so the word loads are aligned. */
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
		len--;
	}
	for (; len >= 8; len -= 8, p += 8) {
		uint32_t lo = load_le32(p) ^ crc;
		uint32_t hi = load_le32(p + 4);

		crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^
		      t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
		      t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
		      t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
	}
	return table_bytes(t, crc, p, len);
}

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>

bool crc32c_have_sse42(void)
{
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
static uint32_t sse42_impl(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
#if defined(__x86_64__)
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

uint32_t crc32c_raw_sse42(uint32_t crc, const void *data, size_t len)
{
	if (!crc32c_have_sse42())
		return crc32c_raw_table(crc, data, len);
	return sse42_impl(crc, data, len);
}
#else
bool crc32c_have_sse42(void)
{
	return false;
}

uint32_t crc32c_raw_sse42(uint32_t crc, const void *data, size_t len)
{
	return crc32c_raw_table(crc, data, len);
}
#endif

uint32_t crc32c_raw(uint32_t seed, const void *data, size_t len)
{
	/* __builtin_cpu_supports reads a table libgcc fills at start-up: cheap. */
	return crc32c_raw_sse42(seed, data, len);
}

uint32_t block_csum(const void *data, uint32_t salt)
{
	return crc32c_raw(0xFFFFFFFFu, (const unsigned char *)data + 4,
			  THINP_BLOCK_SIZE - 4) ^ salt;
}
