/*
 * Pool messages, parsed as the kernel's thin-pool target parses them
 * (FORMAT.md 10.1): words split on blanks, the name compared without regard
 * to case, an exact argument count, numbers as the kernel's kstrtoull(.., 10)
 * reads them (optional leading '+', decimal digits, an optional trailing
 * newline, no overflow), device ids at most 2^24-1. A successful message is
 * committed at once, as the kernel commits after every message.
 */
#include "os/os.h"

#include "thin/meta_internal.h"
#include "util/parse.h"

#define MSG_MAX_ARGS 4
#define MSG_MAX_LEN 256

struct msg {
	char buf[MSG_MAX_LEN];
	char *argv[MSG_MAX_ARGS];
	int argc;
};

static int split(const char *text, struct msg *m)
{
	if (strlen(text) >= sizeof(m->buf))
		return -EINVAL;
	strcpy(m->buf, text);
	/* isspace() in the C locale. */
	m->argc = parse_split_words(m->buf, " \t\n\v\f\r", m->argv, MSG_MAX_ARGS);
	return m->argc > 0 ? 0 : -EINVAL;
}

/* kstrtoull(s, 10): '+'? digits, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int r;

	if (*s == '+')
		s++;
	r = parse_decimal_u64(s, &end, &v);
	if (r)
		return r;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_dev(struct thinp_meta *meta, const char *s, uint64_t *dev)
{
	if (parse_u64(s, dev) || *dev > THINP_META_MAX_DEV_ID)
		return thin_err(meta, -EINVAL, "invalid device id '%s' (decimal, at most %u)", s,
				THINP_META_MAX_DEV_ID);
	return 0;
}

static int arg_count(struct thinp_meta *meta, const struct msg *m, int want)
{
	if (m->argc != want)
		return thin_err(meta, -EINVAL, "message %s takes %d argument%s", m->argv[0],
				want - 1, want == 2 ? "" : "s");
	return 0;
}

/* Parse and run one message with the lock held; nothing is committed here. */
static int run_locked(struct thinp_meta *meta, const struct msg *m)
{
	const char *name = m->argv[0];
	uint64_t a, b;
	int r;

	if (!strcasecmp(name, "create_thin")) {
		if ((r = arg_count(meta, m, 2)) || (r = parse_dev(meta, m->argv[1], &a)))
			return r;
		return thin_create_thin_locked(meta, a);
	}
	if (!strcasecmp(name, "create_snap")) {
		if ((r = arg_count(meta, m, 3)) || (r = parse_dev(meta, m->argv[1], &a)) ||
		    (r = parse_dev(meta, m->argv[2], &b)))
			return r;
		return thin_create_snap_locked(meta, a, b);
	}
	if (!strcasecmp(name, "delete")) {
		if ((r = arg_count(meta, m, 2)) || (r = parse_dev(meta, m->argv[1], &a)))
			return r;
		return thin_delete_locked(meta, a);
	}
	if (!strcasecmp(name, "set_transaction_id")) {
		if ((r = arg_count(meta, m, 3)))
			return r;
		if (parse_u64(m->argv[1], &a) || parse_u64(m->argv[2], &b))
			return thin_err(meta, -EINVAL, "set_transaction_id: transaction ids "
					"must be decimal 64-bit numbers");
		return thin_set_transaction_id_locked(meta, a, b);
	}
	if (!strcasecmp(name, "reserve_metadata_snap")) {
		if ((r = arg_count(meta, m, 1)))
			return r;
		return thin_reserve_metadata_snap_locked(meta);
	}
	if (!strcasecmp(name, "release_metadata_snap")) {
		if ((r = arg_count(meta, m, 1)))
			return r;
		return thin_release_metadata_snap_locked(meta);
	}
	return thin_err(meta, -EINVAL, "unrecognised thin pool message '%s'", name);
}

int thinp_meta_message(thinp_meta *meta, const char *text)
{
	struct msg m;
	int r;

	if (!text || split(text, &m))
		return thin_err(meta, -EINVAL, "empty or over-long message");
	r = thin_wlock(meta);
	if (r)
		return r;
	r = run_locked(meta, &m);
	if (!r)
		r = thin_commit_locked(meta);
	thin_unlock(meta);
	return r;
}
