/*
 * libthinp version: compile-time macros and run-time queries.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 */
#ifndef LIBTHINP_VERSION_H
#define LIBTHINP_VERSION_H

#include <libthinp/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define THINP_VERSION_MAJOR 1
#define THINP_VERSION_MINOR 0
#define THINP_VERSION_PATCH 0
#define THINP_VERSION_STRING "1.0.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for numeric comparisons. */
#define THINP_VERSION_NUMBER \
	(THINP_VERSION_MAJOR * 10000 + THINP_VERSION_MINOR * 100 + THINP_VERSION_PATCH)

/* thinp_version - the library's version string ("1.0.0"), static. Since 1.0. */
THINP_API const char *thinp_version(void);

/* thinp_version_number - THINP_VERSION_NUMBER of the library actually loaded,
 * which may be newer than the headers a program was built with. Since 1.0. */
THINP_API int thinp_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
