/*
 * The control file and the status file: what `dmsetup message` and
 * `dmsetup status` are to the kernel's thin-pool target.
 *
 * A write to MNT/.control is one message per line, in the kernel's grammar
 * (create_thin ID [SIZE], create_snap ID ORIGIN, delete ID, set_transaction_id
 * OLD NEW, reserve_metadata_snap, release_metadata_snap: the library's
 * thinp_catalog_message, which keeps the volume table in step); write() fails with the
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

#include "thinp_fuse.h"

#define MAX_LINE 256

/* The volume set follows the pool after a message: a device that appeared
 * is served if the volume table says how (anchors and partial receives are
 * not), one that went is dropped. Opening a volume the pool has just
 * deleted fails in thinp_thin_open, so the window between is harmless. */
static int follow_pool(struct tfs *fs)
{
	uint64_t *pool_ids = NULL, *served = NULL;
	size_t np = 0, ns = 0, i = 0, j = 0;
	int r = pool_device_ids(fs, &pool_ids, &np);

	if (!r)
		r = volset_ids(&fs->vols, &served, &ns);
	/* Both lists are sorted: walk them side by side. */
	while (!r && (i < np || j < ns)) {
		if (j == ns || (i < np && pool_ids[i] < served[j])) {
			struct volume v = { 0 };

			if (!table_describe(fs, pool_ids[i], &v) && volset_add(&fs->vols, &v))
				thinp_io_close(v.origin);
			i++;
		} else if (i == np || served[j] < pool_ids[i]) {
			volset_remove(&fs->vols, served[j++]);
		} else {
			i++, j++;
		}
	}
	free(pool_ids);
	free(served);
	return r;
}

/* Run one message line through the library (thinp_catalog_message: the
 * kernel's grammar plus create_thin ID SIZE; without SIZE, -o size=). */
static int run(struct tfs *fs, const char *line, size_t len)
{
	char buf[MAX_LINE];
	int r;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, line, len);
	buf[len] = '\0';
	r = thinp_catalog_message(fs->catalog, fs->pool, buf, fs->default_size);
	return r ? r : follow_pool(fs);
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
	int r = 0;

	while (!r && buf < end) {
		const char *nl = memchr(buf, '\n', (size_t)(end - buf));
		size_t n = (size_t)((nl ? nl : end) - buf);

		if (!blank(buf, n)) {
			pthread_mutex_lock(&fs->msg_lock);
			r = run(fs, buf, n);
			pthread_mutex_unlock(&fs->msg_lock);
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
