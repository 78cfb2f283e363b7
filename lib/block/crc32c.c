/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * dm-thin metadata block.
 *
 * Two implementations compute the same register value:
 *  - slice-by-8: eight 256-entry tables let the loop consume 8 bytes per step
 *    with independent lookups instead of one dependent lookup per byte. The
 *    tables are computed once (pthread_once) and never written again.
 *  - the host's: thinp_os_crc32c_accel() (lib/os/os.h), when it has one:
 *    the SSE4.2 instruction in user space on x86 (lib/os/posix/
 *    crc32c_sse42.c), the kernel's crc32c() in a module. A host that
 *    interleaves streams combines them with crc32c_stream_shift(): the CRC is
 *    linear, so crc(A||B) = shift(crc(A), |B|) ^ crc0(B), where crc0 starts
 *    from a zero register and shift() appends |B| zero bytes, a fixed linear
 *    map for a fixed length: four 256-entry tables, computed here once.
 * Both work on the raw register (no pre/post inversion), which is what the
 * format's "raw(x) XOR salt" needs.
 */
#include "os/os.h"

#include "block/bm.h"
#include "block/crc32c.h"
#include "util/endian.h"

#define CRC32C_POLY 0x82F63B78u

struct crc32c_tables {
	uint32_t t[8][256];
	/* shift[j][v]: the register (v << 8j) after CRC32C_STREAM_BYTES zero bytes. */
	uint32_t shift[4][256];
};

static struct crc32c_tables tables;
static thinp_os_once_flag tables_once = THINP_OS_ONCE_INIT;

/* The register x after n zero bytes, byte by byte with t[0]. */
static uint32_t zeros_after(uint32_t x, size_t n)
{
	while (n--)
		x = (x >> 8) ^ tables.t[0][x & 0xff];
	return x;
}

static void init_shift_tables(void)
{
	uint32_t bit[32];

	/* The map is linear: build each entry from the images of single bits. */
	for (int i = 0; i < 32; i++)
		bit[i] = zeros_after(1u << i, CRC32C_STREAM_BYTES);
	for (int j = 0; j < 4; j++)
		for (unsigned v = 0; v < 256; v++) {
			uint32_t x = 0;

			for (int i = 0; i < 8; i++)
				if (v & (1u << i))
					x ^= bit[8 * j + i];
			tables.shift[j][v] = x;
		}
}

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
	init_shift_tables();
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

	thinp_os_once(&tables_once, init_tables);
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

const uint32_t (*crc32c_stream_shift(void))[256]
{
	thinp_os_once(&tables_once, init_tables);
	return tables.shift;
}

uint32_t crc32c_raw(uint32_t seed, const void *data, size_t len)
{
	thinp_os_crc32c_fn fn = thinp_os_crc32c_accel();

	return fn ? fn(seed, data, len) : crc32c_raw_table(seed, data, len);
}

uint32_t block_csum(const void *data, uint32_t salt)
{
	return crc32c_raw(0xFFFFFFFFu, (const unsigned char *)data + 4,
			  THINP_BLOCK_SIZE - 4) ^ salt;
}
