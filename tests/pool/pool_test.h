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
uint64_t crashdev_reads(struct crashdev *d);
/* While held, flushes block (neither failing nor settling) until released. */
void crashdev_hold_flushes(struct crashdev *d, bool hold);
/* Wait until n flushes are blocked by the hold (fails after TEST_WAIT_SECONDS). */
void crashdev_wait_held(struct crashdev *d, unsigned n);
/* Write the device's current contents to a file. */
void crashdev_save(struct crashdev *d, const char *path);

#define TEST_BS (64u * 1024)

/* Waits for another thread poll with this generous bound and fail only if
 * the event never comes: they assert that it happens, never how fast. */
#define TEST_WAIT_SECONDS 10

struct tpool {
	struct md_store *store;   /* model metadata (NULL with real metadata) */
	thinp_io *meta;           /* real metadata: a crash device */
	struct crashdev *meta_dev;
	thinp_io *data;
	struct crashdev *dev;
	thinp_pool *pool;
	thinp_pool_options opts;
	/* Real metadata: set by tpool_setup_real (pool_test_real.c). */
	int (*open_real)(struct tpool *t);
	void (*check_real)(struct tpool *t);
};

/* A store with `blocks` data blocks of TEST_BS over a crashdev, and a pool
 * on it (opts may be NULL). */
void tpool_setup(struct tpool *t, uint64_t blocks, const thinp_pool_options *opts);
/* (pool_test_real.c) The same over real dm-thin metadata (meta_bytes of crash device),
 * formatted with thinp_pool_format(). */
void tpool_setup_real(struct tpool *t, uint64_t blocks, uint64_t meta_bytes,
		      const thinp_pool_options *opts);
/* Commits made so far (model: the store's count; real: metadata flushes).
 * Not while a pool thread may commit (the model's count has no lock). */
uint64_t tpool_commits(struct tpool *t);
/* Wait until no metadata change is left uncommitted (the periodic commit
 * thread's work, when nothing else writes); fails after TEST_WAIT_SECONDS. */
void tpool_wait_md_clean(struct tpool *t);
/* Wait until n callers are waiting for the running commit to end. */
void tpool_wait_commit_waiters(struct tpool *t, unsigned n);
/* Run /usr/sbin/thin_check on the real metadata's current image; returns
 * its exit status, or -1 (with a message) if thin_check is not installed. */
int tpool_thin_check(struct tpool *t);

/* Open the pool again from the store (after tpool_close or a crash). */
void tpool_open(struct tpool *t);
/* Close the pool (asserting success) but keep the store and device. */
void tpool_close(struct tpool *t);
/* Power loss: drop the pool without committing, drop unflushed data. */
void tpool_crash(struct tpool *t);
void tpool_teardown(struct tpool *t);
/* Check the metadata: the model's invariants, or for real metadata
 * libthinp's full check and thin_check (the pool must be idle). */
void tpool_check_md(struct tpool *t);

thinp_thin *topen(thinp_pool *pool, uint64_t id, uint64_t size, thinp_io *origin);

#endif
