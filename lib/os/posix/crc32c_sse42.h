/* The SSE4.2 CRC-32C of the POSIX backend (lib/os/posix/crc32c_sse42.c). */
#ifndef THINP_OS_POSIX_CRC32C_SSE42_H
#define THINP_OS_POSIX_CRC32C_SSE42_H

#include "os/os.h"

/* The SSE4.2 implementation if this CPU has the instruction, else NULL. */
thinp_os_crc32c_fn thinp_os_posix_crc32c_sse42(void);

#endif
