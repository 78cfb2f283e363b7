/*
 * Interop: space maps written by libthinp, inside a real dm-thin superblock
 * (FORMAT.md 3) with empty mapping and details trees, must pass
 * thin_check from thin-provisioning-tools; a leaked metadata block must be
 * reported. Skipped when thin_check is not installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/testutil.h"
#include "common/sm_env.h"
#include "util/endian.h"

#define BLK 4096u
#define NR_META 2048u

static void thin_sb_prepare(const struct validator *v, void *data, uint64_t b)
{
	store_le64((uint8_t *)data + 8, b);
	store_le32(data, block_csum(data, 160774u));
}

static const struct validator thin_sb_validator = {
	.name = "thin_superblock",
	.prepare_for_write = thin_sb_prepare,
};

/* Commit with a real dm-thin superblock in block 0. */
static void thin_commit(struct sm_env *e, uint64_t details_root)
{
	struct block *sb;
	uint8_t *p;

	assert_int_equal(sm_commit(e->dsm), 0);
	assert_int_equal(tm_pre_commit(e->tm), 0);
	assert_int_equal(bm_write_lock_zero(e->bm, 0, &thin_sb_validator, &sb), 0);
	p = block_data(sb);
	store_le64(p + 32, 27022010);
	store_le32(p + 40, 2);
	assert_int_equal(sm_copy_root(e->dsm, p + 64, 32), 0);
	assert_int_equal(sm_copy_root(e->msm, p + 192, 32), 0);
	store_le64(p + 320, e->root);
	store_le64(p + 328, details_root);
	store_le32(p + 336, 128);
	store_le32(p + 340, 8);
	store_le64(p + 344, NR_META);
	assert_int_equal(tm_commit(e->tm, sb), 0);
}

static int run_thin_check(thinp_io *io)
{
	static uint8_t buf[BLK];
	char path[512], cmd[1100];
	FILE *f;
	uint64_t b;
	int st;

	snprintf(path, sizeof(path), "%s/meta.img", test_tmpdir());
	f = fopen(path, "wb");
	assert_non_null(f);
	for (b = 0; b < NR_META; b++) {
		assert_int_equal(thinp_io_read(io, buf, BLK, b * BLK, 0), 0);
		assert_int_equal(fwrite(buf, BLK, 1, f), 1);
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "thin_check %s >%s.log 2>&1", path, path);
	st = system(cmd);
	if (st)
		snprintf(cmd, sizeof(cmd), "cat %s.log >&2", path), (void)!system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_thin_check_accepts_our_space_maps(void **state)
{
	struct btree_info details = { 0 };
	struct test_rng rng;
	struct sm_env e;
	thinp_io *io;
	uint64_t details_root, k, b, leak;

	if (system("command -v thin_check >/dev/null 2>&1") != 0) {
		skip();
		return;
	}
	test_rng_init(&rng, test_seed("thin_check_interop"));
	assert_int_equal(thinp_io_open_memory(&io, (uint64_t)NR_META * BLK, 0), 0);
	assert_int_equal(sm_env_format(&e, io, 5000), 0);
	/* Churn: many metadata blocks allocated, shadowed, freed over several
	 * commits, data counts up to 4; then everything removed again so that
	 * the (empty) trees hold no data references. */
	for (k = 0; k < 3000; k++) {
		if (k % 4 == 3)
			assert_int_equal(sm_inc(e.dsm, b), 0);
		else
			assert_int_equal(sm_new_block(e.dsm, &b), 0);
		assert_int_equal(sm_env_insert(&e, test_rng_next(&rng) % 100000 * 4 + k % 4, b), 0);
		if (k % 700 == 699)
			assert_int_equal(sm_env_commit(&e), 0);
	}
	assert_int_equal(sm_env_commit(&e), 0);
	assert_int_equal(btree_del(&e.info, e.root), 0);
	assert_int_equal(btree_empty(&e.info, &e.root), 0);
	details.tm = e.tm;
	details.levels = 1;
	details.value_type.size = 24;
	assert_int_equal(btree_empty(&details, &details_root), 0);
	thin_commit(&e, details_root);
	assert_int_equal(run_thin_check(io), 0);

	/* A leaked metadata block is found by the independent checker too. */
	assert_int_equal(sm_new_block(e.msm, &leak), 0);
	thin_commit(&e, details_root);
	assert_int_not_equal(run_thin_check(io), 0);
	sm_env_close(&e);
	thinp_io_close(io);
	test_tmpdir_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thin_check_accepts_our_space_maps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
