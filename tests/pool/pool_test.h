/* Shared helpers of the pool tests: a pool over the metadata model and a
 * data device that loses unflushed writes on "power loss" and counts. */
#ifndef THINP_TESTS_POOL_POOL_TEST_H
#define THINP_TESTS_POOL_POOL_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <libthinp/thinp.h>
#include "pool/md_model.h"

/*
 * A RAM device with a volatile cache: writes land in `cur`; flush copies
 * `cur` into `durable`; crashdev_power_loss() throws `cur` away. Counts
 * discards (bytes), flushes and writes; can fail flushes on request.
 * Thread-safe (one mutex).
 */
struct crashdev;
int crashdev_open(thinp_io **out, uint64_t size, bool discard, struct crashdev **dev);
void crashdev_power_loss(struct crashdev *d);
uint64_t crashdev_discarded_bytes(struct crashdev *d);
uint64_t crashdev_flushes(struct crashdev *d);
void crashdev_fail_flushes(struct crashdev *d, bool fail);

#define TEST_BS (64u * 1024)

struct tpool {
	struct md_store *store;
	thinp_io *data;
	struct crashdev *dev;
	thinp_pool *pool;
	thinp_pool_options opts;
};

/* A store with `blocks` data blocks of TEST_BS over a crashdev, and a pool
 * on it (opts may be NULL). */
void tpool_setup(struct tpool *t, uint64_t blocks, const thinp_pool_options *opts);
/* Open the pool again from the store (after tpool_close or a crash). */
void tpool_open(struct tpool *t);
/* Close the pool (asserting success) but keep the store and device. */
void tpool_close(struct tpool *t);
/* Power loss: drop the pool without committing, drop unflushed data. */
void tpool_crash(struct tpool *t);
void tpool_teardown(struct tpool *t);
/* Check the model metadata's invariants on the open pool. */
void tpool_check_md(struct tpool *t);

thinp_thin *topen(thinp_pool *pool, uint64_t id, uint64_t size, thinp_io *origin);

#endif
