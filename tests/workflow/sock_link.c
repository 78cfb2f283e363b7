#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "workflow/sock_link.h"

void sock_link_init(struct sock_link *l)
{
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->pending_fd = -1;
}

void sock_link_destroy(struct sock_link *l)
{
	if (l->pending_fd >= 0)
		close(l->pending_fd);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
}

static struct sock_conn *conn_new(void *owner, int fd, bool sender, unsigned poll_ms)
{
	struct sock_conn *c = malloc(sizeof(*c));

	if (c)
		*c = (struct sock_conn){ owner, fd, sender, poll_ms };
	return c;
}

int sock_link_pair_locked(struct sock_link *l, void *owner, unsigned poll_ms, void **out)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	if (!(*out = conn_new(owner, sv[0], true, poll_ms))) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	l->pending_fd = sv[1];
	pthread_cond_broadcast(&l->cond);
	return 0;
}

int sock_link_accept(struct sock_link *l, void *owner, unsigned wait_ms, unsigned poll_ms,
		     void **out)
{
	struct timespec ts;
	int fd;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->lock);
	while (l->pending_fd < 0 && pthread_cond_timedwait(&l->cond, &l->lock, &ts) == 0)
		;
	fd = l->pending_fd;
	l->pending_fd = -1;
	pthread_mutex_unlock(&l->lock);
	if (fd < 0)
		return -EAGAIN;
	if (!(*out = conn_new(owner, fd, false, poll_ms))) {
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

int sock_conn_read(void *conn, void *buf, size_t len, size_t *got)
{
	struct sock_conn *c = conn;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, (int)c->poll_ms) == 0)
		return -EAGAIN;
	if ((n = recv(c->fd, buf, len, 0)) < 0)
		return -errno;
	*got = (size_t)n;
	return 0;
}

void sock_conn_close(void *conn)
{
	struct sock_conn *c = conn;

	close(c->fd);
	free(c);
}

int sock_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
