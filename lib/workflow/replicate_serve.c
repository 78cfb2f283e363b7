/*
 * thinp_replicate_serve: the receiving side of asynchronous replication.
 * Per connection, per message: HELLO -> STATE (the newest complete replica
 * of the sender's chain, a resume token for a partial receive of its
 * target); STREAM -> thinp_receive (resumable), then ACK after the
 * publishing commit, then older replicas pruned. A connection that fails
 * ends its session (a partial receive stays for the resume); after a
 * refused stream the rest of it is unread, so the connection is closed.
 */
#include "os/os.h"

#include "replica/replica.h"
#include "util/abi_struct.h"
#include "workflow/chain.h"
#include "workflow/job.h"
#include "workflow/session.h"

struct server {
	thinp_pool *pool;
	thinp_catalog *cat;
	thinp_replicate_serve_options o;
	thinp_job *job;
	thinp_catalog_entry *e; /* scratch */
	uint64_t published;
};

#define FAIL(s, e, ...) replica_fail((s)->o.errbuf, (s)->o.errbuf_size, (e), __VA_ARGS__)

/* The resume token of a partial receive of target @guid into @token ("" if
 * none); other partial receives of it (one without a resume point, which
 * cannot be resumed, or a duplicate) are aborted. */
static int resume_point(struct server *sv, const uint8_t guid[16], char *token, size_t size)
{
	thinp_catalog_entry *e = sv->e;
	int r = 0;

	token[0] = '\0';
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !r && thinp_catalog_next(sv->cat, id, e) == 0; id = e->id + 1) {
		if (!(e->flags & THINP_CATALOG_PARTIAL) || memcmp(e->guid, guid, 16))
			continue;
		if (!token[0] && !thinp_receive_token(sv->pool, sv->cat, e->id, token, size))
			continue;
		r = thinp_receive_abort(sv->pool, sv->cat, e->id);
		if (r == -ENODATA || r == -EINVAL)
			r = 0; /* a stale entry: nothing to abort */
	}
	return r;
}

/* Partial receives onto @newest of targets other than @target: streams
 * their sender gave up, which no resume will finish. */
static int abort_abandoned(struct server *sv, const uint8_t newest[16], const uint8_t target[16])
{
	thinp_catalog_entry *e = sv->e;
	int r = 0;

	if (replica_guid_is_zero(newest))
		return 0;
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !r && thinp_catalog_next(sv->cat, id, e) == 0; id = e->id + 1)
		if ((e->flags & THINP_CATALOG_PARTIAL) && !memcmp(e->parent_guid, newest, 16) &&
		    memcmp(e->guid, target, 16))
			r = thinp_receive_abort(sv->pool, sv->cat, e->id);
	return r == -ENODATA || r == -EINVAL ? 0 : r; /* a stale entry: nothing to abort */
}

/* The state a HELLO asks for. */
static int make_state(struct server *sv, const struct session_hello *h, struct session_state *st)
{
	int r;

	memset(st, 0, sizeof(*st));
	if (!chain_find(sv->cat, h->target, sv->e) || !chain_find(sv->cat, h->base, sv->e)) {
		chain_newest(sv->cat, sv->e);
		memcpy(st->newest, sv->e->guid, 16);
		st->newest_id = sv->e->id;
	}
	if (replica_guid_is_zero(h->target))
		return abort_abandoned(sv, st->newest, h->target);
	r = resume_point(sv, h->target, st->token, sizeof(st->token));
	return r ? r : abort_abandoned(sv, st->newest, h->target);
}

static int answer_hello(struct server *sv, struct session *ses, const uint8_t *buf, size_t len)
{
	struct session_hello h;
	struct session_state st;
	uint8_t out[SESSION_MAX_PAYLOAD];
	int r = session_decode_hello(&h, buf, len);

	if (r)
		return r;
	if ((r = make_state(sv, &h, &st)))
		return FAIL(sv, r, "looking up the replicas: %s", thinp_strerror(r));
	return session_send(ses, SESSION_STATE, out, session_encode_state(&st, out));
}

/* Errors of the receiving pool itself: the server stops (reopen the pool). */
static bool pool_failed(int r)
{
	return r == -EIO || r == -ENOMEM || r == -ECANCELED;
}

/* A STREAM: receive it, acknowledge, prune. 0 to go on reading messages,
 * 1 to close the connection, or a fatal error. */
static int take_stream(struct server *sv, struct session *ses)
{
	thinp_receive_options ro = THINP_RECEIVE_OPTIONS_INIT;
	struct session_ack ack;
	char token[THINP_STREAM_TOKEN_SIZE];
	uint8_t out[SESSION_MAX_PAYLOAD];
	uint64_t id = 0;
	int r;

	memset(&ack, 0, sizeof(ack));
	ro.flags = THINP_RECEIVE_RESUMABLE;
	ro.token = token;
	ro.token_size = sizeof(token);
	ro.errbuf = ack.msg;
	ro.errbuf_size = sizeof(ack.msg);
	job_set_phase(sv->job, THINP_JOB_PHASE_COPY);
	r = thinp_receive(sv->pool, sv->cat, session_stream_read, ses, &ro, &id);
	if (ses->failed)
		return 1;
	if (r && pool_failed(r))
		return FAIL(sv, r, "receiving: %s", ack.msg[0] ? ack.msg : thinp_strerror(r));
	ack.result = r;
	if (!r) {
		*sv->e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		r = thinp_catalog_get(sv->cat, id, sv->e);
		if (r)
			return FAIL(sv, r, "the entry of replica %" PRIu64 ": %s", id, thinp_strerror(r));
		memcpy(ack.guid, sv->e->guid, 16);
		ack.id = id;
	}
	if (session_send(ses, SESSION_ACK, out, session_encode_ack(&ack, out)))
		return 1;
	if (ack.result)
		return 1;
	job_set_round(sv->job, ++sv->published);
	if (sv->o.published)
		sv->o.published(id, ack.guid, sv->o.published_ctx);
	job_set_phase(sv->job, THINP_JOB_PHASE_CLEANUP);
	r = chain_prune(sv->cat, sv->pool, sv->e, sv->o.keep);
	job_set_phase(sv->job, THINP_JOB_PHASE_WAIT);
	return r ? FAIL(sv, r, "deleting older replicas: %s", thinp_strerror(r)) : 0;
}

/* The messages of one connection until it ends: 0, or a fatal error. */
static int serve_connection(struct server *sv, struct session *ses)
{
	uint8_t buf[SESSION_MAX_PAYLOAD];
	uint16_t type;
	size_t len;
	int r = 0;

	while (!r) {
		if ((r = session_recv(ses, &type, buf, &len)))
			return ses->failed || r == -EPROTO ? 0 : r;
		if (type == SESSION_HELLO)
			r = answer_hello(sv, ses, buf, len);
		else if (type == SESSION_STREAM)
			r = take_stream(sv, ses);
		else
			r = 1; /* not this protocol: hang up */
		if (ses->failed || r == -EPROTO)
			return 0;
	}
	return r > 0 ? 0 : r;
}

static int serve(struct server *sv, const thinp_replicate_transport *t)
{
	struct session ses = { .t = t, .job = sv->job };
	uint64_t ended = 0;
	int r;

	for (;;) {
		job_set_phase(sv->job, THINP_JOB_PHASE_WAIT);
		if ((r = job_checkpoint(sv->job, 0)))
			return r;
		r = session_connect(&ses);
		if (r == -EAGAIN)
			continue;
		if (r == -ENOTCONN)
			return 0;
		if (r)
			return FAIL(sv, r, "waiting for a connection: %s", thinp_strerror(r));
		r = serve_connection(sv, &ses);
		session_close(&ses);
		if (r || (sv->o.connections && ++ended >= sv->o.connections))
			return r;
	}
}

int thinp_replicate_serve(thinp_pool *pool, thinp_catalog *catalog,
			  const thinp_replicate_transport *transport,
			  const thinp_replicate_serve_options *opts, thinp_job *job)
{
	thinp_replicate_serve_options o = THINP_REPLICATE_SERVE_OPTIONS_INIT;
	thinp_replicate_transport t;
	struct server sv = { .pool = pool, .cat = catalog, .job = job };
	int r;

	if (!pool || !catalog ||
	    thinp_abi_copy_in(&t, sizeof(t), transport, sizeof(t), THINP_REPLICATE_VERSION) ||
	    !t.connect || !t.read || !t.write || !t.close ||
	    (opts && thinp_abi_copy_in(&o, sizeof(o), opts, sizeof(o), THINP_REPLICATE_VERSION)) ||
	    !o.keep || o.reserved)
		return -EINVAL;
	sv.o = o;
	replica_fail(o.errbuf, o.errbuf_size, 0, "%s", "");
	if (!(sv.e = thinp_os_alloc(sizeof(*sv.e))))
		return -ENOMEM;
	if (!(r = job_begin(job, THINP_JOB_PHASE_WAIT)))
		r = job_end(job, serve(&sv, &t));
	thinp_os_free(sv.e);
	return r;
}
