/*
 * I/O epochs (io_epoch.h): a ring of per-epoch in-flight counts. The live
 * epochs are [oldest, cur]; oldest moves forward over every drained epoch
 * below cur, so "all I/Os of epochs <= p have left" is oldest > p.
 */
#include "pool/io_epoch.h"

void io_epoch_init(struct io_epoch *e)
{
	thinp_os_mutex_init(&e->lock);
	thinp_os_cond_init(&e->drained);
	e->cur = e->oldest = 1;
	e->waiters = 0;
	for (unsigned i = 0; i < IO_EPOCH_RING; i++)
		e->count[i] = 0;
}

void io_epoch_destroy(struct io_epoch *e)
{
	thinp_os_cond_destroy(&e->drained);
	thinp_os_mutex_destroy(&e->lock);
}

static unsigned *slot(struct io_epoch *e, uint64_t epoch)
{
	return &e->count[epoch % IO_EPOCH_RING];
}

/* Move oldest past drained epochs below cur; wake waiters if it moved. */
static void advance_locked(struct io_epoch *e)
{
	uint64_t before = e->oldest;

	while (e->oldest < e->cur && *slot(e, e->oldest) == 0)
		e->oldest++;
	if (e->oldest != before && e->waiters)
		thinp_os_cond_broadcast(&e->drained);
}

uint64_t io_epoch_enter(struct io_epoch *e)
{
	uint64_t epoch;

	thinp_os_mutex_lock(&e->lock);
	epoch = e->cur;
	(*slot(e, epoch))++;
	thinp_os_mutex_unlock(&e->lock);
	return epoch;
}

void io_epoch_leave(struct io_epoch *e, uint64_t epoch)
{
	thinp_os_mutex_lock(&e->lock);
	if (--*slot(e, epoch) == 0 && epoch == e->oldest)
		advance_locked(e);
	thinp_os_mutex_unlock(&e->lock);
}

uint64_t io_epoch_close(struct io_epoch *e)
{
	uint64_t point;

	thinp_os_mutex_lock(&e->lock);
	/* Nobody in the current epoch: everything so far is before it. */
	if (*slot(e, e->cur) == 0) {
		point = e->cur - 1;
		thinp_os_mutex_unlock(&e->lock);
		return point;
	}
	/* cur + 1 must not share a slot with a live epoch. */
	e->waiters++;
	while (e->cur + 1 - e->oldest >= IO_EPOCH_RING)
		thinp_os_cond_wait(&e->drained, &e->lock);
	e->waiters--;
	point = e->cur++;
	advance_locked(e);
	thinp_os_mutex_unlock(&e->lock);
	return point;
}

bool io_epoch_passed(struct io_epoch *e, uint64_t point)
{
	bool passed;

	thinp_os_mutex_lock(&e->lock);
	passed = e->oldest > point;
	thinp_os_mutex_unlock(&e->lock);
	return passed;
}

void io_epoch_wait(struct io_epoch *e, uint64_t point)
{
	thinp_os_mutex_lock(&e->lock);
	e->waiters++;
	while (e->oldest <= point)
		thinp_os_cond_wait(&e->drained, &e->lock);
	e->waiters--;
	thinp_os_mutex_unlock(&e->lock);
}
