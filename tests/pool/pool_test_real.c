/* The pool test helpers' real-metadata half (see pool_test.h): linked only
 * into the tests that run over libthinp/meta.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/meta.h>
#include "common/testutil.h"
#include "pool/pool_test.h"

static void check_report(const thinp_meta_finding *f, void *ctx)
{
	print_message("metadata check: %s\n", f->line);
}

static int real_open(struct tpool *t)
{
	return thinp_pool_open(&t->pool, t->meta, t->data, &t->opts);
}

/* libthinp's full check, then thin_check, of the committed image. */
static void real_check(struct tpool *t)
{
	int r = tpool_thin_check(t);

	assert_int_equal(thinp_meta_check_io(t->meta, NULL, check_report, NULL), 0);
	if (r >= 0)
		assert_int_equal(r, 0);
}

void tpool_setup_real(struct tpool *t, uint64_t blocks, uint64_t meta_bytes,
		      const thinp_pool_options *opts)
{
	thinp_pool_options def = THINP_POOL_OPTIONS_INIT;

	memset(t, 0, sizeof(*t));
	t->opts = opts ? *opts : def;
	t->opts.data_block_size = TEST_BS;
	assert_int_equal(crashdev_open(&t->meta, meta_bytes, false, &t->meta_dev), 0);
	assert_int_equal(crashdev_open(&t->data, blocks * TEST_BS, true, &t->dev), 0);
	assert_int_equal(thinp_pool_format(&t->pool, t->meta, t->data, &t->opts), 0);
	t->open_real = real_open;
	t->check_real = real_check;
}

int tpool_thin_check(struct tpool *t)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/meta.img", test_tmpdir());
	crashdev_save(t->meta_dev, path);
	return thin_check_path(path);
}
