/*
 * The control file and the status file: what `dmsetup message` and
 * `dmsetup status` are to the kernel's thin-pool target.
 *
 * A write to MNT/.control is one message per line, in the kernel's grammar
 * (create_thin ID, create_snap ID ORIGIN, delete ID, set_transaction_id OLD
 * NEW, reserve_metadata_snap, release_metadata_snap); write() fails with the
 * message's errno, and reading the file back gives "ok" or the error. Each
 * message runs through the pool, which commits it, and the volume set
 * follows: a created volume appears as a file, a deleted one goes.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "thinp_fuse.h"

#define MAX_WORDS 4
#define MAX_LINE 256

struct words {
	char buf[MAX_LINE];
	char *w[MAX_WORDS];
	int n;
};

/* Split one line on blanks; -EINVAL if empty, too long or too many words. */
static int split(const char *line, size_t len, struct words *m)
{
	char *p, *save;

	if (len >= sizeof(m->buf))
		return -EINVAL;
	memcpy(m->buf, line, len);
	m->buf[len] = '\0';
	m->n = 0;
	for (p = strtok_r(m->buf, " \t\r", &save); p; p = strtok_r(NULL, " \t\r", &save)) {
		if (m->n == MAX_WORDS)
			return -EINVAL;
		m->w[m->n++] = p;
	}
	return m->n ? 0 : -EINVAL;
}

/* A decimal number as the kernel reads it (kstrtoull base 10). */
static int number(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)*s) && *s != '+')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (*end || errno || *out > max)
		return -EINVAL;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	const char *u;
	char *end;
	uint64_t v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && (u = strchr(units, *end | 0x20)) && !end[1]) {
		for (int i = 0; i <= u - units; i++) {
			if (v > UINT64_MAX / 1024)
				return -EINVAL;
			v *= 1024;
		}
	} else if (*end) {
		return -EINVAL;
	}
	if (!v || v % 512)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Serve device @id, just created in the pool and the catalog. */
static int serve_new(struct tfs *fs, uint64_t id)
{
	struct volume v = { 0 };
	int r = table_describe(fs, id, &v);

	if (!r && (r = volset_add(&fs->vols, &v)))
		thinp_io_close(v.origin);
	return r;
}

/* create_thin ID [SIZE]: the size is an extension of the kernel's grammar
 * (whose table, not its message, sizes a volume); without it, -o size=. */
static int create_thin(struct tfs *fs, uint64_t id, uint64_t size)
{
	int r;

	if (!size)
		return -EINVAL;
	r = thinp_pool_create_thin(fs->pool, id);
	if (!r)
		r = table_created(fs, id, NULL, size);
	return r ? r : serve_new(fs, id);
}

/* A snapshot is served as its origin is (size, read-only, external origin). */
static int create_snap(struct tfs *fs, uint64_t id, uint64_t origin)
{
	struct volume *o = volset_find(&fs->vols, origin);
	int r;

	if (!o)
		return -ENODATA;
	r = thinp_pool_create_snap(fs->pool, id, origin);
	if (!r)
		r = table_created(fs, id, o, 0);
	return r ? r : serve_new(fs, id);
}

/* The file goes first, so nobody opens the volume while the pool deletes
 * it; it comes back if the pool refuses. A device not served (no size
 * known) is deleted all the same. */
static int delete_thin(struct tfs *fs, uint64_t id)
{
	int r = volset_remove(&fs->vols, id);

	if (r && r != -ENODATA)
		return r;
	r = table_delete(fs, id);
	if (r && r != -ENODATA)
		serve_new(fs, id);
	return r;
}

/* Run one parsed message. */
static int run(struct tfs *fs, const struct words *m)
{
	const char *name = m->w[0];
	uint64_t a = 0, b = 0;
	int want, r;

	if (!strcasecmp(name, "create_thin") && m->n == 3) {
		if ((r = number(m->w[1], MAX_VOLUME_ID, &a)) || (r = parse_size(m->w[2], &b)))
			return r;
		return create_thin(fs, a, b);
	}
	if (!strcasecmp(name, "create_thin") || !strcasecmp(name, "delete"))
		want = 1;
	else if (!strcasecmp(name, "create_snap") || !strcasecmp(name, "set_transaction_id"))
		want = 2;
	else if (!strcasecmp(name, "reserve_metadata_snap") ||
		 !strcasecmp(name, "release_metadata_snap"))
		want = 0;
	else
		return -EINVAL;
	if (m->n != want + 1)
		return -EINVAL;
	if (!strcasecmp(name, "set_transaction_id")) {
		if ((r = number(m->w[1], UINT64_MAX, &a)) || (r = number(m->w[2], UINT64_MAX, &b)))
			return r;
		return thinp_pool_set_transaction_id(fs->pool, a, b);
	}
	if ((want > 0 && (r = number(m->w[1], MAX_VOLUME_ID, &a))) ||
	    (want > 1 && (r = number(m->w[2], MAX_VOLUME_ID, &b))))
		return r;
	if (!strcasecmp(name, "create_thin"))
		return create_thin(fs, a, fs->default_size);
	if (!strcasecmp(name, "create_snap"))
		return create_snap(fs, a, b);
	if (!strcasecmp(name, "delete"))
		return delete_thin(fs, a);
	if (!strcasecmp(name, "reserve_metadata_snap"))
		return thinp_pool_reserve_metadata_snap(fs->pool);
	return thinp_pool_release_metadata_snap(fs->pool);
}

static void set_reply(struct tfs *fs, const char *msg, size_t len, int r)
{
	pthread_mutex_lock(&fs->reply_lock);
	if (r)
		snprintf(fs->reply, sizeof(fs->reply), "error: '%.*s': %s\n",
			 (int)(len > 200 ? 200 : len), msg, thinp_strerror(r));
	else
		snprintf(fs->reply, sizeof(fs->reply), "ok\n");
	pthread_mutex_unlock(&fs->reply_lock);
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

int control_message(struct tfs *fs, const char *buf, size_t len)
{
	const char *end = buf + len;
	struct words m;
	int r = 0;

	while (!r && buf < end) {
		const char *nl = memchr(buf, '\n', (size_t)(end - buf));
		size_t n = (size_t)((nl ? nl : end) - buf);

		if (!blank(buf, n)) {
			r = split(buf, n, &m);
			if (!r) {
				pthread_mutex_lock(&fs->msg_lock);
				r = run(fs, &m);
				pthread_mutex_unlock(&fs->msg_lock);
			}
			set_reply(fs, buf, n, r);
		}
		buf += n + (nl != NULL);
	}
	return r;
}

static const char *mode_word(const thinp_pool_status *st)
{
	switch (st->mode) {
	case THINP_POOL_MODE_OUT_OF_DATA_SPACE: return "out_of_data_space";
	case THINP_POOL_MODE_READ_ONLY: return "ro";
	default: return "rw";
	}
}

static const char *discard_word(uint32_t features)
{
	if (features & THINP_POOL_IGNORE_DISCARD)
		return "ignore_discard";
	if (features & THINP_POOL_NO_DISCARD_PASSDOWN)
		return "no_discard_passdown";
	return "discard_passdown";
}

/*
 * The kernel's thin-pool status line: transaction id, used/total metadata
 * blocks, used/total data blocks, held metadata root, mode, discard mode,
 * no-space policy, needs_check, metadata low watermark; "Fail" alone for a
 * failed pool.
 */
int control_status(struct tfs *fs, char *buf, size_t size)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	char held[24] = "-";
	uint64_t low;
	int r = thinp_pool_get_status(fs->pool, &st);

	if (r)
		return r;
	if (st.mode == THINP_POOL_MODE_FAIL)
		return snprintf(buf, size, "Fail\n");
	if (st.held_root)
		snprintf(held, sizeof(held), "%" PRIu64, st.held_root);
	low = st.metadata_total / 4 < 1024 ? st.metadata_total / 4 : 1024;
	return snprintf(buf, size,
			"%" PRIu64 " %" PRIu64 "/%" PRIu64 " %" PRIu64 "/%" PRIu64
			" %s %s %s %s %s %" PRIu64 "\n",
			st.transaction_id, st.metadata_used, st.metadata_total, st.data_used,
			st.data_total, held, mode_word(&st), discard_word(st.features),
			(st.features & THINP_POOL_ERROR_IF_NO_SPACE) ? "error_if_no_space"
								   : "queue_if_no_space",
			st.needs_check ? "needs_check" : "-", low);
}
