/*
 * The delta iterator (libthinp/delta.h) over lib/thin's cursor, for the pool
 * runtime: thin_delta_open is thinp_meta_delta_open with a lock the pool
 * holds shared around each batch (its metadata lock), so a batch sees the
 * pool's metadata between two of its changes.
 */
#ifndef THINP_THIN_DELTA_INTERNAL_H
#define THINP_THIN_DELTA_INTERNAL_H

#include <libthinp/delta.h>

struct thin_delta_lock {
	void (*lock)(void *ctx);
	void (*unlock)(void *ctx);
	void *ctx;
};

/* lock may be NULL (no outer lock). */
int thin_delta_open(thinp_delta **out, thinp_meta *meta, uint64_t left, uint64_t right,
		    const thinp_delta_options *opts, const struct thin_delta_lock *lock);
/* The whole delta through fn, from an opened iterator, which it closes. */
int thin_delta_drain(thinp_delta *d, thinp_delta_fn fn, void *ctx);

#endif
