/*
 * thinp replicate: asynchronous replication of a thin device to another pool
 * (replicate.h, docs/WORKFLOWS.md "Replication"), over TCP or over standard
 * input and output (a pipe, e.g. through ssh). The library takes the
 * connections as callbacks; the sockets are here.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thinp.h"

/* How long a read or an accept waits before the library looks at its job. */
#define POLL_MS 1000

struct fd_conn {
	int in, out;
};

struct endpoint {
	const char *host, *port; /* host NULL: any address (listen) */
	int listen_fd;           /* receive over TCP */
	bool pipe;               /* standard input and output, once */
	bool used;               /* the pipe was handed out */
	char buf[256];
};

/* "[HOST:]PORT" into host and port (host NULL without one). */
static int split_address(struct endpoint *ep, const char *s)
{
	char *colon;

	if (strlen(s) >= sizeof(ep->buf))
		return -EINVAL;
	strcpy(ep->buf, s);
	colon = strrchr(ep->buf, ':');
	ep->host = NULL;
	ep->port = ep->buf;
	if (colon) {
		*colon = '\0';
		ep->host = ep->buf;
		ep->port = colon + 1;
	}
	return *ep->port ? 0 : -EINVAL;
}

static struct addrinfo *resolve(const struct endpoint *ep, bool passive)
{
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	return getaddrinfo(ep->host, ep->port, &hints, &res) ? NULL : res;
}

static int new_conn(int in, int out, void **conn)
{
	struct fd_conn *c = malloc(sizeof(*c));

	if (!c) {
		close(in);
		return -ENOMEM;
	}
	c->in = in;
	c->out = out;
	*conn = c;
	return 0;
}

static int pipe_connect(struct endpoint *ep, void **conn)
{
	if (ep->used)
		return -ENOTCONN;
	ep->used = true;
	return new_conn(STDIN_FILENO, STDOUT_FILENO, conn);
}

static int tcp_connect(void *ctx, void **conn)
{
	struct endpoint *ep = ctx;
	struct addrinfo *res, *ai;
	int fd = -1, e = -EHOSTUNREACH;

	if (ep->pipe)
		return pipe_connect(ep, conn);
	if (!(res = resolve(ep, false)))
		return -EHOSTUNREACH;
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			e = -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd < 0 ? e : new_conn(fd, fd, conn);
}

static int tcp_accept(void *ctx, void **conn)
{
	struct endpoint *ep = ctx;
	struct pollfd p = { .fd = ep->listen_fd, .events = POLLIN };
	int fd;

	if (ep->pipe)
		return pipe_connect(ep, conn);
	if (poll(&p, 1, POLL_MS) <= 0)
		return -EAGAIN;
	fd = accept(ep->listen_fd, NULL, NULL);
	if (fd < 0)
		return errno == EINTR || errno == ECONNABORTED ? -EAGAIN : -errno;
	return new_conn(fd, fd, conn);
}

static int listen_on(struct endpoint *ep)
{
	struct addrinfo *res = resolve(ep, true), *ai;
	int one = 1, e = -EADDRNOTAVAIL;

	ep->listen_fd = -1;
	for (ai = res; ai && ep->listen_fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4)) {
			e = -errno;
			close(fd);
			continue;
		}
		ep->listen_fd = fd;
	}
	if (res)
		freeaddrinfo(res);
	return ep->listen_fd < 0 ? e : 0;
}

static int conn_read(void *conn, void *buf, size_t len, size_t *got)
{
	struct fd_conn *c = conn;
	struct pollfd p = { .fd = c->in, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, POLL_MS) == 0)
		return -EAGAIN;
	n = read(c->in, buf, len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? -EAGAIN : -errno;
	*got = (size_t)n;
	return 0;
}

static int conn_write(void *conn, const void *buf, size_t len)
{
	struct fd_conn *c = conn;
	const char *p = buf;

	while (len) {
		ssize_t n = write(c->out, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void conn_close(void *conn)
{
	struct fd_conn *c = conn;

	if (c->in != STDIN_FILENO)
		close(c->in);
	free(c);
}

/* SIGINT and SIGTERM cancel the job (at its next consistent point). */
static void *cancel_on_signal(void *job)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (!sigwait(&set, &sig))
		thinp_job_cancel(job);
	return NULL;
}

static int start_signal_thread(thinp_job *job, pthread_t *th)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return pthread_create(th, NULL, cancel_on_signal, job) ? -EAGAIN : 0;
}

/* On standard output, or on standard error when that is the connection. */
static void print_published(uint64_t id, const uint8_t guid[16], void *ctx)
{
	FILE *f = ctx;

	fprintf(f, "replica %" PRIu64 " ", id);
	for (int i = 0; i < 16; i++)
		fprintf(f, "%02x", guid[i]);
	fprintf(f, "\n");
	fflush(f);
}

static int run_send(struct invocation *inv, thinp_catalog *cat, const thinp_replicate_transport *t,
		    thinp_job *job, char *msg, size_t size)
{
	thinp_replicate_send_options o = THINP_REPLICATE_SEND_OPTIONS_INIT;

	if (opt(inv, "interval")->given)
		o.interval_ns = opt(inv, "interval")->num * 1000000000ull;
	o.cycles = opt(inv, "cycles")->num;
	o.max_retries = opt(inv, "retries")->num;
	o.checkpoint_bytes = opt(inv, "checkpoint")->num;
	o.errbuf = msg;
	o.errbuf_size = size;
	return thinp_replicate_send(inv->pool, cat, inv->operand[1].num, t, &o, job);
}

static int run_receive(struct invocation *inv, thinp_catalog *cat,
		       const thinp_replicate_transport *t, thinp_job *job, char *msg, size_t size)
{
	thinp_replicate_serve_options o = THINP_REPLICATE_SERVE_OPTIONS_INIT;

	if (opt(inv, "keep")->given)
		o.keep = (uint32_t)opt(inv, "keep")->num;
	o.connections = opt(inv, "connections")->num;
	o.published = print_published;
	o.published_ctx = opt(inv, "pipe")->given ? stderr : stdout;
	o.errbuf = msg;
	o.errbuf_size = size;
	return thinp_replicate_serve(inv->pool, cat, t, &o, job);
}

/* send or receive: the endpoint, the job and its signal thread. */
static int run_link(struct invocation *inv, thinp_catalog *cat, bool send)
{
	struct endpoint ep = { .listen_fd = -1, .pipe = opt(inv, "pipe")->given };
	const char *addr = opt(inv, send ? "to" : "listen")->str;
	thinp_replicate_transport t = { sizeof(t), THINP_REPLICATE_VERSION,
					send ? tcp_connect : tcp_accept, conn_read, conn_write,
					conn_close, &ep };
	thinp_job *job = NULL;
	pthread_t th;
	char msg[512] = "";
	int r;

	if (send && inv->nr_operands < 2)
		return usage_err("send: which device? (DEV)");
	if (ep.pipe == (addr != NULL))
		return usage_err("%s: give either %s or --pipe", inv->operand[0].str,
				 send ? "--to HOST:PORT" : "--listen [ADDR:]PORT");
	if (addr && split_address(&ep, addr))
		return usage_err("bad address '%s'", addr);
	if (addr && send && !ep.host)
		return usage_err("--to needs HOST:PORT");
	if (!send && addr && (r = listen_on(&ep)))
		return err("listening on %s: %s", addr, thinp_strerror(r));
	if ((r = thinp_job_new(&job)) || (r = start_signal_thread(job, &th))) {
		thinp_job_free(job);
		return err("%s", thinp_strerror(r));
	}
	r = send ? run_send(inv, cat, &t, job, msg, sizeof(msg))
		 : run_receive(inv, cat, &t, job, msg, sizeof(msg));
	pthread_kill(th, SIGTERM);
	pthread_join(th, NULL);
	thinp_job_free(job);
	if (ep.listen_fd >= 0)
		close(ep.listen_fd);
	if (r == -ECANCELED)
		return EXIT_OK; /* stopped by a signal, at a consistent point */
	return r ? err("%s", *msg ? msg : thinp_strerror(r)) : EXIT_OK;
}

static int run_failover(struct invocation *inv, thinp_catalog *cat)
{
	const struct arg *name = opt(inv, "name");
	uint64_t id;
	int r;

	if (inv->nr_operands < 2)
		return usage_err("failover: which replica? (DEV)");
	r = thinp_replicate_failover(inv->pool, cat, inv->operand[1].num,
				     name->given ? name->num : THINP_RECEIVE_ANY_ID, &id);
	if (r == -ENODATA)
		return err("device %" PRIu64 " is not a replica", inv->operand[1].num);
	if (r)
		return fail(inv, r, "failover");
	printf("%" PRIu64 "\n", id);
	return EXIT_OK;
}

static int run(struct invocation *inv)
{
	const char *mode = inv->operand[0].str;
	thinp_catalog *cat;
	thinp_io *cio;
	int r;

	if (strcmp(mode, "send") && strcmp(mode, "receive") && strcmp(mode, "failover"))
		return usage_err("unknown mode '%s' (send, receive or failover)", mode);
	if (open_catalog(inv, &cio, &cat))
		return EXIT_FAIL;
	if (!strcmp(mode, "failover"))
		r = run_failover(inv, cat);
	else
		r = run_link(inv, cat, !strcmp(mode, "send"));
	thinp_catalog_close(cat);
	thinp_io_close(cio);
	return r;
}

static const struct option_spec options[] = {
	{ "to", 't', "HOST:PORT", 0, NULL, "send: the receiver's TCP address" },
	{ "listen", 'l', "[ADDR:]PORT", 0, NULL, "receive: the TCP address to accept senders on" },
	{ "pipe", 0, NULL, 0, NULL, "send, receive: one connection on standard input\nand output" },
	{ "interval", 'i', "SECONDS", 0, parse_u64, "send: from one cycle's start to the next's\n(default 60)" },
	{ "cycles", 0, "N", 0, parse_u64, "send: stop after N acknowledged cycles\n(default: until a signal)" },
	{ "retries", 0, "N", 0, parse_u64, "send: give up after N failed connections in a\nrow (default: never)" },
	{ "checkpoint", 0, "SIZE", 0, parse_size, "send: a resume point every SIZE bytes of stream\n(default 64m)" },
	{ "keep", 'k', "N", 0, parse_u64, "receive: complete replicas kept per chain\n(default 2)" },
	{ "connections", 0, "N", 0, parse_u64, "receive: stop after N connections ended\n(default: until a signal)" },
	{ "name", 'n', "ID", 0, parse_u64, "failover: the new device's id (default: the\nlowest free one)" },
	OPT_CATALOG,
	{ NULL },
};
static const struct operand_spec operands[] = {
	{ "MODE", NULL }, { "DEV", parse_u64 }, { NULL, NULL }
};

const struct command cmd_replicate = {
	.name = "replicate",
	.summary = "replicate a thin device to another pool, asynchronously",
	.description =
		"MODE send: every --interval seconds, snapshot DEV and send what changed\n"
		"since the last acknowledged snapshot to the receiver (--to or --pipe),\n"
		"which publishes it atomically and acknowledges; only then is the older\n"
		"snapshot deleted. A dropped connection is reopened and the stream\n"
		"resumed. Runs until SIGINT or SIGTERM (or --cycles).\n"
		"MODE receive: accept senders (--listen or --pipe) and keep their replicas\n"
		"in this pool; prints 'replica ID GUID' for each one published.\n"
		"MODE failover: make the newest replica of DEV's chain writable as a new\n"
		"device (a snapshot of it) and print its id.\n",
	.options = options,
	.operands = operands,
	.min_operands = 1,
	.open = OPEN_POOL,
	.run = run,
};
