/*
 * thinp_replicate_send: the sending side of asynchronous replication.
 *
 * A cycle: take a snapshot T of the source (unless one is still waiting to
 * be replicated), then on a connection: HELLO (base B = the newest older
 * snapshot, target T) -> the receiver's STATE (its newest complete replica
 * of the chain and a resume token for a partial receive of T) -> unless the
 * receiver has T already: STREAM and the stream of T (incremental from the
 * snapshot the receiver has, else full; resumed from the token when it
 * names this stream) -> ACK. Only after the ACK (or a STATE that names T)
 * are the snapshots older than T deleted. A failed connection is reopened
 * and the cycle's exchange starts again from HELLO: the receiver's state
 * says what is left to send.
 *
 * The sender's state is its catalog: the source's snapshots are the entries
 * flagged THINP_CATALOG_REPLICATION whose parent guid is the source's guid,
 * ordered by creation time; the newest is T (or the last acknowledged).
 */
#include "os/os.h"

#include "replica/replica.h"
#include "util/abi_struct.h"
#include "workflow/job.h"
#include "workflow/session.h"

struct snap {
	uint64_t id;
	uint32_t birth_time; /* creation time in the pool: increases with each snapshot */
	uint8_t guid[16];
};

struct sender {
	thinp_pool *pool;
	thinp_catalog *cat;
	uint64_t dev;
	uint8_t dev_guid[16];
	uint64_t dev_size;
	thinp_replicate_send_options o;
	thinp_job *job;
	struct session ses;
	struct snap *snaps;  /* oldest first */
	size_t nr, cap;
	bool pending;        /* snaps[nr - 1] is not acknowledged yet */
	uint64_t acked_ns;   /* when the newest acknowledged snapshot was taken */
	uint64_t pending_ns; /* when snaps[nr - 1] was taken */
};

#define NS_PER_S 1000000000ull
/* Between two lag updates while waiting for the next cycle. */
#define WAIT_SLICE_NS (100ull * 1000 * 1000)

#define FAIL(s, e, ...) replica_fail((s)->o.errbuf, (s)->o.errbuf_size, (e), __VA_ARGS__)

static void report(struct sender *s)
{
	job_set_replication(s->job, thinp_os_monotonic_ns() - s->acked_ns, s->pending ? s->ses.bytes : 0);
}

/* Stream bytes written: in flight until the ACK; the rate limit and cancel. */
static int on_write(struct session *ses, size_t len)
{
	struct sender *s = (struct sender *)((char *)ses - offsetof(struct sender, ses));

	report(s);
	return job_checkpoint(s->job, len);
}

static int add_snap(struct sender *s, uint64_t id, uint32_t birth_time, const uint8_t guid[16])
{
	size_t i;

	if (s->nr == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4;
		struct snap *p = thinp_os_realloc(s->snaps, s->cap * sizeof(*p), cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->snaps = p;
		s->cap = cap;
	}
	for (i = s->nr; i > 0 && s->snaps[i - 1].birth_time > birth_time; i--)
		s->snaps[i] = s->snaps[i - 1];
	s->snaps[i] = (struct snap){ .id = id, .birth_time = birth_time };
	memcpy(s->snaps[i].guid, guid, 16);
	s->nr++;
	return 0;
}

/* A placeholder: an entry committed before its snapshot was made (a
 * snapshot's creation time is never 0, so a stamped entry is never one). */
static bool is_placeholder(const thinp_catalog_entry *e)
{
	return !e->birth_time && !e->birth_transaction;
}

/* An entry of the source's chain that no snapshot backs: a placeholder,
 * which takes its snapshot with it if that was made (a crash before the
 * entry was stamped), or a stale entry (a crash after its snapshot was
 * deleted: the device at its id, if any, is another's). */
static int drop_unbacked(struct sender *s, const thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r = 0;

	if (is_placeholder(e) && !thinp_pool_get_thin_status(s->pool, e->id, &st))
		r = thinp_pool_delete_thin(s->pool, e->id);
	return r ? r : thinp_catalog_remove(s->cat, e->id);
}

/* The source's snapshots from the catalog; what an interrupted run left
 * without a snapshot (drop_unbacked) goes, in one catalog commit. */
static int load_snaps(struct sender *s, thinp_catalog_entry *e)
{
	bool dropped = false;
	int r = 0;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !r && thinp_catalog_next(s->cat, id, e) == 0; id = e->id + 1) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;
		int gone;

		if (!(e->flags & THINP_CATALOG_REPLICATION) || memcmp(e->parent_guid, s->dev_guid, 16))
			continue;
		gone = thinp_pool_get_thin_status(s->pool, e->id, &st);
		if (gone && gone != -ENODATA) {
			r = gone;
			break;
		}
		if (gone || is_placeholder(e) || st.creation_time != e->birth_time ||
		    st.transaction_id != e->birth_transaction) {
			r = drop_unbacked(s, e);
			dropped = true;
			continue;
		}
		r = add_snap(s, e->id, e->birth_time, e->guid);
	}
	if (!r && dropped)
		r = replica_commit_catalog(s->cat, s->pool);
	return r ? FAIL(s, r, "dropping what an interrupted run left: %s", thinp_strerror(r)) : 0;
}

/* A new snapshot of the source, its entry committed: the cycle's target.
 * The entry is committed first as a placeholder, so that a crash before it
 * is stamped leaves no snapshot the next run does not know (load_snaps). */
static int take_snapshot(struct sender *s, thinp_catalog_entry *e)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int64_t id = replica_free_id(s->pool);
	int r = id < 0 ? (int)id : 0;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	e->id = (uint64_t)id;
	e->size = s->dev_size;
	e->flags = THINP_CATALOG_REPLICATION | THINP_CATALOG_READ_ONLY;
	memcpy(e->parent_guid, s->dev_guid, 16);
	if (!r && !(r = thinp_catalog_new_guid(e->guid)) && !(r = thinp_catalog_set(s->cat, e)))
		r = replica_commit_catalog(s->cat, s->pool);
	if (r)
		return FAIL(s, r, "recording a snapshot: %s", thinp_strerror(r));
	if ((r = thinp_pool_create_snap(s->pool, (uint64_t)id, s->dev)))
		return FAIL(s, r, "snapshot of device %" PRIu64 ": %s", s->dev, thinp_strerror(r));
	if (!(r = thinp_catalog_attach(s->cat, s->pool, e)))
		r = replica_commit_catalog(s->cat, s->pool);
	if (!r)
		r = thinp_pool_get_thin_status(s->pool, e->id, &st);
	if (!r)
		r = add_snap(s, e->id, st.creation_time, e->guid);
	if (r)
		return FAIL(s, r, "recording snapshot %" PRId64 ": %s", id, thinp_strerror(r));
	s->pending = true;
	s->pending_ns = thinp_os_monotonic_ns();
	return 0;
}

/* The snapshot first, then its entry: a crash in between leaves a stale
 * entry, which the next run drops (load_snaps), not a snapshot nobody
 * knows. */
static int drop_snap(struct sender *s, uint64_t id)
{
	int r = thinp_pool_delete_thin(s->pool, id);

	if (!r || r == -ENODATA)
		r = thinp_catalog_remove(s->cat, id);
	return r ? r : replica_commit_catalog(s->cat, s->pool);
}

/* After the ACK: every snapshot older than the target goes. */
static int drop_older(struct sender *s)
{
	struct snap target = s->snaps[s->nr - 1];
	int r = 0;

	job_set_phase(s->job, THINP_JOB_PHASE_CLEANUP);
	while (!r && s->nr > 1) {
		r = drop_snap(s, s->snaps[0].id);
		if (!r)
			memmove(s->snaps, s->snaps + 1, --s->nr * sizeof(*s->snaps));
	}
	s->snaps[0] = target;
	return r ? FAIL(s, r, "deleting an older snapshot: %s", thinp_strerror(r)) : 0;
}

/* The older snapshot whose guid is @guid, or NULL. */
static const struct snap *older_snap(const struct sender *s, const uint8_t guid[16])
{
	if (replica_guid_is_zero(guid))
		return NULL;
	for (size_t i = 0; i + 1 < s->nr; i++)
		if (!memcmp(s->snaps[i].guid, guid, 16))
			return &s->snaps[i];
	return NULL;
}

/* HELLO, then the receiver's STATE. */
static int exchange_state(struct sender *s, struct session_state *st)
{
	struct session_hello h;
	uint8_t buf[SESSION_MAX_PAYLOAD];
	uint16_t type;
	size_t len;
	int r;

	memset(&h, 0, sizeof(h));
	memcpy(h.chain, s->dev_guid, 16);
	if (s->nr > 1)
		memcpy(h.base, s->snaps[s->nr - 2].guid, 16);
	memcpy(h.target, s->snaps[s->nr - 1].guid, 16);
	len = session_encode_hello(&h, buf);
	if ((r = session_send(&s->ses, SESSION_HELLO, buf, len)) ||
	    (r = session_recv(&s->ses, &type, buf, &len)))
		return r;
	if (type != SESSION_STATE || session_decode_state(st, buf, len))
		return FAIL(s, -EPROTO, "the receiver does not speak the replication protocol");
	return 0;
}

/* The receiver's token, if it continues the stream about to be sent. */
static const char *usable_token(const struct session_state *st, const struct snap *target,
				const struct snap *base)
{
	thinp_stream_header tok = THINP_STREAM_HEADER_INIT;
	static const uint8_t zero[16];

	if (!st->token[0] || thinp_stream_token_parse(&tok, st->token) ||
	    memcmp(tok.target_guid, target->guid, 16) ||
	    memcmp(tok.base_guid, base ? base->guid : zero, 16))
		return NULL;
	return st->token;
}

/* STREAM and the stream of the target, then the receiver's ACK. */
static int send_stream(struct sender *s, const struct session_state *st)
{
	thinp_send_options so = THINP_SEND_OPTIONS_INIT;
	const struct snap *target = &s->snaps[s->nr - 1], *base = older_snap(s, st->newest);
	struct session_ack ack;
	uint8_t buf[SESSION_MAX_PAYLOAD];
	uint16_t type;
	size_t len;
	int r;

	job_set_phase(s->job, base ? THINP_JOB_PHASE_CATCH_UP : THINP_JOB_PHASE_COPY);
	so.checkpoint_bytes = s->o.checkpoint_bytes;
	so.errbuf = s->o.errbuf;
	so.errbuf_size = s->o.errbuf_size;
	so.resume_token = usable_token(st, target, base);
	s->ses.bytes = 0;
	if ((r = session_send(&s->ses, SESSION_STREAM, NULL, 0)))
		return r;
	r = thinp_send(s->pool, s->cat, target->id, base ? base->id : THINP_SEND_FULL,
		       session_stream_write, &s->ses, &so);
	if (!r)
		r = session_recv(&s->ses, &type, buf, &len);
	if (r)
		return r;
	if (type != SESSION_ACK || session_decode_ack(&ack, buf, len) ||
	    (!ack.result && memcmp(ack.guid, target->guid, 16)))
		return FAIL(s, -EPROTO, "the receiver's acknowledgement is not of this stream");
	if (ack.result)
		return FAIL(s, ack.result, "the receiver refused the stream: %s",
			    ack.msg[0] ? ack.msg : thinp_strerror(ack.result));
	return 0;
}

/* One exchange on a connection (opened if needed) until the target is
 * acknowledged: 0, or an error (s->ses.failed: the connection's). */
static int replicate_target(struct sender *s)
{
	struct session_state st;
	int r = s->ses.conn ? 0 : session_connect(&s->ses);

	if (!r)
		r = exchange_state(s, &st);
	if (!r && memcmp(st.newest, s->snaps[s->nr - 1].guid, 16))
		r = send_stream(s, &st);
	return r;
}

/* Until the cycle's target is acknowledged: reconnect after connection
 * failures (the receiver's state tells what is left to send). */
static int deliver(struct sender *s)
{
	uint64_t failures = 0;
	int r;

	while ((r = replicate_target(s))) {
		/* -ENOTCONN from connect: no more connections (a pipe). */
		bool retry = s->ses.failed && r != -ECANCELED && r != -ENOTCONN;

		session_close(&s->ses);
		if (!retry)
			return r;
		if (s->o.max_retries && ++failures >= s->o.max_retries)
			return FAIL(s, r, "the connection failed %" PRIu64 " times: %s", failures,
				    thinp_strerror(r));
		report(s);
		job_set_phase(s->job, THINP_JOB_PHASE_WAIT);
		if ((r = job_sleep(s->job, s->o.retry_ns)))
			return r;
	}
	return 0;
}

/* The target delivered: it becomes the base, the older snapshots go. */
static int acknowledged(struct sender *s)
{
	int r = deliver(s);

	if (r)
		return r;
	s->pending = false;
	s->acked_ns = s->pending_ns;
	report(s);
	return drop_older(s);
}

static int cycle(struct sender *s, thinp_catalog_entry *e)
{
	int r = take_snapshot(s, e);

	return r ? r : acknowledged(s);
}

/* Until @deadline (monotonic), reporting the lag as it grows. */
static int wait_until(struct sender *s, uint64_t deadline)
{
	uint64_t now;
	int r = 0;

	job_set_phase(s->job, THINP_JOB_PHASE_WAIT);
	while (!r && (now = thinp_os_monotonic_ns()) < deadline) {
		report(s);
		r = job_sleep(s->job, deadline - now < WAIT_SLICE_NS ? deadline - now : WAIT_SLICE_NS);
	}
	return r;
}

static int run(struct sender *s)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	int r = e ? replica_identify(s->pool, s->cat, s->dev, e) : -ENOMEM;

	if (r)
		FAIL(s, r, "device %" PRIu64 ": %s", s->dev, thinp_strerror(r));
	if (!r) {
		memcpy(s->dev_guid, e->guid, 16);
		s->dev_size = e->size;
		r = load_snaps(s, e);
	}
	/* The newest snapshot an earlier run left is finished first (the
	 * receiver tells whether it has it already). */
	s->pending = s->nr > 0;
	s->acked_ns = s->pending_ns = thinp_os_monotonic_ns();
	if (!r && s->pending)
		r = acknowledged(s);
	for (uint64_t round = 0; !r;) {
		uint64_t start = thinp_os_monotonic_ns();

		if ((r = cycle(s, e)))
			break;
		job_set_round(s->job, ++round);
		if (s->o.cycles && round >= s->o.cycles)
			break;
		r = wait_until(s, start + s->o.interval_ns);
	}
	thinp_os_free(e);
	return r;
}

int thinp_replicate_send(thinp_pool *pool, thinp_catalog *catalog, uint64_t dev,
			 const thinp_replicate_transport *transport,
			 const thinp_replicate_send_options *opts, thinp_job *job)
{
	thinp_replicate_send_options o = THINP_REPLICATE_SEND_OPTIONS_INIT;
	thinp_replicate_transport t;
	struct sender s = { .pool = pool, .cat = catalog, .dev = dev, .job = job };
	int r;

	if (!pool || !catalog ||
	    thinp_abi_copy_in(&t, sizeof(t), transport, sizeof(t), THINP_REPLICATE_VERSION) ||
	    !t.connect || !t.read || !t.write || !t.close ||
	    (opts && thinp_abi_copy_in(&o, sizeof(o), opts, sizeof(o), THINP_REPLICATE_VERSION)))
		return -EINVAL;
	s.o = o;
	s.ses.t = &t;
	s.ses.job = job;
	s.ses.on_write = on_write;
	replica_fail(o.errbuf, o.errbuf_size, 0, "%s", "");
	if ((r = job_begin(job, THINP_JOB_PHASE_COPY)))
		return r;
	r = run(&s);
	session_close(&s.ses);
	thinp_os_free(s.snaps);
	return job_end(job, r);
}
