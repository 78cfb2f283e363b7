/*
 * The plugin's control socket: change the pool's device set while it is
 * served (nbdkit itself has no runtime control channel).
 *
 * A unix stream socket at control=PATH, mode 0600. A client connects,
 * sends one line, gets one line back and is disconnected:
 *
 *   create_thin ID SIZE      a new device of SIZE bytes (k/m/g/t suffixes)
 *   create_snap ID ORIGIN    a snapshot of ORIGIN (served or not), with the
 *                            origin's size, flags and external origin
 *   delete ID                delete a device no connection has open
 *   set_transaction_id, reserve_metadata_snap, release_metadata_snap
 *                            (these and the three above are the library's
 *                            grammar: thinp_catalog_message)
 *   commit                   commit the pool
 *   ls                       "ID:SIZE" for every entry
 *   status                   transaction id, used/total data blocks
 *
 * Replies: "ok[ DETAILS]" or "error: MESSAGE". `thinp control SOCKET CMD`
 * is the client. A snapshot is taken as the kernel's create_snap is: writes
 * completed before it are in it, writes in flight may or may not be, so a
 * file system should be frozen (fsfreeze) or the client quiet.
 */
#define _GNU_SOURCE /* accept4, pipe2 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "server.h"

#define LINE_MAX_BYTES 1024

static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t thread;
static int thread_running;

static int reply_err(char *reply, size_t n, int r, const char *what)
{
	char m[256];

	snprintf(reply, n, "error: %s: %s", what,
		 thinp_pool_errmsg(srv.pool, m, sizeof(m)) ? m : thinp_strerror(r));
	return r;
}

static int do_ls(char *reply, size_t n)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint64_t next = 0;
	size_t len;

	if (!e) {
		snprintf(reply, n, "error: %s", thinp_strerror(-ENOMEM));
		return -ENOMEM;
	}
	len = (size_t)snprintf(reply, n, "ok");
	for (;;) {
		e->struct_size = sizeof(*e);
		if (thinp_catalog_next(srv.cat, next, e) || len >= n)
			break;
		next = e->id + 1;
		len += (size_t)snprintf(reply + len, n - len, " %" PRIu64 ":%" PRIu64, e->id,
					e->size);
	}
	free(e);
	return 0;
}

static int do_status(char *reply, size_t n)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r = thinp_pool_get_status(srv.pool, &st);

	if (r)
		return reply_err(reply, n, r, "status");
	snprintf(reply, n, "ok %" PRIu64 " %" PRIu64 "/%" PRIu64, st.transaction_id,
		 st.data_used, st.data_total);
	return 0;
}

static int do_commit(char *reply, size_t n)
{
	int r = thinp_pool_commit(srv.pool);

	if (r)
		return reply_err(reply, n, r, "commit");
	snprintf(reply, n, "ok");
	return 0;
}

/* The pool's messages (create_thin, create_snap, delete, ...) are the
 * library's, the catalog kept in step (thinp_catalog_message); commit, ls
 * and status are the socket's own. */
int control_execute(const char *line, char *reply, size_t n)
{
	char cmd[16] = "";
	int r, extra = -1;

	sscanf(line, " %15s %n", cmd, &extra);
	pthread_mutex_lock(&srv.admin_lock);
	if (!strcmp(cmd, "commit") && line[extra] == '\0')
		r = do_commit(reply, n);
	else if (!strcmp(cmd, "ls") && line[extra] == '\0')
		r = do_ls(reply, n);
	else if (!strcmp(cmd, "status") && line[extra] == '\0')
		r = do_status(reply, n);
	else if ((r = thinp_catalog_message(srv.cat, srv.pool, line, 0)))
		/* Not thinp_pool_errmsg: the failure may be the catalog's, and
		 * the pool's message then an older one. */
		snprintf(reply, n, "error: %s: %s", cmd, thinp_strerror(r));
	else
		snprintf(reply, n, "ok");
	pthread_mutex_unlock(&srv.admin_lock);
	return r;
}

/* One client: one line in, one line out. A client that says nothing for
 * 10 s is dropped so that it cannot hold the socket. */
static void serve_client(int fd)
{
	struct timeval tv = { 10, 0 };
	char line[LINE_MAX_BYTES], reply[4096];
	size_t got = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(line) - 1) {
		ssize_t k = read(fd, line + got, sizeof(line) - 1 - got);

		if (k <= 0)
			break;
		got += (size_t)k;
		if (memchr(line, '\n', got))
			break;
	}
	line[got] = '\0';
	if (!memchr(line, '\n', got)) {
		snprintf(reply, sizeof(reply), "error: expected one line ending in a newline");
	} else {
		nbdkit_debug("thinp control: %s", line);
		control_execute(line, reply, sizeof(reply));
	}
	strcat(reply, "\n");
	if (write(fd, reply, strlen(reply)) < 0)
		nbdkit_debug("thinp control: reply lost: %m");
}

static void *control_thread(void *arg)
{
	struct pollfd p[2] = { { listen_fd, POLLIN, 0 }, { stop_pipe[0], POLLIN, 0 } };

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			nbdkit_error("thinp control: poll: %m");
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_client(fd);
		close(fd);
	}
	return NULL;
}

int control_start(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int r;

	if (strlen(srv.control_path) >= sizeof(a.sun_path)) {
		nbdkit_error("control=%s: path too long", srv.control_path);
		return -1;
	}
	strcpy(a.sun_path, srv.control_path);
	/* A socket left by a server that died is replaced; anything else is not. */
	if (lstat(srv.control_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(srv.control_path);
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		nbdkit_error("pipe: %m");
		return -1;
	}
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0) {
		nbdkit_error("socket: %m");
		goto fail;
	}
	old = umask(0077);
	r = bind(listen_fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (r < 0 || listen(listen_fd, 8) < 0) {
		nbdkit_error("control=%s: %m", srv.control_path);
		goto fail;
	}
	if ((r = pthread_create(&thread, NULL, control_thread, NULL))) {
		errno = r;
		nbdkit_error("control thread: %m");
		goto fail;
	}
	thread_running = 1;
	return 0;
fail:
	control_stop();
	return -1;
}

void control_stop(void)
{
	if (thread_running) {
		if (write(stop_pipe[1], "x", 1) < 0)
			nbdkit_debug("thinp control: stop: %m");
		pthread_join(thread, NULL);
		thread_running = 0;
		unlink(srv.control_path);
	}
	if (listen_fd >= 0)
		close(listen_fd);
	for (int i = 0; i < 2; i++)
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
	listen_fd = stop_pipe[0] = stop_pipe[1] = -1;
}
