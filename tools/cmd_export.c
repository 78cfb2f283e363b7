/*
 * thinp export / thinp import: a thin device as a sparse raw image file and
 * back. Export writes only the mapped blocks (the rest stays a hole); import
 * writes only the blocks of the image that are not all zeroes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinp.h"

/* The pool's data block size, or 0 (after printing why). */
static uint32_t block_size(struct invocation *inv)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	int e = thinp_pool_get_status(inv->pool, &st);

	if (e)
		fail(inv, e, "%s", inv->meta_path);
	return e ? 0 : st.data_block_size;
}

/* The size to export: --size, else the catalog's, else the highest mapped
 * block's end. */
static int export_size(struct invocation *inv, uint64_t dev, uint32_t bs, uint64_t *size)
{
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	thinp_catalog_entry *e = malloc(sizeof(*e));
	thinp_catalog *cat;
	thinp_io *cio;
	int r;

	if (!e)
		return err("out of memory");
	*size = 0;
	if (opt(inv, "size")->given)
		*size = opt(inv, "size")->num;
	else if (open_catalog(inv, &cio, &cat) == EXIT_OK) {
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		if (thinp_catalog_get(cat, dev, e) == 0)
			*size = e->size;
		thinp_catalog_close(cat);
		thinp_io_close(cio);
	}
	free(e);
	if (*size)
		return EXIT_OK;
	if ((r = thinp_pool_get_thin_status(inv->pool, dev, &ts)))
		return fail(inv, r, "device %" PRIu64, dev);
	*size = ts.highest_mapped * bs;
	return EXIT_OK;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n ? errno : EIO;
			return -1;
		}
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int run_export(struct invocation *inv)
{
	uint64_t dev = inv->operand[0].num, size, vb;
	const char *path = inv->operand[1].str;
	uint32_t bs = block_size(inv);
	char *buf = bs ? malloc(bs) : NULL;
	thinp_mapping m = THINP_MAPPING_INIT;
	int fd, e = 0, r;

	if (!buf || export_size(inv, dev, bs, &size)) {
		free(buf);
		return bs ? EXIT_FAIL : err("out of memory");
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size)) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return err("%s: %s", path, strerror(errno));
	}
	for (uint64_t v = 0; !e; v = vb + 1) {
		size_t n;

		r = thinp_pool_thin_next_map(inv->pool, dev, v, &vb, &m);
		if (r || vb * bs >= size) {
			e = r == -ENODATA ? 0 : r;
			break;
		}
		n = size - vb * bs < bs ? (size_t)(size - vb * bs) : bs;
		e = thinp_thin_read(inv->thin, buf, n, vb * bs);
		if (!e && write_all(fd, buf, n, vb * bs))
			e = -errno;
	}
	if (!e && fsync(fd))
		e = -errno;
	close(fd);
	free(buf);
	return e ? fail(inv, e, "exporting device %" PRIu64 " to %s", dev, path) : EXIT_OK;
}

static const struct option_spec export_options[] = {
	{ "size", 's', "SIZE", 0, parse_size, "the image's size (default: the catalog's, or\nthe end of the highest mapped block)" },
	OPT_CATALOG,
	{ NULL },
};
static const struct operand_spec export_operands[] = {
	{ "DEV", parse_u64 }, { "FILE", NULL }, { NULL, NULL },
};

const struct command cmd_export = {
	.name = "export",
	.summary = "write a thin device to a sparse raw image file",
	.description =
		"Write thin device DEV to FILE as a raw image: the mapped blocks at\n"
		"their offsets, holes elsewhere (they read as zeroes).\n",
	.options = export_options,
	.operands = export_operands,
	.min_operands = 2,
	.open = OPEN_THIN,
	.rdonly = true,
	.run = run_export,
};

static bool all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* The image's non-zero blocks into device id. */
static int copy_in(struct invocation *inv, int fd, uint64_t id, uint64_t size, uint32_t bs)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	char *buf = malloc(bs);
	thinp_thin *t = NULL;
	int e = buf ? 0 : -ENOMEM;

	o.size = (size + bs - 1) / bs * bs;
	if (!e)
		e = thinp_thin_open(&t, inv->pool, id, &o);
	for (uint64_t off = 0; !e && off < size; off += bs) {
		ssize_t n = pread(fd, buf, bs, (off_t)off);

		if (n <= 0)
			e = n < 0 ? -errno : -EIO;
		else if (!all_zero(buf, (size_t)n))
			e = thinp_thin_write(t, buf, (uint64_t)n, off);
	}
	if (!e)
		e = thinp_thin_flush(t);
	thinp_thin_close(t);
	free(buf);
	return e;
}

static int run_import(struct invocation *inv)
{
	const char *path = inv->operand[0].str;
	uint64_t id = inv->operand[1].num;
	uint32_t bs = block_size(inv);
	thinp_catalog_entry *e = malloc(sizeof(*e));
	thinp_catalog *cat = NULL;
	thinp_io *cio = NULL;
	struct stat st;
	int fd = open(path, O_RDONLY), r = 0, rc = EXIT_FAIL;

	if (fd < 0 || fstat(fd, &st)) {
		err("%s: %s", path, strerror(errno));
	} else if (!bs || !e) {
		err("out of memory");
	} else if (open_catalog(inv, &cio, &cat) == EXIT_OK) {
		*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
		e->id = id;
		e->size = (uint64_t)st.st_size;
		if ((r = thinp_pool_create_thin(inv->pool, id)))
			rc = fail(inv, r, "device %" PRIu64, id);
		else if ((r = copy_in(inv, fd, id, e->size, bs)))
			rc = fail(inv, r, "importing %s into device %" PRIu64, path, id);
		else if ((r = thinp_catalog_new_guid(e->guid)))
			rc = err("%s", thinp_strerror(r));
		else
			rc = attach_entry(inv, cat, e);
	}
	thinp_catalog_close(cat);
	thinp_io_close(cio);
	if (fd >= 0)
		close(fd);
	free(e);
	return rc;
}

static const struct option_spec import_options[] = { OPT_CATALOG, { NULL } };
static const struct operand_spec import_operands[] = {
	{ "FILE", NULL }, { "ID", parse_u64 }, { NULL, NULL },
};

const struct command cmd_import = {
	.name = "import",
	.summary = "create a thin device from a raw image file",
	.description =
		"Create thin device ID with the contents and size of the raw image FILE,\n"
		"provisioning only the blocks that are not all zeroes, and record it in\n"
		"the catalog (a new guid, the image's size).\n",
	.options = import_options,
	.operands = import_operands,
	.min_operands = 2,
	.open = OPEN_POOL,
	.run = run_import,
};
