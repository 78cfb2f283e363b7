/* Small compiler helpers shared by every layer. */
#ifndef THINP_UTIL_COMPILER_H
#define THINP_UTIL_COMPILER_H

#include "os/os.h"

#define THINP_PACKED __attribute__((packed))
#define THINP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define THINP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define THINP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define THINP_UNUSED __attribute__((unused))
#define THINP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define THINP_CONTAINER_OF(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
