/*
 * thinp_backup: a device of a pool someone else owns, as a stream, read
 * through the held metadata snapshot only. The metadata handle is
 * read-only and takes no lock; data is read from the data device at the
 * data blocks the held root maps, which the owner cannot reuse while the
 * snapshot holds them (docs/REPLICA.md, "Backup of a live pool").
 */
#include "os/os.h"

#include <libthinp/backup.h>
#include "util/abi_struct.h"
#include "replica.h"

/* Every field of the 1.0 structs: later versions append. */
#define OPTIONS_MIN_SIZE sizeof(thinp_backup_options)
#define RESULT_MIN_SIZE sizeof(thinp_backup_result)

/* Which snapshot is held: its block and the roots it holds. A release and a
 * new reserve can land on the same block; the owner's changes in between
 * then show in the roots. */
struct held_id {
	uint64_t block, mapping_root, details_root;
};

struct backup {
	thinp_meta *meta;
	struct held_id held;  /* the snapshot the backup reads */
	thinp_io *data;
	thinp_stream_writer *w;
	uint64_t block_bytes;
	uint64_t chunk_blocks;
	uint64_t done, total;  /* data bytes, for progress */
	void *buf;
	thinp_backup_options o; /* the caller's, copied in */
	/* Full backups: DEV's runs in the held root, gathered by the walk. */
	thinp_meta_run *runs;
	size_t nr_runs, cap_runs;
};

/* The held metadata snapshot alone (thinp_meta_open_snapshot): block 0 is
 * read once for its held root, the live space maps and trees never, since
 * the owner changes them while we read. */
static int open_meta(thinp_io *io, thinp_meta **out)
{
	thinp_meta_options mo = THINP_META_OPTIONS_INIT;

	mo.flags = THINP_META_RDONLY;
	return thinp_meta_open_snapshot(out, io, 0, &mo);
}

/* The snapshot a snapshot-only handle reads, and its superblock. */
static int held_snapshot(thinp_meta *meta, struct held_id *held, thinp_meta_superblock *sb)
{
	int r = thinp_meta_get_superblock(meta, THINP_META_LIVE, sb);

	memset(held, 0, sizeof(*held));
	if (!r) {
		held->block = sb->blocknr;
		held->mapping_root = sb->data_mapping_root;
		held->details_root = sb->device_details_root;
	}
	return r;
}

/* The snapshot held now, read afresh (all zero: none). */
static int held_snapshot_now(thinp_io *io, struct held_id *held)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_meta *meta;
	int r = open_meta(io, &meta);

	memset(held, 0, sizeof(*held));
	if (r == -ENODATA)
		return 0;
	if (r)
		return r;
	r = held_snapshot(meta, held, &sb);
	thinp_meta_close(meta);
	return r;
}

static int fail(struct backup *b, int e, const char *what)
{
	char msg[256];

	if (b->meta && thinp_meta_errmsg(b->meta, msg, sizeof(msg)) && e != -ESTALE)
		return replica_fail(b->o.errbuf, b->o.errbuf_size, e, "%s: %s", what, msg);
	return replica_fail(b->o.errbuf, b->o.errbuf_size, e, "%s: %s", what,
			    thinp_strerror(e));
}

/* Virtual blocks [virt, virt + len) of DEV, at data blocks [data, data +
 * len) in the held root, as DATA records, a chunk at a time. */
static int send_run(struct backup *b, uint64_t virt, uint64_t data, uint64_t len)
{
	while (len) {
		uint64_t n = len < b->chunk_blocks ? len : b->chunk_blocks;
		int r = thinp_io_read(b->data, b->buf, n * b->block_bytes, data * b->block_bytes, 0);

		if (r)
			return fail(b, r, "reading the data device");
		if ((r = thinp_stream_writer_data(b->w, virt, n, b->buf)))
			return replica_fail(b->o.errbuf, b->o.errbuf_size, r,
					    "writing the stream: %s",
					    thinp_stream_writer_errmsg(b->w));
		b->done += n * b->block_bytes;
		if (b->o.progress)
			b->o.progress(b->done, b->total, b->o.progress_ctx);
		virt += n;
		data += n;
		len -= n;
	}
	return 0;
}

static int gather_run(const thinp_meta_run *run, void *ctx)
{
	struct backup *b = ctx;

	if (b->nr_runs == b->cap_runs) {
		size_t cap = b->cap_runs ? 2 * b->cap_runs : 64;
		thinp_meta_run *p = thinp_os_realloc(b->runs, b->cap_runs * sizeof(*p), cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->runs = p;
		b->cap_runs = cap;
	}
	b->runs[b->nr_runs++] = *run;
	b->total += run->length * b->block_bytes;
	return 0;
}

static int send_full(struct backup *b)
{
	int r = 0;

	for (size_t i = 0; !r && i < b->nr_runs; i++)
		r = send_run(b, b->runs[i].virt_begin, b->runs[i].data_begin, b->runs[i].length);
	return r;
}

/* The changes-only delta BASE -> DEV, gathered first so progress knows the
 * total (O(changed) runs in memory). */
static int gather_delta(struct backup *b, uint64_t base, uint64_t dev, uint64_t nr_blocks,
			thinp_delta_run **runs, size_t *nr)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;
	size_t cap = 0, got;
	thinp_delta *d;
	int r;

	o.flags = THINP_DELTA_CHANGES_ONLY;
	o.left_source = o.right_source = THINP_DELTA_HELD;
	o.end = nr_blocks;
	if ((r = thinp_meta_delta_open(&d, b->meta, base, dev, &o)))
		return fail(b, r, "delta");
	*runs = NULL;
	*nr = 0;
	do {
		if (*nr + 256 > cap) {
			thinp_delta_run *p = thinp_os_realloc(*runs, cap * sizeof(*p), (cap + 1024) * sizeof(*p));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			*runs = p;
			cap += 1024;
		}
		r = thinp_delta_next(d, *runs + *nr, 256, &got);
		for (size_t i = *nr; !r && i < *nr + got; i++)
			if ((*runs)[i].kind != THINP_DELTA_LEFT_ONLY)
				b->total += (*runs)[i].length * b->block_bytes;
		*nr += got;
	} while (!r && got);
	thinp_delta_close(d);
	return r ? fail(b, r, "delta") : 0;
}

static int send_delta(struct backup *b, const thinp_delta_run *runs, size_t nr)
{
	int r = 0;

	for (size_t i = 0; !r && i < nr; i++) {
		const thinp_delta_run *d = &runs[i];

		if (d->kind != THINP_DELTA_LEFT_ONLY) {
			r = send_run(b, d->virt_begin, d->right_data, d->length);
			continue;
		}
		if ((r = thinp_stream_writer_unmap(b->w, d->virt_begin, d->length)))
			replica_fail(b->o.errbuf, b->o.errbuf_size, r, "writing the stream: %s",
				     thinp_stream_writer_errmsg(b->w));
	}
	return r;
}

struct find_device {
	uint64_t id;
	thinp_meta_device *out;
};

static int find_device(const thinp_meta_device *d, void *ctx)
{
	struct find_device *f = ctx;

	if (d->dev_id != f->id)
		return 0;
	*f->out = *d;
	return 1;
}

static int not_held(struct backup *b, uint64_t id)
{
	return replica_fail(b->o.errbuf, b->o.errbuf_size, -ENODATA,
			    "device %" PRIu64 " is not in the held metadata snapshot", id);
}

/* Device @id's details in the held root (a walk of the details, O(devices)). */
static int held_device(struct backup *b, uint64_t id, thinp_meta_device *out)
{
	struct find_device f = { id, out };
	int r = thinp_meta_walk_devices(b->meta, THINP_META_HELD_ROOT, find_device, &f);

	if (r == 1)
		return 0;
	if (!r)
		return not_held(b, id);
	return fail(b, r, "the held metadata snapshot");
}

/* splitmix64's finalizer: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void thinp_backup_guid(const uint8_t pool_id[16], const thinp_meta_device *d, uint8_t guid[16])
{
	uint64_t p0 = 0, p1 = 0, h0, h1;

	for (int i = 0; i < 8; i++) {
		p0 |= (uint64_t)pool_id[i] << (8 * i);
		p1 |= (uint64_t)pool_id[8 + i] << (8 * i);
	}
	h0 = mix64(p0 ^ mix64(p1 ^ mix64(d->dev_id ^ mix64(((uint64_t)d->creation_time << 32) ^
							    mix64(d->transaction_id)))));
	h1 = mix64(h0 ^ 0x9e3779b97f4a7c15ull);
	for (int i = 0; i < 8; i++) {
		guid[i] = (uint8_t)(h0 >> (8 * i));
		guid[8 + i] = (uint8_t)(h1 >> (8 * i));
	}
	if (replica_guid_is_zero(guid))
		guid[0] = 1;
}

/* The header: guids from the held root's details, size from the options or
 * DEV's highest mapped block (b->runs, gathered for that when needed). */
static int make_header(struct backup *b, uint64_t dev, uint64_t base, thinp_stream_header *hdr)
{
	thinp_meta_device d = THINP_META_DEVICE_INIT;
	uint64_t size = b->o.size;
	int r;

	if (base != THINP_BACKUP_FULL) {
		if ((r = held_device(b, base, &d)))
			return r;
		thinp_backup_guid(b->o.pool_id, &d, hdr->base_guid);
	}
	if ((r = held_device(b, dev, &d)))
		return r;
	thinp_backup_guid(b->o.pool_id, &d, hdr->target_guid);
	if (!size && b->nr_runs) {
		const thinp_meta_run *last = &b->runs[b->nr_runs - 1];

		size = (last->virt_begin + last->length) * b->block_bytes;
	}
	hdr->block_size = (uint32_t)b->block_bytes;
	hdr->virtual_size = size ? (size + b->block_bytes - 1) / b->block_bytes * b->block_bytes
				 : b->block_bytes;
	return 0;
}

/* The whole backup on an open handle; the stream's END only if the root
 * read is still held after the last data read. */
static int run_backup(struct backup *b, thinp_io *meta_io, uint64_t dev, uint64_t base,
		      thinp_stream_write_fn write, void *ctx)
{
	thinp_stream_header hdr = THINP_STREAM_HEADER_INIT;
	thinp_delta_run *delta = NULL;
	size_t nr_delta = 0;
	struct held_id held;
	int r = 0;

	/* DEV's runs: a full stream sends them; without a size they give it. */
	if (base == THINP_BACKUP_FULL || !b->o.size)
		r = thinp_meta_walk_mappings(b->meta, THINP_META_HELD_ROOT, dev, gather_run, b);
	if (r == -ENODATA)
		return not_held(b, dev);
	if (r)
		return fail(b, r, "mappings of the device in the held metadata snapshot");
	if (base != THINP_BACKUP_FULL)
		b->total = 0;
	if ((r = make_header(b, dev, base, &hdr)))
		return r;
	if (base != THINP_BACKUP_FULL &&
	    (r = gather_delta(b, base, dev, hdr.virtual_size / b->block_bytes, &delta, &nr_delta)))
		goto out;
	if ((r = thinp_stream_writer_begin(&b->w, &hdr, b->o.checkpoint_bytes, write, ctx))) {
		replica_fail(b->o.errbuf, b->o.errbuf_size, r, "starting the stream: %s",
			     thinp_strerror(r));
		goto out;
	}
	r = base == THINP_BACKUP_FULL ? send_full(b) : send_delta(b, delta, nr_delta);
	if (!r && (r = held_snapshot_now(meta_io, &held)))
		fail(b, r, "re-reading the superblock");
	if (!r && memcmp(&held, &b->held, sizeof(held)))
		r = replica_fail(b->o.errbuf, b->o.errbuf_size, -ESTALE,
				 "the metadata snapshot at block %" PRIu64 " was released during "
				 "the backup (now %" PRIu64 "): the stream is cut", b->held.block,
				 held.block);
	if (!r && (r = thinp_stream_writer_end(b->w)))
		replica_fail(b->o.errbuf, b->o.errbuf_size, r, "writing the stream: %s",
			     thinp_stream_writer_errmsg(b->w));
out:
	thinp_os_free(delta);
	return r;
}

/* The result (if wanted) as far as the backup got. */
static int report(const struct backup *b, thinp_backup_result *result, int r)
{
	thinp_backup_result x = THINP_BACKUP_RESULT_INIT;

	x.held_root = b->held.block;
	x.data_bytes = b->done;
	if (result)
		thinp_abi_copy_out(result, &x, sizeof(x), RESULT_MIN_SIZE);
	return r;
}

/* The caller's options (or the defaults) into b->o. */
static int take_options(struct backup *b, const thinp_backup_options *opts)
{
	thinp_backup_options defaults = THINP_BACKUP_OPTIONS_INIT;

	return thinp_abi_copy_in(&b->o, sizeof(b->o), opts ? opts : &defaults, OPTIONS_MIN_SIZE,
				 THINP_BACKUP_OPTIONS_VERSION);
}

int thinp_backup(thinp_io *meta_io, thinp_io *data_io, uint64_t dev, uint64_t base,
		 thinp_stream_write_fn write, void *ctx, const thinp_backup_options *opts,
		 thinp_backup_result *result)
{
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	struct backup b = { .data = data_io };
	int r;

	if (!meta_io || !data_io || !write || dev == base || take_options(&b, opts) ||
	    (result && thinp_abi_copy_out(result, NULL, 0, RESULT_MIN_SIZE)))
		return -EINVAL;
	replica_fail(b.o.errbuf, b.o.errbuf_size, 0, "%s", "");
	r = open_meta(meta_io, &b.meta);
	if (r == -ENODATA)
		return report(&b, result, replica_fail(b.o.errbuf, b.o.errbuf_size, r,
				    "no metadata snapshot is held: reserve one first"));
	if (r)
		return report(&b, result, replica_fail(b.o.errbuf, b.o.errbuf_size, r,
				    "cannot open the metadata snapshot: %s", thinp_strerror(r)));
	r = held_snapshot(b.meta, &b.held, &sb);
	if (r)
		fail(&b, r, "the superblock");
	b.block_bytes = (uint64_t)sb.data_block_size * 512;
	b.chunk_blocks = b.block_bytes ? THINP_STREAM_DATA_RECORD_BYTES / b.block_bytes : 0;
	if (!b.chunk_blocks)
		b.chunk_blocks = 1;
	/* Aligned: the data io may be O_DIRECT. */
	if (!r && !(b.buf = thinp_os_alloc_aligned(b.chunk_blocks * b.block_bytes, 4096)))
		r = -ENOMEM;
	if (!r)
		r = run_backup(&b, meta_io, dev, base, write, ctx);
	thinp_stream_writer_free(b.w);
	thinp_meta_close(b.meta);
	thinp_os_free(b.runs);
	thinp_os_free(b.buf);
	return report(&b, result, r);
}
