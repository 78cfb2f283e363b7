/*
 * thinp_catalog_message: a pool message with the catalog kept in step, the
 * one place front-ends (thinp-fuse's control file, the nbdkit plugin's
 * control socket) run the create/snapshot/delete grammar.
 *
 * The order of the two commits is the catalog's rule (docs/CATALOG.md): a
 * device is created (the pool commits) before its entry is attached and the
 * catalog committed; an entry is removed and the catalog committed before
 * the device is deleted. A crash between the two leaves a device without an
 * entry, never an entry describing another device.
 */
#include "os/os.h"

#include <libthinp/catalog.h>
#include <libthinp/meta.h>
#include <libthinp/pool.h>
#include "catalog/catalog_internal.h"
#include "util/parse.h"

#define MSG_WORDS 4
#define MSG_LINE 256

struct msg {
	char buf[MSG_LINE];
	char *w[MSG_WORDS];
	int n;
};

/* Split @text on blanks (a trailing newline is a blank). */
static int split(const char *text, struct msg *m)
{
	if (strlen(text) >= sizeof(m->buf))
		return -EINVAL;
	strcpy(m->buf, text);
	m->n = parse_split_words(m->buf, " \t\r\n", m->w, MSG_WORDS);
	return m->n > 0 ? 0 : -EINVAL;
}

/* A decimal number as the kernel reads it (kstrtoull, base 10); above
 * @max is -EINVAL too, as the kernel's invalid device id. */
static int number(const char *s, uint64_t max, uint64_t *out)
{
	const char *end;

	return parse_decimal_u64(s, &end, out) || *end || *out > max ? -EINVAL : 0;
}

/* Bytes, with an optional k/m/g/t suffix (powers of 1024); a positive
 * multiple of 512. */
static int size_arg(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	const char *u, *end;
	uint64_t v;

	if (parse_decimal_u64(s, &end, &v))
		return -EINVAL;
	if (*end) {
		if (end[1] || !(u = strchr(units, *end | 0x20)))
			return -EINVAL;
		for (int i = 0; i <= u - units; i++) {
			if (v > UINT64_MAX / 1024)
				return -EINVAL;
			v *= 1024;
		}
	}
	if (!v || v % 512)
		return -EINVAL;
	*out = v;
	return 0;
}

static int commit_catalog(thinp_catalog *cat, thinp_pool *pool)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int r = thinp_pool_get_status(pool, &st);

	return r ? r : thinp_catalog_commit(cat, st.transaction_id);
}

/* Device @id was just created: attach @e (its entry) and commit. */
static int record(thinp_catalog *cat, thinp_pool *pool, uint64_t id, thinp_catalog_entry *e)
{
	int r;

	e->id = id;
	r = thinp_catalog_attach(cat, pool, e);
	return r ? r : commit_catalog(cat, pool);
}

static thinp_catalog_entry *entry_new(void)
{
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));

	if (e)
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	return e;
}

static int create_thin(thinp_catalog *cat, thinp_pool *pool, uint64_t id, uint64_t size)
{
	thinp_catalog_entry *e;
	int r;

	if (!size)
		return -EINVAL;
	if (!(e = entry_new()))
		return -ENOMEM;
	e->size = size;
	r = thinp_catalog_new_guid(e->guid);
	if (!r)
		r = thinp_pool_create_thin(pool, id);
	if (!r)
		r = record(cat, pool, id, e);
	thinp_os_free(e);
	return r;
}

/* The snapshot's entry is settled before the pool changes, so a snapshot
 * that could not be described is not taken. */
static int create_snap(thinp_catalog *cat, thinp_pool *pool, uint64_t id, uint64_t origin,
		       uint64_t default_size)
{
	thinp_catalog_entry *e = entry_new();
	int r;

	if (!e)
		return -ENOMEM;
	/* The origin's flags before thinp_catalog_inherit clears PARTIAL. */
	r = thinp_catalog_get(cat, origin, e);
	if (!r && (e->flags & (THINP_CATALOG_ANCHOR | THINP_CATALOG_PARTIAL)))
		r = -EPERM;
	else if (!r)
		r = thinp_catalog_inherit(cat, origin, e);
	else if (r == -ENODATA && default_size) {
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		e->size = default_size;
		r = thinp_catalog_new_guid(e->guid);
	}
	if (!r)
		r = thinp_pool_create_snap(pool, id, origin);
	if (!r)
		r = record(cat, pool, id, e);
	thinp_os_free(e);
	return r;
}

/* Device @e's anchors, when it was the last visible device with its guid
 * (an anchor then serves no one): their entries removed and committed,
 * then the devices deleted. */
static int drop_anchors(thinp_catalog *cat, thinp_pool *pool, const thinp_catalog_entry *e)
{
	static const uint8_t none[16];
	struct catalog_ids anchors;
	thinp_catalog_entry *other;
	int r;

	if ((e->flags & (THINP_CATALOG_ANCHOR | THINP_CATALOG_PARTIAL)) || !memcmp(e->guid, none, 16))
		return 0;
	if (!(other = entry_new()))
		return -ENOMEM;
	r = catalog_find_guid(cat, 0, e->guid, false, other);
	thinp_os_free(other);
	if (r == 0)
		return 0; /* another visible device has the guid: its anchors serve it */
	if ((r = catalog_ids_init(&anchors, cat)))
		return r;
	r = catalog_take_anchors(cat, pool, e->guid, UINT64_MAX, &anchors);
	if (r > 0)
		r = commit_catalog(cat, pool);
	if (!r)
		return catalog_ids_delete(pool, &anchors);
	thinp_os_free(anchors.id);
	return r;
}

/* If the pool then refuses (the device is open, say), the entry comes back.
 * A crash before the anchors go leaves them for thinp_receive_prune. */
static int delete_thin(thinp_catalog *cat, thinp_pool *pool, uint64_t id)
{
	thinp_catalog_entry *e = entry_new();
	bool current;
	int had, r;

	if (!e)
		return -ENOMEM;
	had = thinp_catalog_get(cat, id, e) == 0;
	/* A stale entry (of another device that had the id) has no anchors. */
	current = had && catalog_entry_stale(pool, e) == 0;
	r = had ? thinp_catalog_remove(cat, id) : 0;
	if (!r && had)
		r = commit_catalog(cat, pool);
	if (!r)
		r = thinp_pool_delete_thin(pool, id);
	if (r && had && thinp_catalog_set(cat, e) == 0)
		commit_catalog(cat, pool);
	if (!r && current)
		r = drop_anchors(cat, pool, e);
	thinp_os_free(e);
	return r;
}

static int run(thinp_catalog *cat, thinp_pool *pool, const struct msg *m, uint64_t default_size)
{
	const char *name = m->w[0];
	uint64_t a = 0, b = 0;
	int r;

	if (!strcasecmp(name, "create_thin") && (m->n == 2 || m->n == 3)) {
		b = default_size;
		if ((r = number(m->w[1], THINP_META_MAX_DEV_ID, &a)) ||
		    (m->n == 3 && (r = size_arg(m->w[2], &b))))
			return r;
		return create_thin(cat, pool, a, b);
	}
	if (!strcasecmp(name, "create_snap") && m->n == 3) {
		if ((r = number(m->w[1], THINP_META_MAX_DEV_ID, &a)) ||
		    (r = number(m->w[2], THINP_META_MAX_DEV_ID, &b)))
			return r;
		return create_snap(cat, pool, a, b, default_size);
	}
	if (!strcasecmp(name, "delete") && m->n == 2) {
		if ((r = number(m->w[1], THINP_META_MAX_DEV_ID, &a)))
			return r;
		return delete_thin(cat, pool, a);
	}
	if (!strcasecmp(name, "set_transaction_id") && m->n == 3) {
		if ((r = number(m->w[1], UINT64_MAX, &a)) || (r = number(m->w[2], UINT64_MAX, &b)))
			return r;
		return thinp_pool_set_transaction_id(pool, a, b);
	}
	if (!strcasecmp(name, "reserve_metadata_snap") && m->n == 1)
		return thinp_pool_reserve_metadata_snap(pool);
	if (!strcasecmp(name, "release_metadata_snap") && m->n == 1)
		return thinp_pool_release_metadata_snap(pool);
	return -EINVAL;
}

int thinp_catalog_message(thinp_catalog *cat, thinp_pool *pool, const char *msg,
			  uint64_t default_size)
{
	struct msg *m;
	int r;

	if (!cat || !pool || !msg)
		return -EINVAL;
	m = thinp_os_alloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	r = split(msg, m);
	if (!r)
		r = run(cat, pool, m, default_size);
	thinp_os_free(m);
	return r;
}
