/* The in-process stream transport (pipe.h): a ring buffer, one lock, one
 * condition variable both sides wait on. */
#include "os/os.h"

#include "pipe.h"

struct wf_pipe {
	thinp_os_mutex lock;
	thinp_os_cond cond;
	unsigned char *buf;
	size_t cap, head, len; /* the bytes held are buf[head ..] mod cap, len of them */
	bool write_closed, read_closed;
	int write_error;
};

int wf_pipe_new(struct wf_pipe **out, size_t capacity)
{
	struct wf_pipe *p = thinp_os_zalloc(sizeof(*p));

	if (!p || !(p->buf = thinp_os_alloc(capacity))) {
		thinp_os_free(p);
		return -ENOMEM;
	}
	p->cap = capacity;
	thinp_os_mutex_init(&p->lock);
	thinp_os_cond_init(&p->cond);
	*out = p;
	return 0;
}

void wf_pipe_free(struct wf_pipe *p)
{
	if (!p)
		return;
	thinp_os_cond_destroy(&p->cond);
	thinp_os_mutex_destroy(&p->lock);
	thinp_os_free(p->buf);
	thinp_os_free(p);
}

int wf_pipe_write(const void *buf, size_t len, void *pipe)
{
	struct wf_pipe *p = pipe;
	const unsigned char *src = buf;
	int r = 0;

	thinp_os_mutex_lock(&p->lock);
	while (len && !r) {
		size_t tail, n;

		while (p->len == p->cap && !p->read_closed)
			thinp_os_cond_wait(&p->cond, &p->lock);
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
		thinp_os_cond_broadcast(&p->cond);
	}
	thinp_os_mutex_unlock(&p->lock);
	return r;
}

int wf_pipe_read(void *buf, size_t len, size_t *got, void *pipe)
{
	struct wf_pipe *p = pipe;
	size_t n;
	int r = 0;

	thinp_os_mutex_lock(&p->lock);
	while (!p->len && !p->write_closed && len)
		thinp_os_cond_wait(&p->cond, &p->lock);
	n = p->len < len ? p->len : len;
	if (n > p->cap - p->head)
		n = p->cap - p->head;
	memcpy(buf, p->buf + p->head, n);
	p->head = (p->head + n) % p->cap;
	p->len -= n;
	if (!n && len && p->write_error)
		r = p->write_error;
	thinp_os_cond_broadcast(&p->cond);
	thinp_os_mutex_unlock(&p->lock);
	*got = n;
	return r;
}

void wf_pipe_close_write(struct wf_pipe *p, int error)
{
	thinp_os_mutex_lock(&p->lock);
	p->write_closed = true;
	p->write_error = error;
	thinp_os_cond_broadcast(&p->cond);
	thinp_os_mutex_unlock(&p->lock);
}

void wf_pipe_close_read(struct wf_pipe *p)
{
	thinp_os_mutex_lock(&p->lock);
	p->read_closed = true;
	thinp_os_cond_broadcast(&p->cond);
	thinp_os_mutex_unlock(&p->lock);
}
