/*
 * Socket pairs as the connections of a thinp_replicate_transport between two
 * threads of one process (test_replicate, bench_replicate): the connecting
 * side makes a pair and leaves one end with the link, where the accepting
 * side takes it. What a test does around that (refusing connections, cutting
 * them, counting bytes) stays in the test.
 */
#ifndef THINP_TESTS_SOCK_LINK_H
#define THINP_TESTS_SOCK_LINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct sock_link {
	pthread_mutex_t lock; /* also free for the user's own fields */
	pthread_cond_t cond;  /* broadcast when a pending end is left */
	int pending_fd;       /* the accepting side's end of a new pair, or -1 */
};

/* One end of a pair: what the transport's conn pointer points to. */
struct sock_conn {
	void *owner;       /* the user's link */
	int fd;
	bool sender;       /* made by sock_link_pair_locked */
	unsigned poll_ms;  /* how long sock_conn_read waits before -EAGAIN */
};

void sock_link_init(struct sock_link *l);
/* Closes an end still pending. */
void sock_link_destroy(struct sock_link *l);

/* With l->lock held: a new pair, its connecting end (a struct sock_conn) in
 * *out, the other end left pending (there must be none yet). 0, or -errno /
 * -ENOMEM. *out is the transport's conn, hence void. */
int sock_link_pair_locked(struct sock_link *l, void *owner, unsigned poll_ms, void **out);
/* The pending end (a struct sock_conn in *out), waited for up to wait_ms: 0,
 * -EAGAIN if none came, or -ENOMEM. */
int sock_link_accept(struct sock_link *l, void *owner, unsigned wait_ms, unsigned poll_ms,
		     void **out);

/* The transport's read and close (conn is a struct sock_conn). */
int sock_conn_read(void *conn, void *buf, size_t len, size_t *got);
void sock_conn_close(void *conn);
/* All of buf to fd: 0 or -errno (no SIGPIPE). */
int sock_send_all(int fd, const void *buf, size_t len);

#endif
