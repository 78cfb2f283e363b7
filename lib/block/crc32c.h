/*
 * CRC-32C implementations behind crc32c_raw() (declared in bm.h: the host's,
 * thinp_os_crc32c_accel(), where it has one, else the table), exposed so
 * tests and benchmarks can run each one on the same input.
 */
#ifndef THINP_BLOCK_CRC32C_H
#define THINP_BLOCK_CRC32C_H

#include "os/os.h"

/* Portable slice-by-8 table implementation; same contract as crc32c_raw. */
uint32_t crc32c_raw_table(uint32_t seed, const void *data, size_t len);
/* Bytes per stream in one chunk of interleaved streams (a multiple of 8). */
#define CRC32C_STREAM_BYTES 336
/* shift[j][v]: the register (v << 8j) after CRC32C_STREAM_BYTES zero bytes,
 * so shift(x) = shift[0][x & 0xff] ^ ... ^ shift[3][x >> 24]: what a host
 * that computes streams interleaved combines them with. Computed once. */
const uint32_t (*crc32c_stream_shift(void))[256];

#endif
