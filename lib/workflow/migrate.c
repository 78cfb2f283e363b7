/*
 * thinp_migrate: a device (or its family) moved to another pool in rounds of
 * send/receive, then switched in one destination catalog commit.
 *
 * The state lives in the two catalogs (migrate.h):
 *  - source: each round snapshot has an entry THINP_CATALOG_MIGRATING whose
 *    parent_guid is its member's guid. It is committed before the snapshot
 *    exists (birth stamp unset, "pending"), so a crash never leaks a
 *    snapshot nobody knows about; a rerun stamps it if the device was made,
 *    drops it if not;
 *  - destination: a round's copy is the published receive of that snapshot
 *    (guid = the snapshot's guid) kept THINP_CATALOG_MIGRATING; a receive in
 *    progress is a PARTIAL entry with that guid, resumed from its token;
 *  - switched: a member's own guid is visible on the destination without
 *    THINP_CATALOG_MIGRATING; retired: the member's source entry has
 *    THINP_CATALOG_MIGRATED (set before any clean-up, so a rerun that finds
 *    no round snapshot left still knows the migration happened).
 * A snapshot is "done" once its copy exists; a member's newest done snapshot
 * is the base of its next round, older ones are dropped (destination copies
 * first, so nothing there is left without a source guid naming it).
 */
#include "os/os.h"

#include <libthinp/delta.h>
#include <libthinp/migrate.h>
#include <libthinp/replica.h>
#include <libthinp/thin.h>

#include "catalog/catalog_internal.h"
#include "pool/origin_ops.h"
#include "replica/replica.h"
#include "job.h"
#include "pipe.h"

#define NONE UINT64_MAX
/* Device ids are 24 bits (pool.h). */
#define MAX_DEVICE_ID (1u << 24)
/* The in-process transport's buffer, and how much stream the job sees
 * between checkpoints. */
#define PIPE_BYTES (16u << 20)
#define CHECKPOINT_BYTES (256u << 10)
/* The flags that are a migration's, not a member's own. */
#define STATE_FLAGS (THINP_CATALOG_MIGRATING | THINP_CATALOG_MIGRATED | THINP_CATALOG_PARTIAL | \
		     THINP_CATALOG_ANCHOR)

struct snap {
	uint64_t id;
	uint8_t guid[16];
};

struct member {
	uint64_t id;    /* in the source pool */
	uint8_t guid[16];
	uint32_t birth; /* creation time: older members go first */
	struct snap done;    /* newest snapshot with a copy (id NONE: none) */
	struct snap pending; /* a newer one not copied yet (id NONE: none) */
};

struct mig {
	thinp_pool *src, *dst;
	thinp_catalog *scat, *dcat;
	thinp_job *job;
	thinp_migrate_options o;
	uint64_t dev;
	struct member *m;
	size_t n;
	thinp_catalog_entry *e; /* scratch */
	uint64_t unseen;        /* stream bytes not yet given to job_checkpoint */
	uint64_t round_bytes;
	uint32_t block_size;
	bool fresh;             /* no migration state found */
	bool retired;           /* the source is THINP_CATALOG_MIGRATED */
};

#define FAIL(mg, e, ...) replica_fail((mg)->o.errbuf, (mg)->o.errbuf_size, (e), __VA_ARGS__)

static bool entry_is_hidden(const thinp_catalog_entry *e)
{
	return e->flags & (THINP_CATALOG_MIGRATING | THINP_CATALOG_PARTIAL | THINP_CATALOG_ANCHOR);
}

/* Device @id's entry removed (if there is one) and @cat committed. */
static int remove_entry(thinp_catalog *cat, thinp_pool *pool, uint64_t id)
{
	int r = thinp_catalog_remove(cat, id);

	return r == -ENODATA ? 0 : r ? r : replica_commit_catalog(cat, pool);
}

/* @e attached (birth-stamped from @pool) and @cat committed. */
static int attach_commit(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *e)
{
	int r = thinp_catalog_attach(cat, pool, e);

	return r ? r : replica_commit_catalog(cat, pool);
}

/* Entry @e set and @cat committed. */
static int set_commit(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *e)
{
	int r = thinp_catalog_set(cat, e);

	return r ? r : replica_commit_catalog(cat, pool);
}

/* ---- Members ------------------------------------------------------------ */

static int add_member(struct mig *mg, uint64_t id)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	struct member *m = thinp_os_realloc(mg->m, mg->n * sizeof(*m), (mg->n + 1) * sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	mg->m = m;
	m += mg->n;
	if ((r = replica_identify(mg->src, mg->scat, id, mg->e)) ||
	    (r = thinp_pool_get_thin_status(mg->src, id, &st)))
		return FAIL(mg, r, "device %" PRIu64 ": %s", id, thinp_strerror(r));
	if (mg->e->origin[0])
		return FAIL(mg, -EOPNOTSUPP, "device %" PRIu64 " has an external origin", id);
	m->id = id;
	memcpy(m->guid, mg->e->guid, 16);
	m->birth = st.creation_time;
	m->done.id = m->pending.id = NONE;
	mg->n++;
	return 0;
}

static bool is_member(const struct mig *mg, uint64_t id)
{
	for (size_t i = 0; i < mg->n; i++)
		if (mg->m[i].id == id)
			return true;
	return false;
}

static bool on_dst(struct mig *mg, const uint8_t guid[16], uint64_t *id)
{
	int r = catalog_find_guid(mg->dcat, 0, guid, false, mg->e);

	if (!r && id)
		*id = mg->e->id;
	return r == 0;
}

/* Whether devices @a and @b map some virtual block to the same data block. */
static int share_blocks(thinp_pool *pool, uint64_t a, uint64_t b)
{
	thinp_delta *d = NULL;
	thinp_delta_run run[16]; /* kernel stacks are small */
	size_t nr = 0;
	int r = thinp_pool_delta_open(&d, pool, a, b, NULL);

	while (!r && !(r = thinp_delta_next(d, run, 16, &nr)) && nr)
		for (size_t i = 0; i < nr && !r; i++)
			r = run[i].kind == THINP_DELTA_SAME;
	thinp_delta_close(d);
	return r;
}

/* Source devices a family member may be: current entry (or none), not one
 * of the hidden kinds; retired ones only when retired. */
static bool candidate(struct mig *mg, uint64_t id)
{
	int r = replica_current_entry(mg->scat, mg->src, id, mg->e);

	if (r)
		return !mg->retired;
	return !entry_is_hidden(mg->e) && (!(mg->e->flags & THINP_CATALOG_MIGRATED) == !mg->retired);
}

/* Every device sharing blocks with a member, until none is left to add. */
static int add_family(struct mig *mg)
{
	uint64_t *ids = NULL;
	size_t total = 0, nr;
	int r = thinp_pool_list_thins(mg->src, NULL, 0, &total);

	if (!r && !(ids = thinp_os_alloc((total + 1) * sizeof(*ids))))
		r = -ENOMEM;
	if (!r)
		r = thinp_pool_list_thins(mg->src, ids, total, &nr);
	for (size_t i = 0; !r && i < mg->n; i++)
		for (size_t k = 0; !r && k < nr; k++) {
			uint8_t guid[16];

			if (is_member(mg, ids[k]) || !candidate(mg, ids[k]))
				continue;
			memcpy(guid, mg->e->guid, 16);
			/* Retired: every retired device whose copy switched. */
			r = mg->retired ? on_dst(mg, guid, NULL)
					: share_blocks(mg->src, mg->m[i].id, ids[k]);
			if (r > 0)
				r = add_member(mg, ids[k]);
		}
	thinp_os_free(ids);
	return r < 0 ? FAIL(mg, r, "finding the family: %s", thinp_strerror(r)) : 0;
}

static int by_birth(const void *a, const void *b)
{
	const struct member *x = a, *y = b;

	return x->birth < y->birth ? -1 : x->birth > y->birth ? 1 : x->id < y->id ? -1 : 1;
}

/* ---- Round snapshots ---------------------------------------------------- */

/*
 * Device @id of @pool, a migration's own, and its entry: the device first,
 * so that a crash leaves its entry, which a rerun finds stale (the birth
 * stamp names the deleted device) rather than a device nobody knows. A
 * placeholder (birth stamp unset: committed before its device was made)
 * takes its device with it if that was made.
 */
static int drop_entry_device(struct mig *mg, thinp_pool *pool, thinp_catalog *cat, uint64_t id)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r = replica_current_entry(cat, pool, id, mg->e);

	if (r == -ENODATA && !thinp_catalog_get(cat, id, mg->e) && !mg->e->birth_time &&
	    !mg->e->birth_transaction && !thinp_pool_get_thin_status(pool, id, &st))
		r = 0;
	if (!r)
		r = thinp_pool_delete_thin(pool, id);
	else if (r == -ENODATA)
		r = 0;
	return r ? r : remove_entry(cat, pool, id);
}

/* Every destination device made from snapshot @guid: its copies, partial
 * receives, anchors. Entry first, then the device. */
static int drop_copies(struct mig *mg, const uint8_t guid[16])
{
	int r = 0;

	*mg->e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !r && thinp_catalog_next(mg->dcat, id, mg->e) == 0; id = mg->e->id + 1) {
		bool anchor = mg->e->flags & THINP_CATALOG_ANCHOR;

		if ((anchor && !memcmp(mg->e->parent_guid, guid, 16)) ||
		    (!anchor && (mg->e->flags & (THINP_CATALOG_MIGRATING | THINP_CATALOG_PARTIAL)) &&
		     !memcmp(mg->e->guid, guid, 16))) {
			uint64_t victim = mg->e->id;

			r = drop_entry_device(mg, mg->dst, mg->dcat, victim);
			mg->e->id = victim;
		}
	}
	return r;
}

/* Snapshot @s gone: its destination copies, then itself (or only its entry
 * if that is stale: no device, or another device at its id). */
static int drop_snap(struct mig *mg, const struct snap *s)
{
	int r = drop_copies(mg, s->guid);

	if (!r)
		r = drop_entry_device(mg, mg->src, mg->scat, s->id);
	return r ? FAIL(mg, r, "dropping round snapshot %" PRIu64 ": %s", s->id,
			thinp_strerror(r)) : 0;
}

static struct member *member_of(struct mig *mg, const uint8_t guid[16])
{
	for (size_t i = 0; i < mg->n; i++)
		if (!memcmp(mg->m[i].guid, guid, 16))
			return &mg->m[i];
	return NULL;
}

/* Whether device @a was created after device @b (0, 1, or a negative errno). */
static int newer(thinp_pool *pool, uint64_t a, uint64_t b)
{
	thinp_thin_status x = THINP_THIN_STATUS_INIT, y = THINP_THIN_STATUS_INIT;
	int r = thinp_pool_get_thin_status(pool, a, &x);

	if (!r)
		r = thinp_pool_get_thin_status(pool, b, &y);
	if (r)
		return r;
	return x.creation_time != y.creation_time ? x.creation_time > y.creation_time
						    : x.transaction_id > y.transaction_id;
}

/*
 * Round snapshot @s of @m (current entry) sorted into done (it has a copy)
 * or pending; of two in one slot the older is superseded and dropped.
 */
static int sort_snap(struct mig *mg, struct member *m, struct snap s)
{
	struct snap *slot = on_dst(mg, s.guid, NULL) ? &m->done : &m->pending;
	int r = slot->id == NONE ? 1 : newer(mg->src, s.id, slot->id);

	if (r < 0)
		return r;
	if (!r)
		return drop_snap(mg, &s);
	if (slot->id != NONE && (r = drop_snap(mg, slot)))
		return r;
	*slot = s;
	return 0;
}

/*
 * Round snapshot @s of @m as found in the catalog: a pending entry (birth
 * stamp unset) whose device exists is stamped; a stale one goes.
 */
static int found_snap(struct mig *mg, struct member *m, struct snap s)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	int r = replica_current_entry(mg->scat, mg->src, s.id, mg->e);

	mg->fresh = false;
	if (r == -ENODATA && thinp_pool_get_thin_status(mg->src, s.id, &st) == 0 &&
	    !thinp_catalog_get(mg->scat, s.id, mg->e) && !mg->e->birth_time &&
	    !mg->e->birth_transaction)
		r = attach_commit(mg->scat, mg->src, mg->e);
	if (r == -ENODATA)
		return drop_snap(mg, &s);
	return r ? r : sort_snap(mg, m, s);
}

/* The round snapshots of every member, from the source catalog. */
static int find_snaps(struct mig *mg)
{
	struct snap *found = NULL;
	size_t nr = 0;
	int r = 0;

	*mg->e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(mg->scat, id, mg->e) == 0; id = mg->e->id + 1) {
		struct snap *f;

		if (!(mg->e->flags & THINP_CATALOG_MIGRATING) || !member_of(mg, mg->e->parent_guid))
			continue;
		if (!(f = thinp_os_realloc(found, nr * 2 * sizeof(*f), (nr + 1) * 2 * sizeof(*f)))) {
			thinp_os_free(found);
			return -ENOMEM;
		}
		found = f;
		/* Pairs: the snapshot, then its member's guid in .guid. */
		found[2 * nr].id = mg->e->id;
		memcpy(found[2 * nr].guid, mg->e->guid, 16);
		memcpy(found[2 * nr + 1].guid, mg->e->parent_guid, 16);
		nr++;
	}
	for (size_t i = 0; !r && i < nr; i++) {
		r = found_snap(mg, member_of(mg, found[2 * i + 1].guid), found[2 * i]);
	}
	thinp_os_free(found);
	return r;
}

/* A free id of @pool that no entry of @cat holds either (the entry of a
 * device about to be made may come first). */
static int64_t free_id(struct mig *mg, thinp_pool *pool, thinp_catalog *cat)
{
	for (uint64_t id = 0; id < MAX_DEVICE_ID; id++) {
		thinp_thin_status st = THINP_THIN_STATUS_INIT;
		int r = thinp_pool_get_thin_status(pool, id, &st);

		if (r == -ENODATA && thinp_catalog_get(cat, id, mg->e) == -ENODATA)
			return (int64_t)id;
		if (r && r != -ENODATA)
			return r;
	}
	return -ENOSPC;
}

/* A new round snapshot of @m: its entry committed (pending), the snapshot
 * made, the entry stamped. */
static int take_snap(struct mig *mg, struct member *m)
{
	int64_t id = free_id(mg, mg->src, mg->scat);
	int r = id < 0 ? (int)id : thinp_catalog_inherit(mg->scat, m->id, mg->e);

	if (!r) {
		mg->e->id = (uint64_t)id;
		mg->e->flags = (mg->e->flags & ~STATE_FLAGS) | THINP_CATALOG_MIGRATING |
			       THINP_CATALOG_READ_ONLY;
		m->pending.id = (uint64_t)id;
		memcpy(m->pending.guid, mg->e->guid, 16);
		r = set_commit(mg->scat, mg->src, mg->e);
	}
	if (!r)
		r = thinp_pool_create_snap(mg->src, (uint64_t)id, m->id);
	if (!r)
		r = attach_commit(mg->scat, mg->src, mg->e);
	return r ? FAIL(mg, r, "snapshot of device %" PRIu64 ": %s", m->id, thinp_strerror(r)) : 0;
}

/* ---- Copying ------------------------------------------------------------ */

struct sender {
	struct mig *mg;
	struct wf_pipe *pipe;
	uint64_t dev, base;
	const char *token;
	char errbuf[256];
	int result;
};

static void send_thread(void *arg)
{
	struct sender *s = arg;
	thinp_send_options o = THINP_SEND_OPTIONS_INIT;

	o.checkpoint_bytes = s->mg->o.checkpoint_bytes;
	o.errbuf = s->errbuf;
	o.errbuf_size = sizeof(s->errbuf);
	o.resume_token = s->token;
	s->result = thinp_send(s->mg->src, s->mg->scat, s->dev, s->base, wf_pipe_write, s->pipe, &o);
	wf_pipe_close_write(s->pipe, s->result);
}

/* The receive's read callback: the pipe, with the job's checkpoints. */
static int read_stream(void *buf, size_t len, size_t *got, void *ctx)
{
	struct sender *s = ctx;
	struct mig *mg = s->mg;
	int r = wf_pipe_read(buf, len, got, s->pipe);

	mg->unseen += *got;
	mg->round_bytes += *got;
	if (!r && (mg->unseen >= CHECKPOINT_BYTES || !*got)) {
		r = job_checkpoint(mg->job, mg->unseen);
		mg->unseen = 0;
	}
	return r;
}

/* One send of @dev (from @base, or THINP_SEND_FULL) received on the
 * destination, through a sender thread. */
static int transfer(struct mig *mg, uint64_t dev, uint64_t base, const char *token,
		    const struct replica_receive_ext *ext, uint64_t copy)
{
	thinp_receive_options o = THINP_RECEIVE_OPTIONS_INIT;
	struct sender s = { .mg = mg, .dev = dev, .base = base, .token = token };
	char errbuf[256] = "";
	thinp_os_thread t;
	uint64_t id;
	int r = wf_pipe_new(&s.pipe, PIPE_BYTES);

	if (r)
		return r;
	if ((r = thinp_os_thread_start(&t, "thinp-migrate", send_thread, &s))) {
		wf_pipe_free(s.pipe);
		return r;
	}
	o.flags = THINP_RECEIVE_RESUMABLE;
	o.id = copy;
	o.errbuf = errbuf;
	o.errbuf_size = sizeof(errbuf);
	r = replica_receive(mg->dst, mg->dcat, read_stream, &s, &o, ext, &id);
	wf_pipe_close_read(s.pipe);
	thinp_os_thread_join(&t);
	wf_pipe_free(s.pipe);
	if (r && s.result && s.result != -EPIPE && r == s.result)
		return FAIL(mg, r, "send: %s", s.errbuf);
	return r ? FAIL(mg, r, "receive: %s", errbuf) : 0;
}

/*
 * Placeholders committed on the destination for the copy of snapshot @s
 * and its anchor, so that a crash between making either device and the
 * receive's catalog commit leaves an entry naming it (drop_copies deletes
 * it). Both are hidden: PARTIAL, and the anchor's also ANCHOR.
 */
static int reserve(struct mig *mg, const struct snap *s, struct replica_receive_ext *ext,
		   uint64_t *copy)
{
	int64_t id[2] = { 0, 0 };
	int r = 0;

	for (int i = 0; !r && i < 2; i++) {
		id[i] = free_id(mg, mg->dst, mg->dcat);
		if (id[i] < 0)
			return (int)id[i];
		*mg->e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		mg->e->id = (uint64_t)id[i];
		mg->e->flags = THINP_CATALOG_PARTIAL | THINP_CATALOG_MIGRATING |
			       (i ? THINP_CATALOG_ANCHOR : 0);
		memcpy(i ? mg->e->parent_guid : mg->e->guid, s->guid, 16);
		r = thinp_catalog_set(mg->dcat, mg->e);
	}
	if (!r)
		r = replica_commit_catalog(mg->dcat, mg->dst);
	ext->publish_flags = THINP_CATALOG_MIGRATING;
	ext->anchor_id = (uint64_t)id[1];
	*copy = (uint64_t)id[0];
	return r;
}

/* The copy of @m's pending snapshot from @base: resumed if a partial
 * receive of it is waiting and has a resume point, afresh otherwise. */
static int copy_snap(struct mig *mg, struct member *m, uint64_t base)
{
	struct replica_receive_ext ext = { THINP_CATALOG_MIGRATING, THINP_RECEIVE_ANY_ID };
	char token[THINP_STREAM_TOKEN_SIZE];
	uint64_t partial = NONE, copy = 0;
	int r = 0;

	*mg->e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; thinp_catalog_next(mg->dcat, id, mg->e) == 0; id = mg->e->id + 1)
		if ((mg->e->flags & THINP_CATALOG_PARTIAL) && !memcmp(mg->e->guid, m->pending.guid, 16))
			partial = mg->e->id;
	if (partial != NONE) {
		r = thinp_receive_token(mg->dst, mg->dcat, partial, token, sizeof(token));
		ext.anchor_id = THINP_RECEIVE_ANY_ID;
		/* Its anchor placeholder, if any, is the one to use, without the
		 * snapshot an interrupted publish may have made there. */
		if (!r && catalog_find_guid(mg->dcat, 0, m->pending.guid, true, mg->e) == 0 &&
		    !mg->e->birth_time && !mg->e->birth_transaction) {
			thinp_thin_status st = THINP_THIN_STATUS_INIT;

			ext.anchor_id = mg->e->id;
			if (!thinp_pool_get_thin_status(mg->dst, ext.anchor_id, &st))
				r = thinp_pool_delete_thin(mg->dst, ext.anchor_id);
		}
		if (!r)
			r = transfer(mg, m->pending.id, base, token, &ext, THINP_RECEIVE_ANY_ID);
		/* No resume point, or one for another base: start over. */
		if (r != -ENODATA && r != -EINVAL && r != -ESTALE)
			return r;
		if ((r = drop_copies(mg, m->pending.guid)))
			return FAIL(mg, r, "dropping a partial receive: %s", thinp_strerror(r));
	}
	/* What an interrupted run left for this snapshot: placeholders. */
	if (partial == NONE && (r = drop_copies(mg, m->pending.guid)))
		return FAIL(mg, r, "dropping placeholders: %s", thinp_strerror(r));
	r = reserve(mg, &m->pending, &ext, &copy);
	return r ? FAIL(mg, r, "reserving ids: %s", thinp_strerror(r))
		 : transfer(mg, m->pending.id, base, NULL, &ext, copy);
}

struct count {
	uint64_t blocks;
};

/* Blocks sent as data (an unmap carries none). */
static int count_run(const thinp_delta_run *run, void *ctx)
{
	if (run->kind != THINP_DELTA_LEFT_ONLY)
		((struct count *)ctx)->blocks += run->length;
	return 0;
}

/* The data blocks a send of @dev from @base (NONE: full) carries. */
static int64_t send_blocks(struct mig *mg, uint64_t dev, uint64_t base)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	struct count c = { 0 };
	int r;

	if (base == NONE) {
		r = thinp_pool_get_thin_status(mg->src, dev, &st);
		return r ? r : (int64_t)st.mapped_blocks;
	}
	o.flags = THINP_DELTA_CHANGES_ONLY;
	r = thinp_pool_delta(mg->src, base, dev, &o, count_run, &c);
	return r ? r : (int64_t)c.blocks;
}

/*
 * The base of @m's pending snapshot: its own done snapshot; else (the first
 * round of a family member) the copied snapshot of another member with the
 * fewest differing blocks, if fewer than a full send, so the blocks they
 * share stay shared; else none.
 */
static int choose_base(struct mig *mg, struct member *m, uint64_t *base, uint64_t *blocks)
{
	int64_t best = send_blocks(mg, m->pending.id, NONE);

	*base = NONE;
	if (m->done.id != NONE) {
		*base = m->done.id;
		best = send_blocks(mg, m->pending.id, *base);
	}
	for (size_t i = 0; m->done.id == NONE && best > 0 && i < mg->n; i++) {
		int64_t n;

		if (mg->m[i].done.id == NONE || &mg->m[i] == m)
			continue;
		n = send_blocks(mg, m->pending.id, mg->m[i].done.id);
		if (n < 0)
			return (int)n;
		if (n < best) {
			best = n;
			*base = mg->m[i].done.id;
		}
	}
	if (best < 0)
		return (int)best;
	*blocks = (uint64_t)best;
	return 0;
}

/*
 * A member's first copy is sent against one base, so on the destination it
 * shares blocks with that base's copy only; in the source it may share
 * others with other members (a snapshot whose origin was written between an
 * older snapshot and it: it shares those blocks with the origin, the rest
 * with the older snapshot). So each virtual block it maps to the same source
 * data block as another copied member is mapped, in the copy and its anchor
 * alike (later receives check that they match), to that member's copy's
 * block: the same bytes, copied from the same source block, one block
 * instead of two.
 */
struct reshare {
	struct mig *mg;
	uint64_t src[2];  /* the source snapshots of the member and the other */
	uint64_t ids[2];  /* the member's copy and its anchor */
	uint64_t other;   /* the other member's copy */
	thinp_delta_run *runs; /* where the copies differ */
	size_t nr, cap;
};

/* The copies' delta is read whole before anything is remapped: a walk
 * fails when the device it walks changes under it. */
static int collect_different(const thinp_delta_run *run, void *ctx)
{
	struct reshare *rs = ctx;
	thinp_delta_run *p;

	if (run->kind != THINP_DELTA_DIFFERENT)
		return 0;
	if (rs->nr == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 64;

		if (!(p = thinp_os_realloc(rs->runs, rs->cap * sizeof(*p), cap * sizeof(*p))))
			return -ENOMEM;
		rs->runs = p;
		rs->cap = cap;
	}
	rs->runs[rs->nr++] = *run;
	return 0;
}

/* 1 if both source snapshots map @v to one data block, 0 if not, or an error. */
static int same_in_source(const struct reshare *rs, uint64_t v)
{
	thinp_mapping a = THINP_MAPPING_INIT, b = THINP_MAPPING_INIT;
	int r = thinp_pool_thin_map(rs->mg->src, rs->src[0], v, &a);

	if (!r)
		r = thinp_pool_thin_map(rs->mg->src, rs->src[1], v, &b);
	if (r)
		return r == -ENODATA ? 0 : r;
	return a.data_block == b.data_block;
}

/* Where the copies differ (a changes-only delta: what they share already is
 * skipped unread) but the sources share the block, the copy and its anchor
 * take the other copy's block. */
static int reshare_with(struct reshare *rs)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	int r;

	o.flags = THINP_DELTA_CHANGES_ONLY;
	rs->nr = 0;
	r = thinp_pool_delta(rs->mg->dst, rs->other, rs->ids[0], &o, collect_different, rs);
	for (size_t i = 0; !r && i < rs->nr; i++)
		for (uint64_t v = rs->runs[i].virt_begin;
		     !r && v < rs->runs[i].virt_begin + rs->runs[i].length; v++) {
			r = same_in_source(rs, v);
			if (r == 1)
				r = pool_share_block(rs->mg->dst, rs->ids, 2, v, rs->other, v);
			r = r < 0 ? r : 0;
		}
	return r;
}

static int reshare(struct mig *mg, const struct member *m)
{
	struct reshare rs = { .mg = mg, .src = { m->done.id, 0 } };
	int r = 0;

	if (!on_dst(mg, m->done.guid, &rs.ids[0]) ||
	    catalog_find_guid(mg->dcat, 0, m->done.guid, true, mg->e))
		return FAIL(mg, -ENODATA, "sharing: the copy of device %" PRIu64 " or its anchor "
			    "is missing", m->id);
	rs.ids[1] = mg->e->id;
	for (size_t i = 0; !r && i < mg->n; i++) {
		const struct member *o = &mg->m[i];

		rs.src[1] = o->done.id;
		if (o != m && o->done.id != NONE && on_dst(mg, o->done.guid, &rs.other))
			r = reshare_with(&rs);
	}
	thinp_os_free(rs.runs);
	return r ? FAIL(mg, r, "sharing the copies' blocks: %s", thinp_strerror(r)) : 0;
}

/* @m's pending snapshot copied from @base (NONE: full), @blocks of data;
 * then it is done and the one it supersedes dropped. A first copy then
 * shares with the other copies what it shares with them in the source. */
static int copy_member(struct mig *mg, struct member *m, uint64_t base, uint64_t blocks)
{
	struct snap old = m->done;
	int r;

	job_add_total(mg->job, blocks * mg->block_size);
	r = copy_snap(mg, m, base == NONE ? THINP_SEND_FULL : base);
	if (!r) {
		m->done = m->pending;
		m->pending.id = NONE;
	}
	if (!r && old.id == NONE && mg->n > 1)
		r = reshare(mg, m);
	if (!r && old.id != NONE)
		r = drop_snap(mg, &old);
	if (!r)
		r = job_checkpoint(mg->job, mg->unseen);
	mg->unseen = 0;
	return r;
}

/*
 * One round: a snapshot of every member (unless one is pending from an
 * interrupted run), then each copied. A member copied before goes from its
 * own last copy; the others (a family's first round) one at a time, always
 * the one the fewest data blocks away from what is copied already (or from
 * nothing: a full copy), so a chain of snapshots goes as a chain and each
 * block they share is copied once.
 */
static int run_round(struct mig *mg, uint32_t phase)
{
	int r = 0;

	job_set_phase(mg->job, phase);
	mg->round_bytes = 0;
	for (size_t i = 0; !r && i < mg->n; i++)
		if (mg->m[i].pending.id == NONE)
			r = take_snap(mg, &mg->m[i]);
	for (size_t i = 0; !r && i < mg->n; i++) {
		uint64_t base, blocks = 0;

		if (mg->m[i].done.id != NONE && !(r = choose_base(mg, &mg->m[i], &base, &blocks)))
			r = copy_member(mg, &mg->m[i], base, blocks);
	}
	for (;;) {
		struct member *next = NULL;
		uint64_t base, blocks, best_base = NONE, best = UINT64_MAX;

		for (size_t i = 0; !r && i < mg->n; i++) {
			if (mg->m[i].pending.id == NONE ||
			    (r = choose_base(mg, &mg->m[i], &base, &blocks)) || blocks >= best)
				continue;
			next = &mg->m[i];
			best = blocks;
			best_base = base;
		}
		if (r || !next)
			return r;
		if ((r = copy_member(mg, next, best_base, best)))
			return r;
	}
}

/* ---- Switch and clean-up -------------------------------------------------- */

/* The one destination commit: every member's last copy takes the member's
 * identity (guid, parent guid, size, flags); its anchors follow the guid. */
static int switch_over(struct mig *mg)
{
	thinp_catalog_entry *src = thinp_os_alloc(sizeof(*src));
	int r = src ? 0 : -ENOMEM;

	job_set_phase(mg->job, THINP_JOB_PHASE_SWITCH);
	for (size_t i = 0; !r && i < mg->n; i++) {
		struct member *m = &mg->m[i];
		uint64_t copy;

		if ((r = replica_current_entry(mg->scat, mg->src, m->id, src)))
			break;
		if (!on_dst(mg, m->done.guid, &copy)) {
			r = -ENODATA;
			break;
		}
		mg->e->flags = src->flags & ~STATE_FLAGS;
		memcpy(mg->e->guid, m->guid, 16);
		memcpy(mg->e->parent_guid, src->parent_guid, 16);
		if (src->size)
			mg->e->size = src->size;
		if ((r = thinp_catalog_set(mg->dcat, mg->e)))
			break;
		while (!r && catalog_find_guid(mg->dcat, 0, m->done.guid, true, mg->e) == 0) {
			memcpy(mg->e->parent_guid, m->guid, 16);
			r = thinp_catalog_set(mg->dcat, mg->e);
		}
	}
	if (!r)
		r = replica_commit_catalog(mg->dcat, mg->dst);
	thinp_os_free(src);
	return r ? FAIL(mg, r, "switching: %s", thinp_strerror(r)) : 0;
}

/* The members' source entries THINP_CATALOG_MIGRATED, in one commit. */
static int retire(struct mig *mg)
{
	int r = 0;

	for (size_t i = 0; !r && i < mg->n; i++)
		if (!(r = replica_current_entry(mg->scat, mg->src, mg->m[i].id, mg->e))) {
			mg->e->flags |= THINP_CATALOG_MIGRATED;
			r = thinp_catalog_set(mg->scat, mg->e);
		}
	return r ? r : replica_commit_catalog(mg->scat, mg->src);
}

/* The entries of retired devices an interrupted clean-up deleted (stale:
 * the device is gone) whose copies switched: removed, in one commit. */
static int forget_retired(struct mig *mg)
{
	bool removed = false;
	uint8_t guid[16];
	int r = 0;

	*mg->e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (uint64_t id = 0; !r && thinp_catalog_next(mg->scat, id, mg->e) == 0; id++) {
		id = mg->e->id;
		memcpy(guid, mg->e->guid, 16);
		if (!(mg->e->flags & THINP_CATALOG_MIGRATED) ||
		    replica_current_entry(mg->scat, mg->src, id, mg->e) != -ENODATA)
			continue;
		if (on_dst(mg, guid, NULL) && !(mg->e->flags & THINP_CATALOG_MIGRATING)) {
			r = thinp_catalog_remove(mg->scat, id);
			removed = true;
		}
	}
	return r || !removed ? r : replica_commit_catalog(mg->scat, mg->src);
}

/* After the switch: the source retired, the round snapshots and the
 * intermediate copies dropped, then the members deleted, @dev last (a rerun
 * starting from it finds the others while it exists). The device goes
 * before its entry: a crash then leaves a stale entry, which is harmless,
 * rather than a retired device nobody would delete. */
static int clean_up(struct mig *mg)
{
	int r = 0;

	job_set_phase(mg->job, THINP_JOB_PHASE_CLEANUP);
	if (!mg->retired && (r = retire(mg)))
		return FAIL(mg, r, "retiring the source: %s", thinp_strerror(r));
	for (size_t i = 0; !r && i < mg->n; i++) {
		if (mg->m[i].done.id != NONE)
			r = drop_snap(mg, &mg->m[i].done);
		if (!r && mg->m[i].pending.id != NONE)
			r = drop_snap(mg, &mg->m[i].pending);
	}
	if (!r)
		r = forget_retired(mg);
	for (size_t k = 0; !r && k <= mg->n; k++) {
		/* Every member but @dev, then @dev. */
		uint64_t id = k < mg->n ? mg->m[k].id : mg->dev;

		if (k < mg->n && id == mg->dev)
			continue;
		r = thinp_pool_delete_thin(mg->src, id);
		if (!r || r == -ENODATA)
			r = remove_entry(mg->scat, mg->src, id);
		if (r)
			FAIL(mg, r, "deleting source device %" PRIu64 ": %s", id, thinp_strerror(r));
	}
	return r;
}

/* Whether the switch happened: a member's own guid is a visible device of
 * the destination. */
static bool switched(struct mig *mg, uint64_t *copy)
{
	for (size_t i = 0; i < mg->n; i++)
		if (on_dst(mg, mg->m[i].guid, copy) && !(mg->e->flags & THINP_CATALOG_MIGRATING))
			return true;
	return false;
}

/* ---- The run ------------------------------------------------------------- */

/*
 * @dev no longer exists: a run that finished deleting it left its entry
 * (retired) at most; that goes, and *new_id is its copy. -ENODATA if there
 * is no such trace.
 */
static int finished(struct mig *mg, uint64_t *new_id)
{
	int r = thinp_catalog_get(mg->scat, mg->dev, mg->e);

	if (r || !(mg->e->flags & THINP_CATALOG_MIGRATED))
		return FAIL(mg, -ENODATA, "no device %" PRIu64, mg->dev);
	if (!on_dst(mg, mg->e->guid, new_id))
		return FAIL(mg, -ENODATA, "device %" PRIu64 " was migrated, but not here", mg->dev);
	return remove_entry(mg->scat, mg->src, mg->dev);
}

/* The members, their round snapshots and what state the migration is in. */
static int load(struct mig *mg)
{
	int r = add_member(mg, mg->dev);

	if (r)
		return r;
	mg->retired = mg->e->flags & THINP_CATALOG_MIGRATED;
	if (entry_is_hidden(mg->e))
		return FAIL(mg, -EINVAL, "device %" PRIu64 " is hidden (an anchor, a partial "
			    "receive or a migration's snapshot)", mg->dev);
	if ((mg->o.flags & THINP_MIGRATE_FAMILY) && (r = add_family(mg)))
		return r;
	thinp_os_sort(mg->m, mg->n, sizeof(*mg->m), by_birth);
	mg->fresh = !mg->retired;
	return find_snaps(mg);
}

/* Rounds until the caller answers FINAL and the final round is copied. */
static int rounds(struct mig *mg)
{
	uint64_t round = 0;
	bool pending = false;
	int r = 0, next;

	for (size_t i = 0; i < mg->n; i++)
		pending |= mg->m[i].pending.id != NONE;
	/* A round an interrupted run left half done is finished first. */
	if (pending && (r = run_round(mg, THINP_JOB_PHASE_CATCH_UP)))
		return r;
	for (;;) {
		job_set_round(mg->job, round);
		next = mg->o.next ? mg->o.next(mg->o.next_ctx, round, mg->round_bytes)
				  : THINP_MIGRATE_FINAL;
		if (next < 0)
			return FAIL(mg, next, "stopped by the caller: %s", thinp_strerror(next));
		if (next == THINP_MIGRATE_STOP)
			return FAIL(mg, -EINPROGRESS, "stopped by the caller before the switch");
		if (next != THINP_MIGRATE_ROUND && next != THINP_MIGRATE_FINAL)
			return FAIL(mg, -EINVAL, "the next callback answered %d", next);
		r = run_round(mg, next == THINP_MIGRATE_FINAL ? THINP_JOB_PHASE_FINAL
				  : mg->m[0].done.id == NONE ? THINP_JOB_PHASE_COPY
							     : THINP_JOB_PHASE_CATCH_UP);
		if (r)
			return r;
		job_set_round(mg->job, ++round);
		if (next == THINP_MIGRATE_FINAL)
			return 0;
	}
}

static int migrate(struct mig *mg, uint64_t *new_id)
{
	thinp_thin_status st = THINP_THIN_STATUS_INIT;
	uint32_t bs = replica_block_size(mg->dst);
	int r;

	mg->block_size = replica_block_size(mg->src);
	if (!mg->block_size || !bs)
		return FAIL(mg, -EIO, "cannot read the pools' status");
	if (mg->block_size != bs)
		return FAIL(mg, -EINVAL, "the pools' data block sizes differ (%" PRIu32 ", %" PRIu32
			    ")", mg->block_size, bs);
	if ((r = thinp_pool_get_thin_status(mg->src, mg->dev, &st)) == -ENODATA)
		return finished(mg, new_id);
	if (r || (r = load(mg)))
		return r;
	if (switched(mg, new_id)) {
		if (mg->fresh)
			return FAIL(mg, -EEXIST, "a device of the destination has device %" PRIu64
				    "'s guid already", mg->dev);
	} else if (mg->retired) {
		return FAIL(mg, -EINVAL, "device %" PRIu64 " is retired but its copy is gone",
			    mg->dev);
	} else if ((r = rounds(mg)) || (r = switch_over(mg))) {
		return r;
	}
	if ((r = clean_up(mg)))
		return r;
	for (size_t i = 0; i < mg->n; i++)
		if (mg->m[i].id == mg->dev && !on_dst(mg, mg->m[i].guid, new_id))
			return FAIL(mg, -EIO, "the copy of device %" PRIu64 " vanished", mg->dev);
	return 0;
}

int thinp_migrate(thinp_pool *src, thinp_catalog *src_cat, uint64_t dev, thinp_pool *dst,
		  thinp_catalog *dst_cat, const thinp_migrate_options *opts, thinp_job *job,
		  uint64_t *new_id)
{
	struct mig mg = { .src = src, .scat = src_cat, .dst = dst, .dcat = dst_cat, .job = job,
			  .dev = dev };
	thinp_migrate_options o = THINP_MIGRATE_OPTIONS_INIT;
	uint64_t id = NONE;
	int r;

	if (!src || !src_cat || !dst || !dst_cat || src == dst || !new_id)
		return -EINVAL;
	if (opts) {
		if (opts->struct_size < sizeof(o) || opts->version != THINP_MIGRATE_OPTIONS_VERSION ||
		    (opts->flags & ~THINP_MIGRATE_FAMILY) || opts->reserved)
			return -EINVAL;
		o = *opts;
	}
	mg.o = o;
	replica_fail(o.errbuf, o.errbuf_size, 0, "%s", "");
	if ((r = job_begin(job, THINP_JOB_PHASE_COPY)))
		return r;
	if (!(mg.e = thinp_os_alloc(sizeof(*mg.e))))
		return job_end(job, -ENOMEM);
	r = migrate(&mg, &id);
	if (!r)
		*new_id = id;
	thinp_os_free(mg.e);
	thinp_os_free(mg.m);
	return job_end(job, r);
}
