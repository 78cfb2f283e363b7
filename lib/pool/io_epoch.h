/*
 * I/O epochs: which data I/Os are still in flight, in the coarse form the
 * pool needs to order metadata changes after them without holding a lock
 * across them (the kernel's deferred sets, in a simpler shape).
 *
 * Time is cut into numbered epochs. A data I/O enters the current epoch
 * before it starts and leaves it when it is done. io_epoch_close() ends the
 * current epoch and returns its number p: every I/O that entered before the
 * call has an epoch <= p, every later one > p. io_epoch_wait(p) returns once
 * all I/Os of epochs <= p have left; io_epoch_passed(p) asks without
 * waiting. So "wait for every I/O that was in flight at moment M" is: close
 * at M, wait later.
 *
 * Costs: enter, leave and close take one mutex for O(1) work (close O(ring)
 * at worst when it moves past drained epochs). At most IO_EPOCH_RING epochs
 * can have I/O in flight at once: a close that would make more waits until
 * the oldest drains (an I/O that stays in flight across 63 closes; the
 * callers close epochs only at commits, snapshots and discard batches).
 *
 * Deadlock rule: a thread inside an epoch must not wait for anything that
 * can wait for epochs (a metadata lock, the commit, a range lock): it does
 * its data I/O and leaves.
 */
#ifndef THINP_POOL_IO_EPOCH_H
#define THINP_POOL_IO_EPOCH_H

#include "os/os.h"

#define IO_EPOCH_RING 64u

struct io_epoch {
	thinp_os_mutex lock;     /* guards everything below */
	thinp_os_cond drained;   /* broadcast when oldest moves */
	uint64_t cur;            /* the epoch new I/Os enter; starts at 1 */
	uint64_t oldest;         /* no I/O in flight in epochs < oldest */
	unsigned waiters;
	unsigned count[IO_EPOCH_RING]; /* I/Os in flight, by epoch % ring */
};

void io_epoch_init(struct io_epoch *e);
void io_epoch_destroy(struct io_epoch *e);

/* Enter the current epoch; the result is passed to io_epoch_leave(). */
uint64_t io_epoch_enter(struct io_epoch *e);
void io_epoch_leave(struct io_epoch *e, uint64_t epoch);

/* End the current epoch (if any I/O entered it) and return the point that
 * every I/O entered so far is at or before. 0 is a point that is always
 * passed. */
uint64_t io_epoch_close(struct io_epoch *e);
bool io_epoch_passed(struct io_epoch *e, uint64_t point);
void io_epoch_wait(struct io_epoch *e, uint64_t point);

#endif
