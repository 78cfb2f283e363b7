/*
 * The pool's failure modes, decided in one place (lib/pool/mode.c), tested
 * once over every error kind x mode:
 *
 *  - the table itself, against the rows below, written from the kernel's
 *    behaviour and the pool's documented modes (pool.h), for every error the
 *    metadata can return x every pool mode x change or read x whether the
 *    change damaged the transaction;
 *  - its application, end to end over the metadata model in a read-write
 *    pool: an error injected into a provisioning write's mapping insert (a
 *    change) or into a read's lookup must leave the pool in the decided mode,
 *    return the decided error, set needs_check exactly when decided, and
 *    roll back the open transaction (an uncommitted earlier mapping vanishes)
 *    exactly when decided.
 */
#include <errno.h>
#include <string.h>

#include "common/testutil.h"
#include "pool/mode.h"
#include "pool/pool_test.h"

#define RW THINP_POOL_MODE_RW
#define OODS THINP_POOL_MODE_OUT_OF_DATA_SPACE
#define RO THINP_POOL_MODE_READ_ONLY
#define FAIL THINP_POOL_MODE_FAIL
#define KEEP 99u /* the mode does not change */

static const int errors[] = { -ENODATA, -EEXIST, -EINVAL, -EBUSY, -ENOMEM,
			      -ENOSPC, -EROFS, -EIO, -EILSEQ, -ENOTBLK };
#define NR_ERRORS (sizeof(errors) / sizeof(errors[0]))

/* What an error does, before the current mode is taken into account. */
struct row {
	int err;
	bool change, damaged;
	uint32_t to;          /* KEEP, RO or FAIL */
	bool rollback, needs_check, meta_space_ro;
	int err_out;
};

#define ANSWER(e) \
	{ e, false, false, KEEP, false, false, false, e }, \
	{ e, true, false, KEEP, false, false, false, e }, \
	{ e, true, true, FAIL, false, true, false, e }
#define BROKEN(e) \
	{ e, false, false, FAIL, false, false, false, e }, \
	{ e, true, false, FAIL, false, true, false, e }, \
	{ e, true, true, FAIL, false, true, false, e }

static const struct row rows[] = {
	/* "No": nothing changed; after a damaging change it is a failure. */
	ANSWER(-ENODATA), ANSWER(-EEXIST), ANSWER(-EINVAL), ANSWER(-EBUSY),
	/* Memory: a read fails alone; a change (perhaps one step of several)
	 * rolls back to read-only, the device is intact. */
	{ -ENOMEM, false, false, KEEP, false, false, false, -ENOMEM },
	{ -ENOMEM, true, false, RO, true, false, false, -ENOMEM },
	{ -ENOMEM, true, true, RO, true, false, false, -ENOMEM },
	/* Metadata space: roll back, read-only until the metadata grows, no
	 * needs_check. A read never runs out of space: that is corruption. */
	{ -ENOSPC, false, false, FAIL, false, false, false, -ENOSPC },
	{ -ENOSPC, true, false, RO, true, false, true, -ENOSPC },
	{ -ENOSPC, true, true, RO, true, false, true, -ENOSPC },
	/* The metadata refuses changes: follow it. */
	{ -EROFS, false, false, RO, false, false, false, -EROFS },
	{ -EROFS, true, false, RO, false, false, false, -EROFS },
	{ -EROFS, true, true, FAIL, false, true, false, -EROFS },
	/* I/O errors and corruption: fail; a change sets needs_check. */
	BROKEN(-EIO), BROKEN(-EILSEQ), BROKEN(-ENOTBLK),
};
#define NR_ROWS (sizeof(rows) / sizeof(rows[0]))

static const struct row *find_row(int err, bool change, bool damaged)
{
	for (size_t i = 0; i < NR_ROWS; i++)
		if (rows[i].err == err && rows[i].change == change && rows[i].damaged == damaged)
			return &rows[i];
	fail_msg("no row for %d change %d damaged %d", err, change, damaged);
	return NULL;
}

static void test_table(void **state)
{
	unsigned checked = 0;

	for (size_t e = 0; e < NR_ERRORS; e++)
	for (uint32_t mode = RW; mode <= FAIL; mode++)
	for (int change = 0; change < 2; change++)
	for (int damaged = 0; damaged <= change; damaged++) {
		const struct row *w = find_row(errors[e], change, damaged);
		struct pool_mode_in in = { mode, errors[e], change, damaged };
		struct pool_mode_out d;
		uint32_t want = w->to == KEEP || w->to < mode ? mode : w->to;

		pool_mode_decide(&in, &d);
		if (d.mode != want || d.err != w->err_out || d.needs_check != w->needs_check ||
		    d.rollback != (w->rollback && mode != FAIL) ||
		    d.meta_space_ro != (w->meta_space_ro && mode != FAIL))
			fail_msg("error %d, mode %u, change %d, damaged %d: mode %u (want %u), "
				 "err %d, rollback %d, needs_check %d, meta_space_ro %d",
				 errors[e], mode, change, damaged, d.mode, want, d.err,
				 d.rollback, d.needs_check, d.meta_space_ro);
		/* A mode change always says why. */
		assert_true(d.mode == mode || d.why);
		checked++;
	}
	assert_int_equal(checked, NR_ERRORS * 4 * 3);
}

/* ---- applied by the pool ---- */

static uint8_t wbuf[TEST_BS], rbuf[TEST_BS];

struct env {
	struct tpool t;
	thinp_thin *thin;
};

/* A read-write pool with block 0 committed and block 1 mapped but not yet
 * committed. */
static void setup(struct env *e)
{
	memset(wbuf, 0x5A, sizeof(wbuf));
	tpool_setup(&e->t, 64, NULL);
	assert_int_equal(thinp_pool_create_thin(e->t.pool, 0), 0);
	e->thin = topen(e->t.pool, 0, 16ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_write(e->thin, wbuf, TEST_BS, 0), 0);
	assert_int_equal(thinp_thin_flush(e->thin), 0);
	assert_int_equal(thinp_thin_write(e->thin, wbuf, TEST_BS, TEST_BS), 0);
}

static void teardown(struct env *e)
{
	thinp_thin_close(e->thin);
	tpool_crash(&e->t); /* closing would commit where the pool still can */
	tpool_teardown(&e->t);
}

static void check_applied(struct env *e, const struct pool_mode_out *d, int r)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	thinp_mapping m = THINP_MAPPING_INIT;

	assert_int_equal(r, d->err);
	assert_int_equal(thinp_pool_get_status(e->t.pool, &ps), 0);
	assert_int_equal(ps.mode, d->mode);
	assert_int_equal(ps.needs_check, d->needs_check);
	assert_true(thinp_pool_errmsg(e->t.pool, NULL, 0) > 0);
	if (d->mode == FAIL)
		return; /* nothing is read any more */
	/* The committed block survives everything; the uncommitted one only
	 * a decision without rollback. */
	assert_int_equal(thinp_pool_thin_map(e->t.pool, 0, 0, &m), 0);
	assert_int_equal(thinp_pool_thin_map(e->t.pool, 0, 1, &m), d->rollback ? -ENODATA : 0);
	assert_int_equal(thinp_thin_read(e->thin, rbuf, TEST_BS, 0), 0);
	assert_memory_equal(rbuf, wbuf, TEST_BS);
}

static void test_applied_to_changes(void **state)
{
	for (size_t i = 0; i < NR_ERRORS; i++)
	for (int damaged = 0; damaged < 2; damaged++) {
		struct pool_mode_in in = { RW, errors[i], true, damaged };
		struct pool_mode_out d;
		struct md_faults *f;
		struct env e;

		pool_mode_decide(&in, &d);
		setup(&e);
		f = md_store_faults(e.t.store);
		f->fail_insert_err = errors[i];
		f->insert_damages = damaged;
		/* Block 2 is new: the write allocates, then inserts. */
		check_applied(&e, &d, thinp_thin_write(e.thin, wbuf, TEST_BS, 2 * TEST_BS));
		teardown(&e);
	}
}

static void test_applied_to_reads(void **state)
{
	for (size_t i = 0; i < NR_ERRORS; i++) {
		struct pool_mode_in in = { RW, errors[i], false, false };
		struct pool_mode_out d;
		struct env e;

		if (errors[i] == -ENODATA)
			continue; /* a read's "unmapped": zeros, not an error */
		pool_mode_decide(&in, &d);
		setup(&e);
		/* Block 1 was just provisioned: not in the lookup cache. */
		md_store_faults(e.t.store)->fail_lookup_err = errors[i];
		check_applied(&e, &d, thinp_thin_read(e.thin, rbuf, TEST_BS, TEST_BS));
		teardown(&e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_applied_to_changes),
		cmocka_unit_test(test_applied_to_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
