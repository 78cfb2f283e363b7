/*
 * The catalog: a random model test (the real catalog and an array of entries
 * driven by the same operations, with commits and reopens), power cuts at
 * every write and flush of a commit (the catalog reopens as the old or the
 * new one), format edge cases, and reconciling with a real pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "block/bm.h"
#include <libthinp/thinp.h>
#include <libthinp/testing.h>

#define MAX_ID 96u

static uint64_t suite_seed;

/* The model: one slot per id. */
struct model {
	thinp_catalog_entry e[MAX_ID];
	int present[MAX_ID];
	uint64_t trans;
};

static struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	return m;
}

static void random_entry(struct test_rng *rng, uint64_t id, thinp_catalog_entry *e)
{
	size_t olen;

	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	e->id = id;
	e->size = test_rng_next(rng) >> test_rng_below(rng, 64);
	e->flags = (uint32_t)test_rng_next(rng);
	e->birth_time = (uint32_t)test_rng_next(rng);
	e->birth_transaction = test_rng_next(rng);
	for (int i = 0; i < 16; i++) {
		e->guid[i] = (uint8_t)test_rng_next(rng);
		e->parent_guid[i] = (uint8_t)test_rng_next(rng);
		e->recv_stream[i] = (uint8_t)test_rng_next(rng);
	}
	e->recv_next_block = test_rng_next(rng);
	switch (test_rng_below(rng, 4)) {
	case 0:
		olen = 0;
		break;
	case 1:
		olen = THINP_CATALOG_ORIGIN_MAX - 1;
		break;
	default:
		olen = test_rng_below(rng, 200);
	}
	for (size_t i = 0; i < olen; i++)
		e->origin[i] = (char)('a' + test_rng_below(rng, 26));
}

static void assert_entry_equal(const thinp_catalog_entry *a, const thinp_catalog_entry *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->birth_time, b->birth_time);
	assert_int_equal(a->birth_transaction, b->birth_transaction);
	assert_memory_equal(a->guid, b->guid, 16);
	assert_memory_equal(a->parent_guid, b->parent_guid, 16);
	assert_memory_equal(a->recv_stream, b->recv_stream, 16);
	assert_int_equal(a->recv_next_block, b->recv_next_block);
	assert_string_equal(a->origin, b->origin);
}

/* The catalog holds exactly the model's entries (walk, get, count). */
static void assert_catalog_is(thinp_catalog *cat, const struct model *m)
{
	thinp_catalog_entry *got = malloc(sizeof(*got));
	uint64_t next = 0, n = 0;

	assert_non_null(got);
	*got = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	for (unsigned id = 0; id < MAX_ID; id++) {
		if (!m->present[id]) {
			assert_int_equal(thinp_catalog_get(cat, id, got), -ENODATA);
			continue;
		}
		n++;
		assert_int_equal(thinp_catalog_next(cat, next, got), 0);
		assert_int_equal(got->id, id);
		assert_entry_equal(got, &m->e[id]);
		next = got->id + 1;
		assert_int_equal(thinp_catalog_get(cat, id, got), 0);
		assert_entry_equal(got, &m->e[id]);
	}
	assert_int_equal(thinp_catalog_next(cat, next, got), -ENODATA);
	assert_int_equal(thinp_catalog_count(cat), n);
	free(got);
}

/* Apply one random change to both. */
static void random_change(struct test_rng *rng, thinp_catalog *cat, struct model *m)
{
	uint64_t id = test_rng_below(rng, MAX_ID);

	if (test_rng_below(rng, 3) == 0) {
		assert_int_equal(thinp_catalog_remove(cat, id), m->present[id] ? 0 : -ENODATA);
		m->present[id] = 0;
		return;
	}
	random_entry(rng, id, &m->e[id]);
	m->present[id] = 1;
	assert_int_equal(thinp_catalog_set(cat, &m->e[id]), 0);
}

static void test_model_random(void **state)
{
	struct test_rng rng;
	struct model *cur = model_new(), *durable = model_new();
	thinp_io *io;
	thinp_catalog *cat;
	unsigned ops = test_ops(3000);

	test_rng_init(&rng, suite_seed);
	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	for (unsigned i = 0; i < ops; i++) {
		uint64_t op = test_rng_below(&rng, 20);

		if (op == 0) {
			uint64_t trans = test_rng_next(&rng);

			assert_int_equal(thinp_catalog_commit(cat, trans), 0);
			cur->trans = trans;
			*durable = *cur;
		} else if (op == 1) {
			/* Reopen: uncommitted changes are gone. */
			thinp_catalog_close(cat);
			assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
			*cur = *durable;
			assert_int_equal(thinp_catalog_transaction_id(cat), durable->trans);
		} else {
			random_change(&rng, cat, cur);
		}
		if (i % 16 == 0 || op <= 1)
			assert_catalog_is(cat, cur);
	}
	thinp_catalog_close(cat);
	thinp_io_close(io);
	free(cur);
	free(durable);
}

/* Write the model's entries as a commit through a plain handle. */
static void commit_model(thinp_io *io, const struct model *m)
{
	thinp_catalog *cat;

	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	for (unsigned id = 0; id < MAX_ID; id++) {
		if (thinp_catalog_get(cat, id, &(thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT) == 0)
			assert_int_equal(thinp_catalog_remove(cat, id), 0);
		if (m->present[id])
			assert_int_equal(thinp_catalog_set(cat, &m->e[id]), 0);
	}
	assert_int_equal(thinp_catalog_commit(cat, m->trans), 0);
	thinp_catalog_close(cat);
}

static int catalog_matches(thinp_io *io, const struct model *m)
{
	thinp_catalog *cat;
	thinp_catalog_entry *got = malloc(sizeof(*got));
	int ok;

	assert_non_null(got);
	*got = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	ok = thinp_catalog_transaction_id(cat) == m->trans;
	for (unsigned id = 0; ok && id < MAX_ID; id++) {
		int r = thinp_catalog_get(cat, id, got);

		if (!m->present[id]) {
			ok = r == -ENODATA;
			continue;
		}
		ok = r == 0 && got->size == m->e[id].size && got->flags == m->e[id].flags &&
		     !strcmp(got->origin, m->e[id].origin) &&
		     !memcmp(got->guid, m->e[id].guid, 16);
	}
	thinp_catalog_close(cat);
	free(got);
	return ok;
}

/*
 * Power cut at the n-th write or flush of one commit, for every n, from an
 * old catalog with `prior` commits (0: a never-written device), in every cut
 * mode: the reopened catalog is the old or the new one, and the new one once
 * the commit returned 0.
 */
static void crash_scenario(struct test_rng *rng, unsigned prior, int mode)
{
	struct model *old = model_new(), *next = model_new();
	unsigned n, saw_old = 0, saw_new = 0;

	for (unsigned id = 0; id < MAX_ID; id += 1 + (unsigned)test_rng_below(rng, 4)) {
		random_entry(rng, id, &old->e[id]);
		old->present[id] = prior > 0;
	}
	old->trans = prior ? 7 : 0;
	*next = *old;
	for (unsigned i = 0; i < 40; i++) {
		uint64_t id = test_rng_below(rng, MAX_ID);

		next->present[id] = !next->present[id] || test_rng_below(rng, 2);
		if (next->present[id])
			random_entry(rng, id, &next->e[id]);
	}
	next->trans = 8;
	for (n = 1;; n++) {
		thinp_io *lower, *io;
		thinp_io_fault *f;
		thinp_catalog *cat;
		int r, fired, is_old, is_new;

		assert_int_equal(thinp_io_open_memory(&lower, 0, 0), 0);
		for (unsigned p = 0; p < prior; p++)
			commit_model(lower, old);
		assert_int_equal(thinp_io_open_fault(&io, &f, lower, 0), 0);
		assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
		for (unsigned id = 0; id < MAX_ID; id++) {
			if (old->present[id])
				assert_int_equal(thinp_catalog_remove(cat, id), 0);
			if (next->present[id])
				assert_int_equal(thinp_catalog_set(cat, &next->e[id]), 0);
		}
		assert_int_equal(thinp_io_fault_arm_cut(f, n, mode, suite_seed + n), 0);
		r = thinp_catalog_commit(cat, next->trans);
		thinp_catalog_close(cat);
		thinp_io_close(io);
		fired = thinp_io_fault_cut_fired(f);
		thinp_io_fault_free(f);
		is_old = catalog_matches(lower, old);
		is_new = catalog_matches(lower, next);
		if (!(is_old || is_new))
			fail_msg("prior %u mode %d cut at op %u: neither old nor new", prior, mode, n);
		if (r == 0)
			assert_true(is_new);
		saw_old += is_old;
		saw_new += is_new;
		thinp_io_close(lower);
		if (!fired) {
			assert_int_equal(r, 0);
			break;
		}
		assert_int_not_equal(r, 0);
	}
	/* A commit is at least a payload write, a flush, a header write, a flush. */
	assert_true(n >= 4);
	assert_true(saw_old > 0 && saw_new > 0);
	free(old);
	free(next);
}

static void test_crash_every_op(void **state)
{
	static const int modes[] = { THINP_IO_FAULT_CUT_DROP, THINP_IO_FAULT_CUT_KEEP,
				     THINP_IO_FAULT_CUT_RANDOM, THINP_IO_FAULT_CUT_TORN };
	struct test_rng rng;

	test_rng_init(&rng, suite_seed ^ 0xc0ffee);
	for (unsigned rounds = 0; rounds < test_ops(3); rounds++)
		for (unsigned prior = 0; prior <= 3; prior++)
			for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
				crash_scenario(&rng, prior, modes[m]);
}

static void test_empty_and_foreign(void **state)
{
	thinp_io *io;
	thinp_catalog *cat;
	unsigned char junk[512];

	/* A zero-filled device is an empty catalog. */
	assert_int_equal(thinp_io_open_memory(&io, 65536, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	assert_int_equal(thinp_catalog_count(cat), 0);
	assert_int_equal(thinp_catalog_transaction_id(cat), 0);
	thinp_catalog_close(cat);
	/* Something else is refused, and left alone. */
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(thinp_io_write(io, junk, sizeof(junk), 4096, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), -EILSEQ);
	thinp_io_close(io);
	/* Too small to hold the headers, not empty. */
	assert_int_equal(thinp_io_open_memory(&io, 512, 0), 0);
	assert_int_equal(thinp_io_write(io, junk, sizeof(junk), 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), -EILSEQ);
	thinp_io_close(io);
	assert_int_equal(thinp_catalog_open(&cat, NULL, 0), -EINVAL);
}

static void test_bad_entries(void **state)
{
	thinp_io *io;
	thinp_catalog *cat;
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;

	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	e.id = 1u << 24;
	assert_int_equal(thinp_catalog_set(cat, &e), -EINVAL);
	e.id = 1;
	memset(e.origin, 'x', sizeof(e.origin));
	assert_int_equal(thinp_catalog_set(cat, &e), -EINVAL);
	e.origin[0] = 0;
	e.version = THINP_CATALOG_ENTRY_VERSION + 1;
	assert_int_equal(thinp_catalog_set(cat, &e), -EINVAL);
	e.version = THINP_CATALOG_ENTRY_VERSION;
	e.struct_size = 64;
	assert_int_equal(thinp_catalog_set(cat, &e), -EINVAL);
	e.struct_size = sizeof(e);
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_remove(cat, 2), -ENODATA);
	/* A caller with a short struct gets its prefix only. */
	{
		struct { uint32_t struct_size, version; uint64_t id, size; uint32_t canary; } small;

		memset(&small, 0xee, sizeof(small));
		small.struct_size = offsetof(thinp_catalog_entry, flags);
		assert_int_equal(thinp_catalog_get(cat, 1, (thinp_catalog_entry *)&small), 0);
		assert_int_equal(small.id, 1);
		assert_int_equal(small.canary, 0xeeeeeeee);
	}
	thinp_catalog_close(cat);
	thinp_io_close(io);
}

static uint32_t crc32c(const void *p, size_t len)
{
	return crc32c_raw(0xFFFFFFFFu, p, len) ^ 0xFFFFFFFFu;
}

/* A header asking for an incompatible feature is refused; a read-only
 * device gives a catalog that cannot commit. */
static void test_incompat_and_rdonly(void **state)
{
	thinp_io *io;
	thinp_catalog *cat;
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;
	unsigned char h[64];

	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	e.id = 5;
	e.size = 1 << 30;
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_commit(cat, 3), 0); /* slot 0 */
	thinp_catalog_close(cat);
	assert_int_equal(thinp_io_read(io, h, sizeof(h), 0, 0), 0);
	h[12] |= 1; /* incompat features */
	{
		uint32_t c = crc32c(h, 60);

		memcpy(h + 60, &c, 4); /* little-endian host */
	}
	assert_int_equal(thinp_io_write(io, h, sizeof(h), 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), -EOPNOTSUPP);
	/* A flipped bit elsewhere is damage: no valid header is left. */
	h[12] &= (unsigned char)~1u;
	h[20] ^= 1;
	assert_int_equal(thinp_io_write(io, h, sizeof(h), 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), -EILSEQ);
	thinp_io_close(io);

	assert_int_equal(thinp_io_open_memory(&io, 65536, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_commit(cat, 1), -EROFS);
	thinp_catalog_close(cat);
	thinp_io_close(io);
}

/* The newest header's entries damaged: the older commit is used, and the
 * next commit still outnumbers the damaged one. */
static void test_fallback_to_older(void **state)
{
	thinp_io *io;
	thinp_catalog *cat;
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;
	unsigned char b[8];
	uint64_t poff;

	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	e.id = 1;
	e.size = 111;
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_commit(cat, 1), 0); /* slot 0 */
	e.size = 222;
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_commit(cat, 2), 0); /* slot 1 */
	thinp_catalog_close(cat);
	assert_int_equal(thinp_io_read(io, b, 8, 4096 + 32, 0), 0); /* slot 1's payload offset */
	memcpy(&poff, b, 8);
	assert_int_equal(thinp_io_read(io, b, 8, poff + 16, 0), 0);
	b[0] ^= 0xff; /* the size field of its one record */
	assert_int_equal(thinp_io_write(io, b, 8, poff + 16, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	assert_int_equal(thinp_catalog_transaction_id(cat), 1);
	assert_int_equal(thinp_catalog_get(cat, 1, &e), 0);
	assert_int_equal(e.size, 111);
	e.size = 333;
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_commit(cat, 3), 0);
	thinp_catalog_close(cat);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	assert_int_equal(thinp_catalog_get(cat, 1, &e), 0);
	assert_int_equal(e.size, 333);
	assert_int_equal(thinp_catalog_transaction_id(cat), 3);
	thinp_catalog_close(cat);
	thinp_io_close(io);
}

/* Attach stamps the device's birth; reconcile drops entries of devices that
 * are gone or were re-created behind the catalog's back. */
static void test_reconcile_with_pool(void **state)
{
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;

	assert_int_equal(thinp_io_open_memory(&meta, 4u << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, 16u << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&cio, 0, 0), 0);
	assert_int_equal(thinp_pool_format(&pool, meta, data, NULL), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 1), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 2), 0);
	assert_int_equal(thinp_catalog_open(&cat, cio, 0), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		e.id = id;
		e.size = id << 20;
		assert_int_equal(thinp_catalog_attach(cat, pool, &e),
				 id == 3 ? -ENODATA : 0);
	}
	e.id = 3; /* set, not attached: its device does not exist */
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_pool_get_status(pool, &st), 0);
	assert_int_equal(thinp_catalog_commit(cat, st.transaction_id), 0);
	assert_int_equal(thinp_catalog_reconcile(cat, pool), 1);
	assert_int_equal(thinp_catalog_get(cat, 3, &e), -ENODATA);
	/* Device 2 deleted and re-created in another transaction. */
	assert_int_equal(thinp_pool_delete_thin(pool, 2), 0);
	assert_int_equal(thinp_pool_set_transaction_id(pool, st.transaction_id, 9), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 2), 0);
	assert_int_equal(thinp_catalog_reconcile(cat, pool), 1);
	assert_int_equal(thinp_catalog_get(cat, 2, &e), -ENODATA);
	assert_int_equal(thinp_catalog_get(cat, 1, &e), 0);
	assert_int_equal(e.size, 1u << 20);
	assert_int_equal(thinp_catalog_reconcile(cat, pool), 0);
	thinp_catalog_close(cat);
	assert_int_equal(thinp_pool_close(pool), 0);
	/* The pool's metadata knows nothing of the catalog: it reopens alone. */
	assert_int_equal(thinp_pool_open(&pool, meta, data, NULL), 0);
	assert_int_equal(thinp_pool_close(pool), 0);
	thinp_io_close(cio);
	thinp_io_close(data);
	thinp_io_close(meta);
}

/* A snapshot's entry: the origin's fields, a new guid, the origin's guid as
 * parent, no birth stamp or partial state. */
static void test_inherit(void **state)
{
	thinp_io *io;
	thinp_catalog *cat;
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT, s = THINP_CATALOG_ENTRY_INIT;

	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	e.id = 4;
	e.size = 12345;
	e.flags = THINP_CATALOG_READ_ONLY | THINP_CATALOG_PARTIAL | (1u << 20);
	e.birth_time = 3;
	e.birth_transaction = 9;
	e.recv_next_block = 77;
	strcpy(e.origin, "/some/origin.img");
	assert_int_equal(thinp_catalog_new_guid(e.guid), 0);
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	assert_int_equal(thinp_catalog_inherit(cat, 5, &s), -ENODATA);
	assert_int_equal(thinp_catalog_inherit(cat, 4, &s), 0);
	assert_int_equal(s.id, 4);
	assert_int_equal(s.size, 12345);
	assert_int_equal(s.flags, THINP_CATALOG_READ_ONLY | (1u << 20));
	assert_int_equal(s.birth_time, 0);
	assert_int_equal(s.birth_transaction, 0);
	assert_int_equal(s.recv_next_block, 0);
	assert_string_equal(s.origin, "/some/origin.img");
	assert_memory_equal(s.parent_guid, e.guid, 16);
	assert_memory_not_equal(s.guid, e.guid, 16);
	thinp_catalog_close(cat);
	thinp_io_close(io);
}

static void test_new_guid(void **state)
{
	uint8_t a[16], b[16], zero[16] = { 0 };

	assert_int_equal(thinp_catalog_new_guid(a), 0);
	assert_int_equal(thinp_catalog_new_guid(b), 0);
	assert_memory_not_equal(a, zero, 16);
	assert_memory_not_equal(a, b, 16);
}

/* Entry version 2's resume point survives a commit and a reopen; a
 * version 1 caller (shorter struct) sets an entry whose version 2 fields
 * are 0, and reads its version 1 prefix only. */
static void test_entry_v2(void **state)
{
	size_t v1 = offsetof(thinp_catalog_entry, origin) + THINP_CATALOG_ORIGIN_MAX;
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT, *old = malloc(sizeof(e)), got;
	thinp_io *io;
	thinp_catalog *cat;
	(void)state;

	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	e.id = 3;
	e.flags = THINP_CATALOG_PARTIAL;
	strcpy(e.origin, "/some/origin"); /* the v2 fields follow a padded origin */
	e.recv_next_block = 77;
	e.recv_records = 1234567890123ull;
	e.recv_bytes = 9876543210ull;
	e.recv_digest = 0xdeadbeef;
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	memset(old, 0x5a, sizeof(*old));
	memcpy(old, &e, v1);
	old->struct_size = (uint32_t)v1;
	old->version = 1;
	old->id = 4;
	assert_int_equal(thinp_catalog_set(cat, old), 0);
	assert_int_equal(thinp_catalog_commit(cat, 1), 0);
	thinp_catalog_close(cat);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	got = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(cat, 3, &got), 0);
	assert_int_equal(got.recv_records, e.recv_records);
	assert_int_equal(got.recv_bytes, e.recv_bytes);
	assert_int_equal(got.recv_digest, e.recv_digest);
	assert_int_equal(got.recv_next_block, 77);
	assert_string_equal(got.origin, "/some/origin");
	assert_int_equal(thinp_catalog_get(cat, 4, &got), 0);
	assert_int_equal(got.recv_records, 0);
	assert_int_equal(got.recv_bytes, 0);
	assert_int_equal(got.recv_digest, 0);
	memset(old, 0x5a, sizeof(*old));
	old->struct_size = (uint32_t)v1;
	assert_int_equal(thinp_catalog_get(cat, 3, old), 0);
	assert_int_equal(old->recv_next_block, 77);
	assert_int_equal(old->recv_records, 0x5a5a5a5a5a5a5a5aull); /* not written */
	thinp_catalog_close(cat);
	thinp_io_close(io);
	free(old);
}

/* Entry version 3's origin identity survives a commit and a reopen; a
 * version 2 caller (struct up to recv_digest's tail) sets an entry whose
 * origin guid and size are 0, and reads without them. */
static void test_entry_v3(void **state)
{
	size_t v2 = offsetof(thinp_catalog_entry, origin_guid);
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT, *old = malloc(sizeof(e)), got;
	thinp_io *io;
	thinp_catalog *cat;
	(void)state;

	assert_int_equal(thinp_io_open_memory(&io, 0, 0), 0);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	e.id = 5;
	strcpy(e.origin, "/an/origin/of/odd/length");
	e.recv_digest = 0x1234;
	assert_int_equal(thinp_catalog_new_guid(e.origin_guid), 0);
	e.origin_size = 123456789;
	assert_int_equal(thinp_catalog_set(cat, &e), 0);
	memset(old, 0x5a, sizeof(*old));
	memcpy(old, &e, v2);
	old->struct_size = (uint32_t)v2;
	old->version = 2;
	old->id = 6;
	assert_int_equal(thinp_catalog_set(cat, old), 0);
	assert_int_equal(thinp_catalog_commit(cat, 1), 0);
	thinp_catalog_close(cat);
	assert_int_equal(thinp_catalog_open(&cat, io, 0), 0);
	got = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	assert_int_equal(thinp_catalog_get(cat, 5, &got), 0);
	assert_memory_equal(got.origin_guid, e.origin_guid, 16);
	assert_int_equal(got.origin_size, 123456789);
	assert_int_equal(got.recv_digest, 0x1234);
	assert_string_equal(got.origin, e.origin);
	assert_int_equal(thinp_catalog_get(cat, 6, &got), 0);
	assert_int_equal(got.origin_size, 0);
	assert_true(got.origin_guid[0] == 0 && !memcmp(got.origin_guid, got.origin_guid + 1, 15));
	assert_int_equal(got.recv_digest, 0x1234);
	memset(old, 0x5a, sizeof(*old));
	old->struct_size = (uint32_t)v2;
	assert_int_equal(thinp_catalog_get(cat, 5, old), 0);
	assert_int_equal(old->recv_digest, 0x1234);
	assert_int_equal(old->origin_size, 0x5a5a5a5a5a5a5a5aull); /* not written */
	/* A snapshot's entry reads through the same origin. */
	assert_int_equal(thinp_catalog_inherit(cat, 5, &got), 0);
	assert_memory_equal(got.origin_guid, e.origin_guid, 16);
	assert_int_equal(got.origin_size, 123456789);
	thinp_catalog_close(cat);
	thinp_io_close(io);
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_random),
		cmocka_unit_test(test_crash_every_op),
		cmocka_unit_test(test_empty_and_foreign),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_entry_v2),
		cmocka_unit_test(test_entry_v3),
		cmocka_unit_test(test_incompat_and_rdonly),
		cmocka_unit_test(test_fallback_to_older),
		cmocka_unit_test(test_reconcile_with_pool),
		cmocka_unit_test(test_inherit),
		cmocka_unit_test(test_new_guid),
	};

	suite_seed = test_seed("test_catalog");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
