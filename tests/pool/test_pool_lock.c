/*
 * Exclusive ownership of a pool: a pool open for writing holds its metadata
 * device's lock (thinp_io_lock), so a second writer, through another open
 * file description of the same file, is refused with -EBUSY and a clear log
 * message, and changes nothing; read-only opens (of the pool, of a held
 * metadata snapshot) work beside it; closing the pool frees the device.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include <libthinp/thinp.h>
#include <libthinp/meta.h>
#include "thin/pool_iface.h"

#define MIB (1u << 20)

struct files {
	char meta[512], data[512];
};

static void make_files(struct files *f, const char *name)
{
	thinp_io *io;

	snprintf(f->meta, sizeof(f->meta), "%s/%s-meta", test_tmpdir(), name);
	snprintf(f->data, sizeof(f->data), "%s/%s-data", test_tmpdir(), name);
	assert_int_equal(thinp_io_open_file(&io, f->meta, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_resize(io, 4 * MIB), 0);
	thinp_io_close(io);
	assert_int_equal(thinp_io_open_file(&io, f->data, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_resize(io, 16 * MIB), 0);
	thinp_io_close(io);
}

static void remember_log(int level, const char *msg, void *ctx)
{
	snprintf(ctx, 256, "%s", msg);
}

/* Open (or format) a pool on fresh handles of the files. */
static int pool_on(const struct files *f, bool format, uint32_t io_flags, uint32_t features,
		   thinp_pool **pool, thinp_io **meta, thinp_io **data, char *log)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	int r;

	assert_int_equal(thinp_io_open_file(meta, f->meta, io_flags), 0);
	assert_int_equal(thinp_io_open_file(data, f->data, io_flags), 0);
	o.features = features;
	o.log_fn = remember_log;
	o.log_ctx = log;
	log[0] = '\0';
	r = format ? thinp_pool_format(pool, *meta, *data, &o)
		   : thinp_pool_open(pool, *meta, *data, &o);
	if (r) {
		thinp_io_close(*data);
		thinp_io_close(*meta);
	}
	return r;
}

static void close_pool(thinp_pool *pool, thinp_io *meta, thinp_io *data)
{
	assert_int_equal(thinp_pool_close(pool), 0);
	thinp_io_close(data);
	thinp_io_close(meta);
}

static void test_second_writer_refused(void **state)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	thinp_io *m1, *d1, *m2, *d2;
	thinp_pool *p1, *p2;
	char log[256];
	struct files f;

	make_files(&f, "writer");
	assert_int_equal(pool_on(&f, true, 0, 0, &p1, &m1, &d1, log), 0);
	assert_int_equal(thinp_pool_create_thin(p1, 1), 0);

	/* Neither open nor format gets in, and both say why. */
	assert_int_equal(pool_on(&f, false, 0, 0, &p2, &m2, &d2, log), -EBUSY);
	assert_string_equal(log, "metadata device is in use by another writer");
	assert_int_equal(pool_on(&f, true, 0, 0, &p2, &m2, &d2, log), -EBUSY);
	assert_string_equal(log, "metadata device is in use by another writer");

	/* The refused format wrote nothing: the first pool goes on. */
	assert_int_equal(thinp_pool_create_thin(p1, 2), 0);
	assert_int_equal(thinp_pool_commit(p1), 0);

	/* Read-only opens work beside the writer, and see its commits. */
	assert_int_equal(pool_on(&f, false, 0, THINP_POOL_READ_ONLY, &p2, &m2, &d2, log), 0);
	assert_int_equal(thinp_pool_create_thin(p2, 3), -EROFS);
	close_pool(p2, m2, d2);
	assert_int_equal(pool_on(&f, false, THINP_IO_RDONLY, 0, &p2, &m2, &d2, log), 0);
	assert_int_equal(thinp_pool_get_status(p2, &st), 0);
	assert_int_equal(st.mode, THINP_POOL_MODE_READ_ONLY);
	{
		thinp_thin_status ts = THINP_THIN_STATUS_INIT;

		assert_int_equal(thinp_pool_get_thin_status(p2, 2, &ts), 0);
	}
	close_pool(p2, m2, d2);

	/* Closed, the pool frees its device for the next writer. */
	close_pool(p1, m1, d1);
	assert_int_equal(pool_on(&f, false, 0, 0, &p2, &m2, &d2, log), 0);
	assert_int_equal(thinp_pool_create_thin(p2, 3), 0);
	close_pool(p2, m2, d2);
	unlink(f.meta);
	unlink(f.data);
}

/* A held metadata snapshot is readable with the metadata tier while the
 * pool that holds it is open for writing (what `thinp dump -m` does). */
static void test_snapshot_readable_beside_writer(void **state)
{
	thinp_meta_options mo = THINP_META_OPTIONS_INIT;
	thinp_meta_device dev = THINP_META_DEVICE_INIT;
	thinp_io *m1, *d1, *ro;
	thinp_pool *p1;
	thinp_meta *meta;
	char log[256];
	struct files f;

	make_files(&f, "snap");
	assert_int_equal(pool_on(&f, true, 0, 0, &p1, &m1, &d1, log), 0);
	assert_int_equal(thinp_pool_create_thin(p1, 7), 0);
	assert_int_equal(thinp_pool_reserve_metadata_snap(p1), 0);
	assert_int_equal(thinp_io_open_file(&ro, f.meta, THINP_IO_RDONLY), 0);
	mo.flags = THINP_META_RDONLY;
	assert_int_equal(thinp_meta_open(&meta, ro, &mo), 0);
	assert_int_equal(thin_device_locked(meta, 7, &dev), 0);
	thinp_meta_close(meta);
	thinp_io_close(ro);
	close_pool(p1, m1, d1);
	unlink(f.meta);
	unlink(f.data);
}

/* Format on a read-only device: -EROFS, as documented. Two pools on one
 * memory device: the handle's own exclusion. */
static void test_read_only_format_and_memory(void **state)
{
	thinp_io *m, *d, *mro, *dro;
	thinp_pool *p1, *p2;
	struct files f;

	make_files(&f, "rofmt");
	assert_int_equal(thinp_io_open_file(&m, f.meta, 0), 0);
	assert_int_equal(thinp_io_open_file(&d, f.data, 0), 0);
	assert_int_equal(thinp_io_open_file(&mro, f.meta, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_io_open_file(&dro, f.data, THINP_IO_RDONLY), 0);
	assert_int_equal(thinp_pool_format(&p1, mro, d, NULL), -EROFS);
	assert_int_equal(thinp_pool_format(&p1, m, dro, NULL), -EROFS);
	/* Neither left the metadata device locked. */
	assert_int_equal(thinp_io_lock(m, THINP_IO_LOCK_EXCLUSIVE), 0);
	thinp_io_close(dro);
	thinp_io_close(mro);
	thinp_io_close(d);
	thinp_io_close(m);
	unlink(f.meta);
	unlink(f.data);

	assert_int_equal(thinp_io_open_memory(&m, 4 * MIB, 0), 0);
	assert_int_equal(thinp_io_open_memory(&d, 16 * MIB, 0), 0);
	assert_int_equal(thinp_pool_format(&p1, m, d, NULL), 0);
	assert_int_equal(thinp_pool_open(&p2, m, d, NULL), -EBUSY);
	assert_int_equal(thinp_pool_close(p1), 0);
	assert_int_equal(thinp_pool_open(&p2, m, d, NULL), 0);
	assert_int_equal(thinp_pool_close(p2), 0);
	thinp_io_close(d);
	thinp_io_close(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_second_writer_refused),
		cmocka_unit_test(test_snapshot_readable_beside_writer),
		cmocka_unit_test(test_read_only_format_and_memory),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
