/*
 * A mapping-lookup cache in front of a pool_md (see map_cache.c).
 */
#ifndef THINP_POOL_MAP_CACHE_H
#define THINP_POOL_MAP_CACHE_H

#include "pool/pool_md.h"

/* Wrap inner: *out answers every operation through inner, repeated lookups
 * of mapped blocks from memory. *out owns inner (its destroy destroys
 * inner). -ENOMEM, inner untouched. */
int map_cache_wrap(struct pool_md *inner, struct pool_md **out);

/* The pool_md a cache wraps; md itself if it is not a cache (for tests that
 * inspect their model). */
struct pool_md *map_cache_inner(struct pool_md *md);

#endif
