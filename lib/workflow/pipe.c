/* The in-process stream transport (pipe.h): a ring buffer, one lock, one
 * condition variable both sides wait on. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

struct wf_pipe {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned char *buf;
	size_t cap, head, len; /* the bytes held are buf[head ..] mod cap, len of them */
	bool write_closed, read_closed;
	int write_error;
};

int wf_pipe_new(struct wf_pipe **out, size_t capacity)
{
	struct wf_pipe *p = calloc(1, sizeof(*p));

	if (!p || !(p->buf = malloc(capacity))) {
		free(p);
		return -ENOMEM;
	}
	p->cap = capacity;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	*out = p;
	return 0;
}

void wf_pipe_free(struct wf_pipe *p)
{
	if (!p)
		return;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->buf);
	free(p);
}

int wf_pipe_write(const void *buf, size_t len, void *pipe)
{
	struct wf_pipe *p = pipe;
	const unsigned char *src = buf;
	int r = 0;

	pthread_mutex_lock(&p->lock);
	while (len && !r) {
		size_t tail, n;

		while (p->len == p->cap && !p->read_closed)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->read_closed) {
			r = -EPIPE;
			break;
		}
		tail = (p->head + p->len) % p->cap;
		n = p->cap - p->len;
		if (n > p->cap - tail)
			n = p->cap - tail;
		if (n > len)
			n = len;
		memcpy(p->buf + tail, src, n);
		p->len += n;
		src += n;
		len -= n;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

int wf_pipe_read(void *buf, size_t len, size_t *got, void *pipe)
{
	struct wf_pipe *p = pipe;
	size_t n;
	int r = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->len && !p->write_closed && len)
		pthread_cond_wait(&p->cond, &p->lock);
	n = p->len < len ? p->len : len;
	if (n > p->cap - p->head)
		n = p->cap - p->head;
	memcpy(buf, p->buf + p->head, n);
	p->head = (p->head + n) % p->cap;
	p->len -= n;
	if (!n && len && p->write_error)
		r = p->write_error;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	*got = n;
	return r;
}

void wf_pipe_close_write(struct wf_pipe *p, int error)
{
	pthread_mutex_lock(&p->lock);
	p->write_closed = true;
	p->write_error = error;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void wf_pipe_close_read(struct wf_pipe *p)
{
	pthread_mutex_lock(&p->lock);
	p->read_closed = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}
