/*
 * The pool's log queue: how a pool keeps its promise that the caller's log
 * callback runs with no library lock held.
 *
 * Every layer under a pool (the metadata, the block manager, the pool
 * itself) logs through a struct tlog whose function, pool_log_queue(), only
 * appends the message to this queue, under the queue's own mutex, which is
 * innermost of all. Each public pool call, once it holds nothing, calls
 * pool_log_deliver(), which hands the queued messages to the caller's
 * function in order. One thread delivers at a time: a call that finds
 * another delivering leaves its messages to it, and a callback that calls
 * back into the pool adds to the queue that its own caller is draining
 * (no recursion, no deadlock). At most POOL_LOG_MAX messages wait; beyond
 * that they are counted and reported as dropped.
 */
#ifndef THINP_POOL_POOL_LOG_H
#define THINP_POOL_POOL_LOG_H

#include "os/os.h"
#include "util/log.h"

#define POOL_LOG_MAX 256u

struct pool_log_msg;

struct pool_log {
	struct tlog user;            /* the caller's function; immutable */
	struct tlog queue;           /* what the layers log to: pool_log_queue */
	thinp_os_mutex lock;         /* guards everything below */
	struct pool_log_msg *head, **tail;
	unsigned queued, dropped;
	bool delivering;
};

/* A queue in front of the caller's function fn (may be NULL: nothing is
 * kept). Free with pool_log_free(), which delivers what is left. */
int pool_log_new(struct pool_log **out, thinp_log_fn fn, void *ctx);
void pool_log_free(struct pool_log *l);

/* A thinp_log_fn: queue msg (ctx is the struct pool_log). */
void pool_log_queue(int level, const char *msg, void *ctx);

/* Hand the queued messages to the caller's function. Call with no library
 * lock held. */
void pool_log_deliver(struct pool_log *l);

#endif
