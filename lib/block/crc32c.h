/*
 * CRC-32C implementations behind crc32c_raw() (declared in bm.h), exposed so
 * tests and benchmarks can run each one on the same input.
 */
#ifndef THINP_BLOCK_CRC32C_H
#define THINP_BLOCK_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Portable slice-by-8 table implementation; same contract as crc32c_raw. */
uint32_t crc32c_raw_table(uint32_t seed, const void *data, size_t len);
/* True if this CPU has the SSE4.2 crc32 instruction (always false off x86). */
bool crc32c_have_sse42(void);
/* The SSE4.2 implementation; falls back to the table when
 * crc32c_have_sse42() is false, so it is always safe to call. */
uint32_t crc32c_raw_sse42(uint32_t seed, const void *data, size_t len);

#endif
