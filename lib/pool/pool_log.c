/*
 * The pool's log queue (pool_log.h): a singly linked FIFO of copied
 * messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool_log.h"

struct pool_log_msg {
	struct pool_log_msg *next;
	int level;
	char text[];
};

int pool_log_new(struct pool_log **out, thinp_log_fn fn, void *ctx)
{
	struct pool_log *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->user.fn = fn;
	l->user.ctx = ctx;
	l->queue.fn = pool_log_queue;
	l->queue.ctx = l;
	l->tail = &l->head;
	pthread_mutex_init(&l->lock, NULL);
	*out = l;
	return 0;
}

void pool_log_free(struct pool_log *l)
{
	if (!l)
		return;
	pool_log_deliver(l);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void pool_log_queue(int level, const char *msg, void *ctx)
{
	struct pool_log *l = ctx;
	size_t len = strlen(msg) + 1;
	struct pool_log_msg *m;

	if (!l->user.fn)
		return;
	pthread_mutex_lock(&l->lock);
	m = l->queued < POOL_LOG_MAX ? malloc(sizeof(*m) + len) : NULL;
	if (m) {
		m->next = NULL;
		m->level = level;
		memcpy(m->text, msg, len);
		*l->tail = m;
		l->tail = &m->next;
		l->queued++;
	} else {
		l->dropped++;
	}
	pthread_mutex_unlock(&l->lock);
}

/* Under l->lock: take the first message off the queue (NULL if none). */
static struct pool_log_msg *pop_locked(struct pool_log *l)
{
	struct pool_log_msg *m = l->head;

	if (!m)
		return NULL;
	l->head = m->next;
	if (!l->head)
		l->tail = &l->head;
	l->queued--;
	return m;
}

void pool_log_deliver(struct pool_log *l)
{
	struct pool_log_msg *m;
	unsigned dropped;
	char note[64];

	pthread_mutex_lock(&l->lock);
	if (l->delivering || (!l->head && !l->dropped)) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	l->delivering = true;
	for (;;) {
		m = pop_locked(l);
		dropped = m ? 0 : l->dropped;
		l->dropped -= dropped;
		if (!m && !dropped)
			break;
		pthread_mutex_unlock(&l->lock);
		if (m) {
			l->user.fn(m->level, m->text, l->user.ctx);
			free(m);
		} else {
			snprintf(note, sizeof(note), "pool: %u log messages dropped", dropped);
			l->user.fn(THINP_LOG_WARNING, note, l->user.ctx);
		}
		pthread_mutex_lock(&l->lock);
	}
	l->delivering = false;
	pthread_mutex_unlock(&l->lock);
}
