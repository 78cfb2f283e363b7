/*
 * Asynchronous replication (replicate.h) between two pools in one process,
 * the sender and the receiver in their own threads, over socket pairs: a
 * byte model of the source written between cycles and equal to the replica
 * after each acknowledged cycle; a connection cut mid-stream resumed from
 * the receiver's token without resending everything; an acknowledgement
 * lost after the publish, with the sender's base kept until the next
 * connection tells it; lag and bytes in flight; failover; and a power cut at
 * every write and flush of the receiving pool, reopened and continued.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/testutil.h"
#include "common/power.h"
#include "thin/helpers.h"
#include "workflow/sock_link.h"
#include <libthinp/testing.h>
#include <libthinp/thinp.h>
#include <libthinp/meta.h>

#define BS (64u * 1024)
#define NB 32u
#define DEV_BYTES ((uint64_t)NB * BS)
#define DATA_BLOCKS 256u
#define META_BYTES (4u << 20)
#define SRC 1u            /* the source device in pool A */
#define MS 1000000ull     /* ns */

static uint64_t suite_seed;

/* ---- Pools ------------------------------------------------------------ */

struct pool_env {
	thinp_io *io[3]; /* metadata, data, catalog */
	thinp_pool *pool;
	thinp_catalog *cat;
};

static void env_format(struct pool_env *e)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;

	o.data_block_size = BS;
	assert_int_equal(thinp_pool_format(&e->pool, e->io[0], e->io[1], &o), 0);
	assert_int_equal(thinp_catalog_open(&e->cat, e->io[2], 0), 0);
}

/* A pool's metadata, data and catalog devices in memory. */
static void open_memory_ios(thinp_io *io[3])
{
	assert_int_equal(thinp_io_open_memory(&io[0], META_BYTES, 0), 0);
	assert_int_equal(thinp_io_open_memory(&io[1], (uint64_t)DATA_BLOCKS * BS, 0), 0);
	assert_int_equal(thinp_io_open_memory(&io[2], 0, 0), 0);
}

static void env_open_memory(struct pool_env *e)
{
	open_memory_ios(e->io);
	env_format(e);
}

/* @lower behind one power supply @pw, as @e's devices. */
static void env_power(struct pool_env *e, struct power *pw, thinp_io *lower[3])
{
	open_memory_ios(lower);
	for (int i = 0; i < 3; i++)
		assert_non_null(e->io[i] = power_add(pw, lower[i]));
}


/* Close the pool and catalog; the devices too if @ios. */
static void env_close(struct pool_env *e, bool ios)
{
	thinp_catalog_close(e->cat);
	thinp_pool_close(e->pool);
	for (int i = 0; ios && i < 3; i++)
		thinp_io_close(e->io[i]);
}

/* After a cut: @e's pool and catalog closed, the supply freed, and both
 * reopened on what reached @lower; libthinp's check clean first. */
static void env_reopen_after_cut(struct pool_env *e, struct power *pw, thinp_io *lower[3])
{
	env_close(e, false);
	power_free(pw);
	memcpy(e->io, lower, sizeof(e->io));
	assert_int_equal(thinp_meta_check_io(e->io[0], NULL, NULL, NULL), 0);
	assert_int_equal(thinp_pool_open(&e->pool, e->io[0], e->io[1], NULL), 0);
	assert_int_equal(thinp_catalog_open(&e->cat, e->io[2], 0), 0);
}

static uint8_t *read_dev(thinp_pool *pool, uint64_t id)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	uint8_t *p = malloc(DEV_BYTES);
	thinp_thin *t;

	assert_non_null(p);
	o.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&t, pool, id, &o), 0);
	assert_int_equal(thinp_thin_read(t, p, DEV_BYTES, 0), 0);
	thinp_thin_close(t);
	return p;
}

static void assert_dev_equals(thinp_pool *pool, uint64_t id, const uint8_t *want)
{
	uint8_t *p = read_dev(pool, id);

	assert_memory_equal(p, want, DEV_BYTES);
	free(p);
}

static void assert_meta_clean(struct pool_env *e)
{
	assert_int_equal(thinp_pool_commit(e->pool), 0);
	assert_int_equal(thinp_meta_check_io(e->io[0], NULL, NULL, NULL), 0);
}

/* Visible devices whose entry has @flags set (all of them), and with
 * guid @guid if not NULL: their count, the last one's id in *id. */
static unsigned count_entries(thinp_catalog *cat, uint32_t flags, const uint8_t *guid, uint64_t *id)
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	unsigned n = 0;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t i = 0; thinp_catalog_next(cat, i, e) == 0; i = e->id + 1) {
		if ((e->flags & flags) != flags || (guid && memcmp(e->guid, guid, 16)))
			continue;
		if (!flags && (e->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR)))
			continue;
		n++;
		if (id)
			*id = e->id;
	}
	free(e);
	return n;
}

static void guid_of(thinp_catalog *cat, uint64_t id, uint8_t guid[16])
{
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;

	assert_int_equal(thinp_catalog_get(cat, id, &e), 0);
	memcpy(guid, e.guid, 16);
}

/* The sender's one snapshot (it keeps exactly one between cycles). */
static uint64_t sender_snap(struct pool_env *a, uint8_t guid[16])
{
	uint64_t id = 0;

	assert_int_equal(count_entries(a->cat, THINP_CATALOG_REPLICATION, NULL, &id), 1);
	guid_of(a->cat, id, guid);
	return id;
}

/* The guid of the sender's newest snapshot (the cycle's target). */
static void newest_snap(struct pool_env *a, uint8_t guid[16])
{
	thinp_catalog_entry *e = malloc(sizeof(*e));
	uint32_t newest = 0;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t i = 0; thinp_catalog_next(a->cat, i, e) == 0; i = e->id + 1)
		if ((e->flags & THINP_CATALOG_REPLICATION) && e->birth_time >= newest) {
			newest = e->birth_time;
			memcpy(guid, e->guid, 16);
		}
	free(e);
}

/* The receiver's published device with guid @guid. */
static uint64_t replica_of(struct pool_env *b, const uint8_t guid[16])
{
	uint64_t id = 0;

	assert_int_equal(count_entries(b->cat, 0, guid, &id), 1);
	return id;
}

/* ---- The source: device SRC of pool A and its byte model ------------- */

struct source {
	struct pool_env a;
	thinp_thin *t;
	uint8_t *model;
	struct test_rng rng;
};

static void source_open_thin(struct source *s)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;

	o.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&s->t, s->a.pool, SRC, &o), 0);
}

/* Device SRC with its entry on pool A, formatted on s->a.io. */
static void source_format(struct source *s, uint64_t seed)
{
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;

	env_format(&s->a);
	test_rng_init(&s->rng, seed);
	assert_int_equal(thinp_pool_create_thin(s->a.pool, SRC), 0);
	e.id = SRC;
	e.size = DEV_BYTES;
	assert_int_equal(thinp_catalog_new_guid(e.guid), 0);
	assert_int_equal(thinp_catalog_attach(s->a.cat, s->a.pool, &e), 0);
	assert_int_equal(thinp_pool_get_status(s->a.pool, &st), 0);
	assert_int_equal(thinp_catalog_commit(s->a.cat, st.transaction_id), 0);
	source_open_thin(s);
	s->model = calloc(1, DEV_BYTES);
	assert_non_null(s->model);
}

static void source_open(struct source *s, uint64_t seed)
{
	open_memory_ios(s->a.io);
	source_format(s, seed);
}

static void source_close(struct source *s)
{
	thinp_thin_close(s->t);
	env_close(&s->a, true);
	free(s->model);
}

/* @n random writes and discards of whole or partial blocks. */
static void source_change(struct source *s, unsigned n)
{
	uint8_t *buf = malloc(3 * BS);

	assert_non_null(buf);
	for (unsigned i = 0; i < n; i++) {
		uint64_t len = 1 + test_rng_below(&s->rng, 3 * BS);
		uint64_t off = test_rng_below(&s->rng, DEV_BYTES - len);

		if (test_rng_below(&s->rng, 5) == 0) {
			off = off / BS * BS;
			len = BS;
			assert_int_equal(thinp_thin_discard(s->t, len, off), 0);
			memset(s->model + off, 0, len);
			continue;
		}
		for (uint64_t k = 0; k < len; k++)
			buf[k] = (uint8_t)test_rng_next(&s->rng);
		assert_int_equal(thinp_thin_write(s->t, buf, len, off), 0);
		memcpy(s->model + off, buf, len);
	}
	assert_int_equal(thinp_thin_flush(s->t), 0);
	free(buf);
}

/* ---- The link: socket pairs as connections ---------------------------- */

#define MAX_ACKS 16

struct link {
	struct sock_link sl;     /* sl.lock guards the fields below too */
	bool down;               /* the sender's connects are refused */
	uint64_t connections;    /* made by the sender */
	uint64_t sent;           /* bytes the sender wrote, all connections */
	uint64_t cut_after;      /* cut the sender's connection at this total (0: never) */
	unsigned drop_acks;      /* the receiver dies before its next ACKs: down then */
	unsigned acks_dropped;
	uint64_t sent_at_drop;
	thinp_job *sender_job;   /* its progress is recorded at each ACK */
	thinp_job_progress at_ack[MAX_ACKS];
	unsigned nr_acks;
	bool receiver_exited, sender_done;
};

static void link_init(struct link *l)
{
	memset(l, 0, sizeof(*l));
	sock_link_init(&l->sl);
}

static int sender_connect(void *ctx, void **conn)
{
	struct link *l = ctx;
	int r = -ECONNREFUSED;

	pthread_mutex_lock(&l->sl.lock);
	if (!l->down && l->sl.pending_fd < 0)
		r = sock_link_pair_locked(&l->sl, l, 50, conn);
	l->connections += r == 0;
	pthread_mutex_unlock(&l->sl.lock);
	return r;
}

static int receiver_accept(void *ctx, void **conn)
{
	struct link *l = ctx;

	return sock_link_accept(&l->sl, l, 50, 50, conn);
}

/* The sender's writes, cut once at l->cut_after. */
static int sender_write(struct sock_conn *c, const void *buf, size_t len)
{
	struct link *l = c->owner;
	size_t n = len;
	int r;

	pthread_mutex_lock(&l->sl.lock);
	if (l->cut_after && l->sent + len >= l->cut_after) {
		n = (size_t)(l->cut_after - l->sent);
		l->cut_after = 0;
	}
	l->sent += n;
	pthread_mutex_unlock(&l->sl.lock);
	r = sock_send_all(c->fd, buf, n);
	if (r || n == len)
		return r;
	shutdown(c->fd, SHUT_RDWR);
	return -EPIPE;
}

/* The receiver's writes: STATE, or an ACK (its type at bytes 4-5), before
 * which the sender's progress is recorded, or the receiver dies. */
static int receiver_write(struct sock_conn *c, const void *buf, size_t len)
{
	struct link *l = c->owner;
	bool ack = len >= 12 && ((const uint8_t *)buf)[4] == 4, drop = false;

	pthread_mutex_lock(&l->sl.lock);
	if (ack && l->sender_job && l->nr_acks < MAX_ACKS) {
		l->at_ack[l->nr_acks].struct_size = sizeof(l->at_ack[0]);
		assert_int_equal(thinp_job_get_progress(l->sender_job, &l->at_ack[l->nr_acks]), 0);
		l->nr_acks++;
	}
	if (ack && l->drop_acks) {
		l->drop_acks--;
		l->acks_dropped++;
		l->sent_at_drop = l->sent;
		l->down = true;
		drop = true;
		pthread_cond_broadcast(&l->sl.cond);
	}
	pthread_mutex_unlock(&l->sl.lock);
	if (drop) {
		shutdown(c->fd, SHUT_RDWR);
		return -EPIPE;
	}
	return sock_send_all(c->fd, buf, len);
}

static int conn_write(void *conn, const void *buf, size_t len)
{
	struct sock_conn *c = conn;

	return c->sender ? sender_write(c, buf, len) : receiver_write(c, buf, len);
}

static thinp_replicate_transport sender_transport(struct link *l)
{
	thinp_replicate_transport t = { sizeof(t), THINP_REPLICATE_VERSION, sender_connect,
					sock_conn_read, conn_write, sock_conn_close, l };
	return t;
}

static thinp_replicate_transport receiver_transport(struct link *l)
{
	thinp_replicate_transport t = { sizeof(t), THINP_REPLICATE_VERSION, receiver_accept,
					sock_conn_read, conn_write, sock_conn_close, l };
	return t;
}

/* ---- The two sides in threads ----------------------------------------- */

struct receiver {
	pthread_t th;
	struct pool_env *b;
	struct link *l;
	thinp_job *job;
	int result;
	char msg[512];
};

static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;
	thinp_replicate_transport t = receiver_transport(rv->l);
	thinp_replicate_serve_options o = THINP_REPLICATE_SERVE_OPTIONS_INIT;

	o.errbuf = rv->msg;
	o.errbuf_size = sizeof(rv->msg);
	rv->result = thinp_replicate_serve(rv->b->pool, rv->b->cat, &t, &o, rv->job);
	pthread_mutex_lock(&rv->l->sl.lock);
	rv->l->receiver_exited = true;
	pthread_cond_broadcast(&rv->l->sl.cond);
	pthread_mutex_unlock(&rv->l->sl.lock);
	return NULL;
}

static void receiver_start(struct receiver *rv, struct pool_env *b, struct link *l)
{
	rv->b = b;
	rv->l = l;
	l->receiver_exited = false;
	assert_int_equal(thinp_job_new(&rv->job), 0);
	assert_int_equal(pthread_create(&rv->th, NULL, receiver_main, rv), 0);
}

/* Wait for the receiver's end (after a cancel unless it ended by itself). */
static int receiver_stop(struct receiver *rv, bool cancel)
{
	if (cancel)
		assert_int_equal(thinp_job_cancel(rv->job), 0);
	pthread_join(rv->th, NULL);
	thinp_job_free(rv->job);
	return rv->result;
}

struct sender {
	pthread_t th;
	struct source *src;
	struct link *l;
	thinp_job *job;
	thinp_replicate_send_options o;
	int result;
	char msg[512];
};

static void sender_init(struct sender *sd, struct source *src, struct link *l, uint64_t cycles)
{
	memset(sd, 0, sizeof(*sd));
	sd->src = src;
	sd->l = l;
	sd->o = (thinp_replicate_send_options)THINP_REPLICATE_SEND_OPTIONS_INIT;
	sd->o.cycles = cycles;
	sd->o.interval_ns = 0;
	sd->o.retry_ns = 2 * MS;
	sd->o.checkpoint_bytes = 128u << 10;
	sd->o.errbuf = sd->msg;
	sd->o.errbuf_size = sizeof(sd->msg);
	assert_int_equal(thinp_job_new(&sd->job), 0);
	l->sender_job = sd->job;
}

static void *sender_main(void *arg)
{
	struct sender *sd = arg;
	thinp_replicate_transport t = sender_transport(sd->l);

	sd->result = thinp_replicate_send(sd->src->a.pool, sd->src->a.cat, SRC, &t, &sd->o,
					  sd->job);
	if (sd->result)
		print_message("sender: %d %s\n", sd->result, sd->msg);
	pthread_mutex_lock(&sd->l->sl.lock);
	sd->l->sender_done = true;
	pthread_cond_broadcast(&sd->l->sl.cond);
	pthread_mutex_unlock(&sd->l->sl.lock);
	return NULL;
}

static void sender_start(struct sender *sd)
{
	sd->l->sender_done = false;
	assert_int_equal(pthread_create(&sd->th, NULL, sender_main, sd), 0);
}

static int sender_join(struct sender *sd)
{
	pthread_join(sd->th, NULL);
	sd->l->sender_job = NULL;
	thinp_job_free(sd->job);
	return sd->result;
}

/* One run of @cycles cycles in this thread. */
static int send_cycles(struct source *src, struct link *l, uint64_t cycles)
{
	struct sender sd;

	sender_init(&sd, src, l, cycles);
	sender_main(&sd);
	l->sender_job = NULL;
	thinp_job_free(sd.job);
	return sd.result;
}

/* The replica of the sender's snapshot equals the model. */
static void assert_replicated(struct source *src, struct pool_env *b)
{
	uint8_t guid[16];
	uint64_t snap = sender_snap(&src->a, guid);

	assert_dev_equals(src->a.pool, SRC, src->model);
	assert_dev_equals(src->a.pool, snap, src->model);
	assert_dev_equals(b->pool, replica_of(b, guid), src->model);
	assert_int_equal(count_entries(b->cat, THINP_CATALOG_PARTIAL, NULL, NULL), 0);
}

static int count_write(const void *buf, size_t len, void *ctx)
{
	(void)buf;
	*(uint64_t *)ctx += len;
	return 0;
}

/* ---- Tests ------------------------------------------------------------ */

/* Cycles of one run each, the source changed between them: the replica
 * equals the model after each, the receiver keeps two replicas, the sender
 * one snapshot; bytes in flight at the ACK, none after. */
static void test_cycles(void **state)
{
	struct source src;
	struct pool_env b;
	struct link l;
	struct receiver rv;
	unsigned cycles = test_short() > 1 ? 3 : 8;
	(void)state;

	source_open(&src, suite_seed + 1);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	for (unsigned c = 0; c < cycles; c++) {
		uint64_t before = l.sent;

		source_change(&src, c ? 6 : 40);
		l.nr_acks = 0;
		assert_int_equal(send_cycles(&src, &l, 1), 0);
		assert_replicated(&src, &b);
		assert_true(count_entries(b.cat, 0, NULL, NULL) <= 2);
		/* At the ACK the whole stream was in flight. */
		assert_int_equal(l.nr_acks, 1);
		assert_true(l.at_ack[0].in_flight > 0);
		assert_true(l.at_ack[0].in_flight < l.sent - before);
		assert_true(l.at_ack[0].in_flight + 256 > l.sent - before);
		assert_int_equal(l.at_ack[0].phase, c ? THINP_JOB_PHASE_CATCH_UP
						      : THINP_JOB_PHASE_COPY);
	}
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	assert_meta_clean(&src.a);
	assert_meta_clean(&b);
	sock_link_destroy(&l.sl);
	env_close(&b, true);
	source_close(&src);
}

/* Progress of a run: round, in flight back to 0 after the ACK. */
static void test_progress_after_run(void **state)
{
	struct source src;
	struct pool_env b;
	struct link l;
	struct receiver rv;
	struct sender sd;
	thinp_job_progress p = { .struct_size = sizeof(p) };
	(void)state;

	source_open(&src, suite_seed + 2);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	source_change(&src, 20);
	sender_init(&sd, &src, &l, 2);
	sender_main(&sd);
	assert_int_equal(sd.result, 0);
	assert_int_equal(thinp_job_get_progress(sd.job, &p), 0);
	assert_int_equal(p.state, THINP_JOB_DONE);
	assert_int_equal(p.round, 2);
	assert_int_equal(p.in_flight, 0);
	assert_true(p.done > 0);
	l.sender_job = NULL;
	thinp_job_free(sd.job);
	assert_replicated(&src, &b);
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	sock_link_destroy(&l.sl);
	env_close(&b, true);
	source_close(&src);
}

/* One run of several cycles at an interval while this thread writes the
 * source: after it, the replica equals the sender's last snapshot; the lag
 * at each ACK after the first is at least the interval. */
static void test_under_load(void **state)
{
	struct source src;
	struct pool_env b;
	struct link l;
	struct receiver rv;
	struct sender sd;
	const uint64_t interval = 40 * MS;
	uint8_t guid[16], *snap;
	bool done = false;
	(void)state;

	source_open(&src, suite_seed + 3);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	source_change(&src, 30);
	sender_init(&sd, &src, &l, test_short() > 1 ? 3 : 5);
	sd.o.interval_ns = interval;
	sender_start(&sd);
	while (!done) {
		source_change(&src, 2);
		pthread_mutex_lock(&l.sl.lock);
		done = l.sender_done;
		pthread_mutex_unlock(&l.sl.lock);
	}
	assert_int_equal(sender_join(&sd), 0);
	snap = read_dev(src.a.pool, sender_snap(&src.a, guid));
	assert_dev_equals(b.pool, replica_of(&b, guid), snap);
	free(snap);
	assert_true(l.nr_acks >= 3);
	for (unsigned i = 1; i < l.nr_acks; i++)
		assert_true(l.at_ack[i].lag_ns >= interval);
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	assert_meta_clean(&src.a);
	assert_meta_clean(&b);
	sock_link_destroy(&l.sl);
	env_close(&b, true);
	source_close(&src);
}

/* A connection cut halfway through a full stream: the sender reconnects,
 * resumes from the receiver's token, and sends little more than the stream
 * once; then the same in an incremental one. */
static void test_cut_resume(void **state)
{
	struct source src;
	struct pool_env b;
	struct link l;
	struct receiver rv;
	(void)state;

	source_open(&src, suite_seed + 4);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	for (int incremental = 0; incremental < 2; incremental++) {
		uint64_t full = 0, before = l.sent, conns = l.connections;
		thinp_send_options so = THINP_SEND_OPTIONS_INIT;
		uint8_t guid[16];
		uint64_t base = incremental ? sender_snap(&src.a, guid) : THINP_SEND_FULL;

		/* Every even block written (again): runs of one block, each
		 * followed by a resume point once 128 KiB went by. */
		for (uint64_t off = 0; off < DEV_BYTES; off += 2 * BS) {
			for (uint64_t k = 0; k < BS; k++)
				src.model[off + k] = (uint8_t)test_rng_next(&src.rng);
			assert_int_equal(thinp_thin_write(src.t, src.model + off, BS, off), 0);
		}
		assert_int_equal(thinp_thin_flush(src.t), 0);
		so.checkpoint_bytes = 128u << 10;
		assert_int_equal(thinp_send(src.a.pool, src.a.cat, SRC, base, count_write, &full,
					    &so), 0);
		assert_true(full > DEV_BYTES / 2 - BS);
		l.cut_after = before + full / 2;
		assert_int_equal(send_cycles(&src, &l, 1), 0);
		assert_int_equal(l.cut_after, 0);
		assert_int_equal(l.connections, conns + 2);
		assert_replicated(&src, &b);
		/* Half, then the rest from the last resume point: at most one
		 * checkpoint interval and the session messages again. */
		assert_true(l.sent - before < full + (128u << 10) + 4096);
		print_message("%s stream of %" PRIu64 " bytes cut at half: %" PRIu64
			      " bytes sent in all\n", incremental ? "incremental" : "full", full,
			      l.sent - before);
	}
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	assert_meta_clean(&b);
	sock_link_destroy(&l.sl);
	env_close(&b, true);
	source_close(&src);
}

static void wait_for(struct link *l, bool (*cond)(struct link *))
{
	pthread_mutex_lock(&l->sl.lock);
	while (!cond(l))
		pthread_cond_wait(&l->sl.cond, &l->sl.lock);
	pthread_mutex_unlock(&l->sl.lock);
}

static bool ack_dropped(struct link *l)
{
	return l->acks_dropped > 0;
}

/* The receiver dies after publishing, before its ACK: the sender keeps its
 * base (two snapshots) until a new connection says the replica is there;
 * then it drops the base without sending the stream again, and the next
 * cycle works. */
static void test_ack_lost(void **state)
{
	struct source src;
	struct pool_env b;
	struct link l;
	struct receiver rv;
	struct sender sd;
	uint8_t base_guid[16], guid[16];
	uint64_t base;
	(void)state;

	source_open(&src, suite_seed + 5);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	source_change(&src, 30);
	assert_int_equal(send_cycles(&src, &l, 1), 0);
	base = sender_snap(&src.a, base_guid);
	source_change(&src, 8);
	l.drop_acks = 1;
	sender_init(&sd, &src, &l, 1);
	sender_start(&sd);
	wait_for(&l, ack_dropped);
	/* The base is still there, beside the new snapshot, which the
	 * receiver published. */
	assert_int_equal(count_entries(src.a.cat, THINP_CATALOG_REPLICATION, NULL, NULL), 2);
	guid_of(src.a.cat, base, guid);
	assert_memory_equal(guid, base_guid, 16);
	assert_int_equal(count_entries(b.cat, 0, base_guid, NULL), 1);
	pthread_mutex_lock(&l.sl.lock);
	l.down = false;
	pthread_mutex_unlock(&l.sl.lock);
	assert_int_equal(sender_join(&sd), 0);
	assert_replicated(&src, &b);
	/* Only HELLO went out again, not the stream. */
	assert_true(l.sent - l.sent_at_drop < 256);
	source_change(&src, 8);
	assert_int_equal(send_cycles(&src, &l, 1), 0);
	assert_replicated(&src, &b);
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	sock_link_destroy(&l.sl);
	env_close(&b, true);
	source_close(&src);
}

/* Failover: a writable device equal to the newest replica; writing it
 * changes neither the replica nor later cycles. */
static void test_failover(void **state)
{
	struct source src;
	struct pool_env b;
	struct link l;
	struct receiver rv;
	uint8_t guid[16], *model, junk[4096];
	uint64_t replica, fo, oldest = UINT64_MAX;
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;
	(void)state;

	source_open(&src, suite_seed + 6);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	for (int c = 0; c < 3; c++) {
		source_change(&src, 10);
		assert_int_equal(send_cycles(&src, &l, 1), 0);
	}
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	sender_snap(&src.a, guid);
	replica = replica_of(&b, guid);
	/* Named by the older replica, failover still takes the newest. */
	for (uint64_t id = 0; id < 64; id++) {
		thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;

		if (!thinp_catalog_get(b.cat, id, &e) && !e.flags && id < oldest)
			oldest = id;
	}
	assert_true(oldest != replica);
	assert_int_equal(thinp_replicate_failover(b.pool, b.cat, oldest, THINP_RECEIVE_ANY_ID,
						  &fo), 0);
	assert_dev_equals(b.pool, fo, src.model);
	assert_int_equal(thinp_replicate_failover(b.pool, b.cat, fo, THINP_RECEIVE_ANY_ID,
						  &fo), -ENODATA);
	model = malloc(DEV_BYTES);
	memcpy(model, src.model, DEV_BYTES);
	memset(junk, 0xa5, sizeof(junk));
	o.size = DEV_BYTES;
	assert_int_equal(thinp_thin_open(&t, b.pool, fo, &o), 0);
	assert_int_equal(thinp_thin_write(t, junk, sizeof(junk), BS + 100), 0);
	assert_int_equal(thinp_thin_flush(t), 0);
	thinp_thin_close(t);
	memcpy(model + BS + 100, junk, sizeof(junk));
	assert_dev_equals(b.pool, replica, src.model);
	receiver_start(&rv, &b, &l);
	source_change(&src, 10);
	assert_int_equal(send_cycles(&src, &l, 1), 0);
	assert_replicated(&src, &b);
	assert_dev_equals(b.pool, fo, model);
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	assert_meta_clean(&b);
	free(model);
	sock_link_destroy(&l.sl);
	env_close(&b, true);
	source_close(&src);
}

static bool receiver_or_sender_ended(struct link *l)
{
	return l->receiver_exited || l->sender_done;
}

/* After a cut: every visible replica holds the previous or the new model,
 * the new snapshot's replica (if published) the new one. */
static void assert_cut_outcome(struct pool_env *b, const uint8_t *prev, const uint8_t *now,
			       const uint8_t target[16])
{
	thinp_catalog_entry *e = malloc(sizeof(*e));

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(b->cat, id, e) == 0; id = e->id + 1) {
		thinp_thin_status ts = THINP_THIN_STATUS_INIT;
		uint8_t *p;

		if (e->flags & (THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR) ||
		    thinp_pool_get_thin_status(b->pool, e->id, &ts) ||
		    ts.creation_time != e->birth_time)
			continue;
		p = read_dev(b->pool, e->id);
		if (!memcmp(e->guid, target, 16))
			assert_memory_equal(p, now, DEV_BYTES);
		else
			assert_memory_equal(p, prev, DEV_BYTES);
		free(p);
	}
	free(e);
}

/* One power cut of the receiving pool at counted request @n of the second
 * cycle; returns false when the cycle needed fewer requests. */
static bool power_cut_run(uint64_t n, int mode, uint64_t seed)
{
	struct source src;
	struct power *pw = power_new(mode, seed);
	thinp_io *lower[3];
	struct pool_env b;
	struct link l;
	struct receiver rv;
	struct sender sd;
	uint8_t *prev, guid[16];
	bool cut;

	source_open(&src, suite_seed + 7);
	assert_non_null(pw);
	env_power(&b, pw, lower);
	env_format(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	source_change(&src, 30);
	assert_int_equal(send_cycles(&src, &l, 1), 0);
	prev = malloc(DEV_BYTES);
	memcpy(prev, src.model, DEV_BYTES);
	source_change(&src, 8);
	power_arm(pw, n);
	sender_init(&sd, &src, &l, 1);
	sender_start(&sd);
	wait_for(&l, receiver_or_sender_ended);
	cut = power_is_cut(pw);
	if (cut) {
		/* The receiver stops at the cut; its pool is reopened on what
		 * reached the devices, and a new receiver goes on. */
		assert_int_not_equal(receiver_stop(&rv, false), 0);
		env_reopen_after_cut(&b, pw, lower);
		pw = NULL;
		newest_snap(&src.a, guid);
		assert_cut_outcome(&b, prev, src.model, guid);
		receiver_start(&rv, &b, &l);
	}
	assert_int_equal(sender_join(&sd), 0);
	assert_replicated(&src, &b);
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	assert_meta_clean(&b);
	env_close(&b, false);
	power_free(pw);
	for (int i = 0; i < 3; i++)
		thinp_io_close(lower[i]);
	sock_link_destroy(&l.sl);
	free(prev);
	source_close(&src);
	return cut;
}

static void test_receiver_power_cuts(void **state)
{
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				     THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };
	struct test_rng rng;
	uint64_t step = test_short() > 1 ? 7 : 1, cuts = 0;
	(void)state;

	test_rng_init(&rng, suite_seed + 8);
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
		for (uint64_t n = 1 + m % step; power_cut_run(n, modes[m], test_rng_next(&rng));
		     n += step)
			cuts++;
	print_message("power cuts: %" PRIu64 "\n", cuts);
	assert_true(cuts > 8);
}

/* Devices in @pool (ids below 64: the tests use the lowest free ones). */
static unsigned count_devices(thinp_pool *pool)
{
	unsigned n = 0;

	for (uint64_t id = 0; id < 64; id++) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;

		n += thinp_pool_get_thin_status(pool, id, &st) == 0;
	}
	return n;
}

/* One power cut of the sending pool (metadata, data, catalog) at counted
 * request @n of the second cycle, then the pool reopened and a new sender
 * run on it; returns false when the cycle needed fewer requests. */
static bool sender_power_cut_run(uint64_t n, int mode, uint64_t seed, bool thin_check)
{
	static const uint8_t zero[16];
	struct source src;
	struct power *pw = power_new(mode, seed);
	thinp_io *lower[3];
	struct pool_env b;
	struct link l;
	struct receiver rv;
	uint8_t *prev, base[16], newest[16];
	bool cut;

	assert_non_null(pw);
	env_power(&src.a, pw, lower);
	source_format(&src, suite_seed + 9);
	env_open_memory(&b);
	link_init(&l);
	receiver_start(&rv, &b, &l);
	source_change(&src, 30);
	assert_int_equal(send_cycles(&src, &l, 1), 0);
	sender_snap(&src.a, base);
	prev = malloc(DEV_BYTES);
	memcpy(prev, src.model, DEV_BYTES);
	source_change(&src, 8);
	power_arm(pw, n);
	cut = power_is_cut(pw) || send_cycles(&src, &l, 1) != 0;
	assert_int_equal(cut, power_is_cut(pw));
	if (cut) {
		thinp_thin_close(src.t);
		env_reopen_after_cut(&src.a, pw, lower);
		pw = NULL;
		source_open_thin(&src);
		/* The source was flushed before the cycle. */
		assert_dev_equals(src.a.pool, SRC, src.model);
		/* The receiver has the old snapshot, or the new one if the
		 * sender had recorded it. */
		newest_snap(&src.a, newest);
		assert_cut_outcome(&b, prev, src.model, memcmp(newest, base, 16) ? newest : zero);
		/* A new sender on the reopened pool finishes the cycle. */
		assert_int_equal(send_cycles(&src, &l, 1), 0);
	}
	assert_replicated(&src, &b);
	/* No snapshot leaked: SRC and its one snapshot, both with entries. */
	assert_int_equal(count_devices(src.a.pool), 2);
	assert_int_equal(count_entries(src.a.cat, 0, NULL, NULL), 2);
	assert_meta_clean(&src.a);
	if (thin_check) {
		int r = th_thin_check(src.a.io[0]);

		assert_true(r == 0 || r == 77);
	}
	assert_int_equal(receiver_stop(&rv, true), -ECANCELED);
	assert_meta_clean(&b);
	env_close(&b, true);
	sock_link_destroy(&l.sl);
	free(prev);
	thinp_thin_close(src.t);
	env_close(&src.a, false);
	power_free(pw);
	for (int i = 0; i < 3; i++)
		thinp_io_close(lower[i]);
	free(src.model);
	return cut;
}

static void test_sender_power_cuts(void **state)
{
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				     THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };
	struct test_rng rng;
	uint64_t step = test_short() > 1 ? 7 : 1, cuts = 0;
	(void)state;

	test_rng_init(&rng, suite_seed + 10);
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
		for (uint64_t n = 1 + m % step;
		     sender_power_cut_run(n, modes[m], test_rng_next(&rng), n % 8 == 1); n += step)
			cuts++;
	print_message("power cuts: %" PRIu64 "\n", cuts);
	assert_true(cuts > 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cycles),
		cmocka_unit_test(test_progress_after_run),
		cmocka_unit_test(test_under_load),
		cmocka_unit_test(test_cut_resume),
		cmocka_unit_test(test_ack_lost),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_receiver_power_cuts),
		cmocka_unit_test(test_sender_power_cuts),
	};

	suite_seed = test_seed("test_replicate");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
