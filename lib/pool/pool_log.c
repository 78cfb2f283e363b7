/*
 * The pool's log queue (pool_log.h): a singly linked FIFO of copied
 * messages.
 */
#include "os/os.h"

#include "pool/pool_log.h"

struct pool_log_msg {
	struct pool_log_msg *next;
	int level;
	char text[];
};

int pool_log_new(struct pool_log **out, thinp_log_fn fn, void *ctx)
{
	struct pool_log *l = thinp_os_zalloc(sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->user.fn = fn;
	l->user.ctx = ctx;
	l->queue.fn = pool_log_queue;
	l->queue.ctx = l;
	l->tail = &l->head;
	thinp_os_mutex_init(&l->lock);
	*out = l;
	return 0;
}

void pool_log_free(struct pool_log *l)
{
	if (!l)
		return;
	pool_log_deliver(l);
	thinp_os_mutex_destroy(&l->lock);
	thinp_os_free(l);
}

void pool_log_queue(int level, const char *msg, void *ctx)
{
	struct pool_log *l = ctx;
	size_t len = strlen(msg) + 1;
	struct pool_log_msg *m;

	if (!l->user.fn)
		return;
	thinp_os_mutex_lock(&l->lock);
	m = l->queued < POOL_LOG_MAX ? thinp_os_alloc(sizeof(*m) + len) : NULL;
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
	thinp_os_mutex_unlock(&l->lock);
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

	thinp_os_mutex_lock(&l->lock);
	if (l->delivering || (!l->head && !l->dropped)) {
		thinp_os_mutex_unlock(&l->lock);
		return;
	}
	l->delivering = true;
	for (;;) {
		m = pop_locked(l);
		dropped = m ? 0 : l->dropped;
		l->dropped -= dropped;
		if (!m && !dropped)
			break;
		thinp_os_mutex_unlock(&l->lock);
		if (m) {
			l->user.fn(m->level, m->text, l->user.ctx);
			thinp_os_free(m);
		} else {
			snprintf(note, sizeof(note), "pool: %u log messages dropped", dropped);
			l->user.fn(THINP_LOG_WARNING, note, l->user.ctx);
		}
		thinp_os_mutex_lock(&l->lock);
	}
	l->delivering = false;
	thinp_os_mutex_unlock(&l->lock);
}
