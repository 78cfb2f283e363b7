/*
 * bench_replicate: the cost of a replication cycle against the blocks that
 * changed since the previous one (issue #12: "replication cost per cycle
 * proportional to the changed blocks"), next to a full first cycle in the
 * same process.
 *
 *   tests/workflow/bench_replicate [MiB] [DIR]   (default 1024, $TMPDIR or /tmp)
 *
 * Two pools on sparse files in DIR; device 1 of the sending pool (MiB,
 * written whole) is replicated by thinp_replicate_send (one cycle per run)
 * to thinp_replicate_serve in a thread, over a socket pair. The first cycle
 * is full; then three cycles with nothing changed give a cycle's fixed cost
 * (the snapshot, the catalog and publish commits of both sides, the delta
 * walk of the metadata). Then, three cycles each, 0.1%, 1% and 10% of the
 * device's blocks (spread over the whole device) are rewritten before a
 * cycle. Printed per cycle: its time and the bytes the sender wrote; per
 * changed block: the time against the full cycle's time per block, with
 * and without the fixed cost ("marginal"), and the bytes against the block
 * size. A cost proportional to the changed blocks shows as a marginal
 * ratio that stays flat across the fractions and bytes per block near 1;
 * the fixed cost weighs most at 0.1%.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libthinp/thinp.h>
#include "workflow/sock_link.h"

#define BS (64u << 10)
#define CHUNK (16u << 20)
#define SRC 1u

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The fractions of changed blocks, in tenths of a percent. */
static const unsigned per_mille[] = { 1, 10, 100 };
#define NR_FRACTIONS (sizeof(per_mille) / sizeof(per_mille[0]))

/* ---- The link: a socket pair per connection --------------------------- */

struct link {
	struct sock_link sl;
	uint64_t sent; /* bytes the sender wrote */
};

static int link_connect(void *ctx, void **conn)
{
	struct link *l = ctx;
	int r;

	pthread_mutex_lock(&l->sl.lock);
	r = sock_link_pair_locked(&l->sl, l, 1000, conn);
	pthread_mutex_unlock(&l->sl.lock);
	return r;
}

static int link_accept(void *ctx, void **conn)
{
	struct link *l = ctx;

	return sock_link_accept(&l->sl, l, 1000, 1000, conn);
}

static int conn_write(void *conn, const void *buf, size_t len)
{
	struct sock_conn *c = conn;

	if (c->sender)
		((struct link *)c->owner)->sent += len;
	return sock_send_all(c->fd, buf, len);
}

/* ---- The pools ----------------------------------------------------------- */

struct side {
	char path[3][4096]; /* metadata, data, catalog */
	thinp_io *io[3];
	thinp_pool *pool;
	thinp_catalog *cat;
};

static int side_open(struct side *s, const char *dir, const char *name, uint64_t data_bytes)
{
	static const char *const ext[3] = { "meta", "data", "cat" };
	thinp_pool_options po = THINP_POOL_OPTIONS_INIT;

	for (int i = 0; i < 3; i++) {
		snprintf(s->path[i], sizeof(s->path[i]), "%s/bench_replicate.%s.%s", dir, name, ext[i]);
		close(open(s->path[i], O_CREAT | O_WRONLY | O_TRUNC, 0600));
	}
	if (truncate(s->path[0], 64 << 20) || truncate(s->path[1], (off_t)data_bytes))
		return -1;
	for (int i = 0; i < 3; i++)
		if (thinp_io_open_file(&s->io[i], s->path[i], 0))
			return -1;
	po.data_block_size = BS;
	return thinp_pool_format(&s->pool, s->io[0], s->io[1], &po) ||
	       thinp_catalog_open(&s->cat, s->io[2], 0) ? -1 : 0;
}

static void side_close(struct side *s)
{
	thinp_catalog_close(s->cat);
	thinp_pool_close(s->pool);
	for (int i = 0; i < 3; i++) {
		thinp_io_close(s->io[i]);
		unlink(s->path[i]);
	}
}

/* Device SRC of @bytes with its entry, written whole. */
static int source_create(struct side *a, uint64_t bytes, void *buf)
{
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;
	int r = 0;

	e.id = SRC;
	e.size = bytes;
	to.size = bytes;
	if (thinp_pool_create_thin(a->pool, SRC) || thinp_catalog_new_guid(e.guid) ||
	    thinp_catalog_attach(a->cat, a->pool, &e) || thinp_pool_get_status(a->pool, &st) ||
	    thinp_catalog_commit(a->cat, st.transaction_id) || thinp_thin_open(&t, a->pool, SRC, &to))
		return -1;
	for (uint64_t off = 0; off < bytes; off += CHUNK) {
		memset(buf, (int)(off >> 20) | 1, CHUNK);
		if ((r = thinp_thin_write(t, buf, CHUNK, off)))
			break;
	}
	if (!r)
		r = thinp_thin_flush(t);
	thinp_thin_close(t);
	return r;
}

/* @n of the device's @blocks blocks, spread evenly, rewritten with @fill. */
static int change_blocks(struct side *a, uint64_t blocks, uint64_t n, int fill, void *buf)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;
	int r = 0;

	to.size = blocks * BS;
	if (thinp_thin_open(&t, a->pool, SRC, &to))
		return -1;
	memset(buf, fill, BS);
	for (uint64_t i = 0; !r && i < n; i++)
		r = thinp_thin_write(t, buf, BS, (i * blocks / n) * BS);
	if (!r)
		r = thinp_thin_flush(t);
	thinp_thin_close(t);
	return r;
}

/* ---- The receiver in a thread ------------------------------------------- */

struct receiver {
	struct side *b;
	thinp_replicate_transport t;
	thinp_job *job;
	int result;
};

static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;

	rv->result = thinp_replicate_serve(rv->b->pool, rv->b->cat, &rv->t, NULL, rv->job);
	return NULL;
}

/* One cycle: its time in seconds (< 0 on failure), the bytes in *bytes. */
static double cycle(struct side *a, struct link *l, uint64_t *bytes)
{
	thinp_replicate_transport t = { sizeof(t), THINP_REPLICATE_VERSION, link_connect,
					sock_conn_read, conn_write, sock_conn_close, l };
	thinp_replicate_send_options o = THINP_REPLICATE_SEND_OPTIONS_INIT;
	uint64_t before = l->sent;
	double t0 = now();
	int r;

	o.cycles = 1;
	o.interval_ns = 0;
	r = thinp_replicate_send(a->pool, a->cat, SRC, &t, &o, NULL);
	*bytes = l->sent - before;
	if (r)
		fprintf(stderr, "bench_replicate: cycle: %s\n", thinp_strerror(r));
	return r ? -1 : now() - t0;
}

/* The fixed cost of a cycle: the best of three cycles with nothing
 * changed (the snapshot, the commits of both sides, the delta walk). */
static double fixed_cost(struct side *a, struct link *l)
{
	double best = 1e9;

	for (int k = 0; k < 3; k++) {
		uint64_t bytes;
		double s = cycle(a, l, &bytes);

		if (s < 0)
			return -1;
		best = s < best ? s : best;
	}
	return best;
}

static int bench(struct side *a, struct link *l, uint64_t blocks, void *buf)
{
	uint64_t bytes;
	double full = cycle(a, l, &bytes), per_block, fixed = fixed_cost(a, l);

	if (full < 0 || fixed < 0)
		return -1;
	per_block = full / (double)blocks;
	printf("full cycle: %llu blocks, %.3f s, %llu bytes, %.2f us/block\n",
	       (unsigned long long)blocks, full, (unsigned long long)bytes, per_block * 1e6);
	printf("cycle with nothing changed (fixed cost): %.4f s\n", fixed);
	/* x full/block: the cycle's time per changed block against the full
	 * cycle's time per block; marginal: the same without the fixed cost. */
	printf("%8s %8s %10s %12s %12s %12s %10s %12s\n", "changed", "blocks", "cycle s", "bytes",
	       "us/changed", "x full/blk", "marginal", "bytes/block");
	for (size_t f = 0; f < NR_FRACTIONS; f++) {
		uint64_t n = blocks * per_mille[f] / 1000 ? blocks * per_mille[f] / 1000 : 1;

		for (int k = 0; k < 3; k++) {
			double s;

			if (change_blocks(a, blocks, n, 2 + (int)(3 * f) + k, buf) ||
			    (s = cycle(a, l, &bytes)) < 0)
				return -1;
			printf("%7.1f%% %8llu %10.4f %12llu %12.2f %12.2f %10.2f %12.3f\n",
			       per_mille[f] / 10.0, (unsigned long long)n, s,
			       (unsigned long long)bytes, s / (double)n * 1e6,
			       s / (double)n / per_block, (s - fixed) / (double)n / per_block,
			       (double)bytes / (double)n / BS);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 1024;
	const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint64_t bytes = mib << 20;
	struct side a, b;
	struct link l = { .sent = 0 };
	struct receiver rv = { .b = &b };
	pthread_t th;
	void *buf = malloc(CHUNK);
	int r;

	if (!buf || !mib || bytes % CHUNK) {
		fprintf(stderr, "bench_replicate: MiB must be a multiple of 16\n");
		return 1;
	}
	/* The receiver keeps two replicas: room for the device and the
	 * changes of one cycle besides. */
	if (side_open(&a, dir, "src", bytes + bytes / 4) || side_open(&b, dir, "dst", 2 * bytes) ||
	    source_create(&a, bytes, buf) || thinp_job_new(&rv.job)) {
		fprintf(stderr, "bench_replicate: setup failed\n");
		return 1;
	}
	sock_link_init(&l.sl);
	rv.t = (thinp_replicate_transport){ sizeof(rv.t), THINP_REPLICATE_VERSION, link_accept,
					    sock_conn_read, conn_write, sock_conn_close, &l };
	if (pthread_create(&th, NULL, receiver_main, &rv))
		return 1;
	printf("device %llu MiB, block %u KiB\n", (unsigned long long)mib, BS >> 10);
	r = bench(&a, &l, bytes / BS, buf);
	thinp_job_cancel(rv.job);
	pthread_join(th, NULL);
	thinp_job_free(rv.job);
	sock_link_destroy(&l.sl);
	side_close(&a);
	side_close(&b);
	free(buf);
	return r ? 1 : 0;
}
