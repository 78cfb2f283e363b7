/*
 * The catalog on its device: two header slots and the entries they point at.
 *
 *   offset 0      header slot 0 (4 KiB; the header is its first 64 bytes)
 *   offset 4096   header slot 1
 *   offset 8192+  payloads: each commit's entries, 4 KiB aligned
 *
 * A commit writes its entries where the live commit's entries are not,
 * flushes, then writes the other slot's header with the next sequence
 * number and flushes again. The header fits in one 512-byte sector, so it
 * lands whole or not at all: after a crash the live header, or the new one
 * pointing at entries that were flushed before it, is the newest valid one.
 */
#include "os/os.h"

#include "block/bm.h"
#include "catalog/catalog_internal.h"
#include "util/compiler.h"
#include "util/endian.h"

#define CAT_MAGIC 0x544143504E494854ull /* "THINPCAT" as little-endian bytes */
#define CAT_FORMAT_VERSION 1u
#define CAT_INCOMPAT_KNOWN 0u /* incompatible features this code understands */
#define CAT_SLOT_BYTES 4096u
#define CAT_PAYLOAD_START (2u * CAT_SLOT_BYTES)
#define CAT_HEADER_BYTES 64u
#define CAT_ALIGN 4096u

/* Header field offsets. */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_INCOMPAT = 12, H_SEQ = 16, H_TRANS = 24,
	H_POFF = 32, H_PLEN = 40, H_COUNT = 48, H_PCRC = 52, H_COMPAT = 56, H_CRC = 60,
};

/* Entry record v1: a fixed part, then the origin's bytes, padded to 8. */
enum {
	R_LEN = 0, R_VERSION = 4, R_ID = 8, R_SIZE = 16, R_FLAGS = 24, R_BTIME = 28,
	R_BTRANS = 32, R_GUID = 40, R_PARENT = 56, R_RSTREAM = 72, R_RNEXT = 88,
	R_OLEN = 96, R_RESERVED = 100, R_FIXED = 104,
};
/* Record v2 appends, after the origin padded to 8: the resume point's
 * records (8), bytes (8), digest (4) and 4 zero bytes. */
enum { R2_RECORDS = 0, R2_BYTES = 8, R2_DIGEST = 16, R2_TAIL = 24 };
/* Record v3 appends, after those: the origin's guid (16) and size (8). */
enum { R3_OGUID = R2_TAIL, R3_OSIZE = R2_TAIL + 16, R3_TAIL = R2_TAIL + 24 };
#define CAT_RECORD_VERSION 3u

static uint32_t crc32c(const void *p, size_t len)
{
	return crc32c_raw(0xFFFFFFFFu, p, len) ^ 0xFFFFFFFFu;
}

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Where a record's v2 fields begin: after the origin, padded to 8. */
static uint64_t v2_offset(uint64_t olen)
{
	return round_up(R_FIXED + olen, 8);
}

static uint64_t record_len(const thinp_catalog_entry *e)
{
	return v2_offset(strlen(e->origin)) + R3_TAIL;
}

static void encode_record(unsigned char *p, const thinp_catalog_entry *e)
{
	uint64_t olen = strlen(e->origin), len = record_len(e);

	memset(p, 0, len);
	store_le32(p + R_LEN, (uint32_t)len);
	store_le32(p + R_VERSION, CAT_RECORD_VERSION);
	store_le64(p + R_ID, e->id);
	store_le64(p + R_SIZE, e->size);
	store_le32(p + R_FLAGS, e->flags);
	store_le32(p + R_BTIME, e->birth_time);
	store_le64(p + R_BTRANS, e->birth_transaction);
	memcpy(p + R_GUID, e->guid, 16);
	memcpy(p + R_PARENT, e->parent_guid, 16);
	memcpy(p + R_RSTREAM, e->recv_stream, 16);
	store_le64(p + R_RNEXT, e->recv_next_block);
	store_le32(p + R_OLEN, (uint32_t)olen);
	memcpy(p + R_FIXED, e->origin, olen);
	store_le64(p + v2_offset(olen) + R2_RECORDS, e->recv_records);
	store_le64(p + v2_offset(olen) + R2_BYTES, e->recv_bytes);
	store_le32(p + v2_offset(olen) + R2_DIGEST, e->recv_digest);
	memcpy(p + v2_offset(olen) + R3_OGUID, e->origin_guid, 16);
	store_le64(p + v2_offset(olen) + R3_OSIZE, e->origin_size);
}

/* Decode the record at p (avail bytes left); its length through *len.
 * A record of a later version is longer: its extra fields are skipped. */
static int decode_record(const unsigned char *p, uint64_t avail, thinp_catalog_entry *e,
			 uint64_t *len)
{
	uint32_t rlen, olen;

	if (avail < R_FIXED)
		return -EILSEQ;
	rlen = load_le32(p + R_LEN);
	olen = load_le32(p + R_OLEN);
	if (rlen < R_FIXED || rlen % 8 || rlen > avail || load_le32(p + R_VERSION) == 0 ||
	    olen >= THINP_CATALOG_ORIGIN_MAX || R_FIXED + (uint64_t)olen > rlen ||
	    memchr(p + R_FIXED, 0, olen))
		return -EILSEQ;
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	e->id = load_le64(p + R_ID);
	e->size = load_le64(p + R_SIZE);
	e->flags = load_le32(p + R_FLAGS);
	e->birth_time = load_le32(p + R_BTIME);
	e->birth_transaction = load_le64(p + R_BTRANS);
	memcpy(e->guid, p + R_GUID, 16);
	memcpy(e->parent_guid, p + R_PARENT, 16);
	memcpy(e->recv_stream, p + R_RSTREAM, 16);
	e->recv_next_block = load_le64(p + R_RNEXT);
	memcpy(e->origin, p + R_FIXED, olen);
	/* A version 1 record has no resume point past its block: zeroes. */
	if (load_le32(p + R_VERSION) >= 2 && rlen >= v2_offset(olen) + R2_TAIL) {
		e->recv_records = load_le64(p + v2_offset(olen) + R2_RECORDS);
		e->recv_bytes = load_le64(p + v2_offset(olen) + R2_BYTES);
		e->recv_digest = load_le32(p + v2_offset(olen) + R2_DIGEST);
	}
	/* Nor has a version 2 record an origin identity: none. */
	if (load_le32(p + R_VERSION) >= 3 && rlen >= v2_offset(olen) + R3_TAIL) {
		memcpy(e->origin_guid, p + v2_offset(olen) + R3_OGUID, 16);
		e->origin_size = load_le64(p + v2_offset(olen) + R3_OSIZE);
	}
	*len = rlen;
	return e->id > CAT_MAX_ID ? -EILSEQ : 0;
}

struct header {
	uint64_t seq, trans, poff, plen;
	uint32_t count, pcrc, incompat;
};

/* 1 valid, 0 all zeroes (never written), -EILSEQ anything else,
 * -EOPNOTSUPP a valid header needing a feature we lack. */
static int parse_header(const unsigned char *b, struct header *h)
{
	static const unsigned char zero[CAT_HEADER_BYTES];

	if (load_le64(b + H_MAGIC) != CAT_MAGIC)
		return memcmp(b, zero, sizeof(zero)) ? -EILSEQ : 0;
	if (load_le32(b + H_CRC) != crc32c(b, H_CRC) || load_le32(b + H_VERSION) == 0)
		return -EILSEQ;
	h->incompat = load_le32(b + H_INCOMPAT);
	if (h->incompat & ~CAT_INCOMPAT_KNOWN)
		return -EOPNOTSUPP;
	h->seq = load_le64(b + H_SEQ);
	h->trans = load_le64(b + H_TRANS);
	h->poff = load_le64(b + H_POFF);
	h->plen = load_le64(b + H_PLEN);
	h->count = load_le32(b + H_COUNT);
	h->pcrc = load_le32(b + H_PCRC);
	return 1;
}

static void build_header(unsigned char *b, const struct header *h)
{
	memset(b, 0, CAT_SLOT_BYTES);
	store_le64(b + H_MAGIC, CAT_MAGIC);
	store_le32(b + H_VERSION, CAT_FORMAT_VERSION);
	store_le32(b + H_INCOMPAT, 0);
	store_le64(b + H_SEQ, h->seq);
	store_le64(b + H_TRANS, h->trans);
	store_le64(b + H_POFF, h->poff);
	store_le64(b + H_PLEN, h->plen);
	store_le32(b + H_COUNT, h->count);
	store_le32(b + H_PCRC, h->pcrc);
	store_le32(b + H_COMPAT, 0);
	store_le32(b + H_CRC, crc32c(b, H_CRC));
}

static void table_clear(struct catalog_table *t)
{
	thinp_os_free(t->e);
	*t = (struct catalog_table){ 0 };
}

/* Decode a payload into t (empty); ids must ascend strictly. */
static int decode_payload(const unsigned char *p, const struct header *h,
			  struct catalog_table *t)
{
	uint64_t pos = 0, len;
	thinp_catalog_entry *e = thinp_os_alloc(sizeof(*e));
	int r = e ? 0 : -ENOMEM;

	for (uint32_t i = 0; !r && i < h->count; i++) {
		r = decode_record(p + pos, h->plen - pos, e, &len);
		if (!r && t->n && e->id <= t->e[t->n - 1].id)
			r = -EILSEQ;
		if (!r)
			r = catalog_table_append(t, e);
		pos += len;
	}
	if (!r && pos != h->plen)
		r = -EILSEQ;
	thinp_os_free(e);
	if (r)
		table_clear(t);
	return r;
}

/* Load the entries a valid header points at. */
static int load_payload(thinp_io *io, uint64_t dev_size, const struct header *h,
			struct catalog_table *t)
{
	uint64_t padded = round_up(h->plen, CAT_ALIGN);
	unsigned char *p;
	int r;

	if (!h->plen)
		return h->count ? -EILSEQ : 0;
	if (h->poff < CAT_PAYLOAD_START || h->poff % CAT_ALIGN || h->poff > dev_size ||
	    padded > dev_size - h->poff || h->plen > SIZE_MAX)
		return -EILSEQ;
	p = thinp_os_alloc(padded);
	if (!p)
		return -ENOMEM;
	r = thinp_io_read(io, p, padded, h->poff, 0);
	if (!r && crc32c(p, h->plen) != h->pcrc)
		r = -EILSEQ;
	if (!r)
		r = decode_payload(p, h, t);
	thinp_os_free(p);
	return r;
}

static void commit_from(struct catalog_commit *c, int slot, const struct header *h)
{
	*c = (struct catalog_commit){ slot, h->seq, h->poff, h->plen, h->trans };
}

int catalog_store_load(thinp_io *io, struct catalog_table *t, struct catalog_commit *last)
{
	unsigned char *b;
	struct header h[2];
	int v[2], r, order[2];
	uint64_t size;

	*last = (struct catalog_commit){ -1, 0, 0, 0, 0 };
	r = thinp_io_size(io, &size);
	if (r || size == 0)
		return r;
	if (size < CAT_PAYLOAD_START)
		return -EILSEQ;
	b = thinp_os_alloc(CAT_PAYLOAD_START);
	if (!b)
		return -ENOMEM;
	r = thinp_io_read(io, b, CAT_PAYLOAD_START, 0, 0);
	if (r)
		goto out;
	v[0] = parse_header(b, &h[0]);
	v[1] = parse_header(b + CAT_SLOT_BYTES, &h[1]);
	if (v[0] == -EOPNOTSUPP || v[1] == -EOPNOTSUPP) {
		r = -EOPNOTSUPP;
		goto out;
	}
	if (v[0] <= 0 && v[1] <= 0) {
		/* Never committed, or garbage that is no catalog of ours. */
		r = (v[0] == 0 && v[1] == 0) ? 0 : -EILSEQ;
		goto out;
	}
	/* Newest valid first; fall back to the other if its entries are bad. */
	order[0] = (v[1] > 0 && (v[0] <= 0 || h[1].seq > h[0].seq)) ? 1 : 0;
	order[1] = !order[0];
	r = -EILSEQ;
	for (int i = 0; i < 2 && r; i++) {
		int s = order[i];

		if (v[s] <= 0)
			continue;
		r = load_payload(io, size, &h[s], t);
		if (r == -ENOMEM || r == -EIO)
			break;
		if (!r) {
			commit_from(last, s, &h[s]);
			/* The next commit must outnumber a newer, broken header. */
			if (v[!s] > 0 && h[!s].seq > last->seq)
				last->seq = h[!s].seq;
		}
	}
out:
	thinp_os_free(b);
	return r;
}

static int encode_payload(const struct catalog_table *t, unsigned char **out, uint64_t *len)
{
	uint64_t total = 0, pos = 0;
	unsigned char *p;

	for (uint64_t i = 0; i < t->n; i++)
		total += record_len(&t->e[i]);
	p = thinp_os_zalloc(round_up(total, CAT_ALIGN) ? round_up(total, CAT_ALIGN) : 1);
	if (!p)
		return -ENOMEM;
	for (uint64_t i = 0; i < t->n; i++) {
		encode_record(p + pos, &t->e[i]);
		pos += record_len(&t->e[i]);
	}
	*out = p;
	*len = total;
	return 0;
}

/* Where the new entries go: at the start of the payload area if they end
 * before the live ones begin, else right after the live ones. */
static uint64_t payload_place(const struct catalog_commit *last, uint64_t padded)
{
	if (!last->payload_len || CAT_PAYLOAD_START + padded <= last->payload_off)
		return CAT_PAYLOAD_START;
	return last->payload_off + round_up(last->payload_len, CAT_ALIGN);
}

static int ensure_size(thinp_io *io, uint64_t need)
{
	uint64_t size;
	int r = thinp_io_size(io, &size);

	if (r || size >= need)
		return r;
	r = thinp_io_resize(io, need);
	return r == -EOPNOTSUPP ? -ENOSPC : r;
}

int catalog_store_commit(thinp_io *io, const struct catalog_table *t,
			 struct catalog_commit *last, uint64_t transaction_id)
{
	unsigned char *p = NULL, *b = NULL;
	struct header h = { 0 };
	int slot = last->slot == 0 ? 1 : 0, r;
	uint64_t padded;

	r = encode_payload(t, &p, &h.plen);
	if (r)
		return r;
	padded = round_up(h.plen, CAT_ALIGN);
	h.poff = h.plen ? payload_place(last, padded) : 0;
	h.seq = last->seq + 1;
	h.trans = transaction_id;
	h.count = (uint32_t)t->n;
	h.pcrc = crc32c(p, h.plen);
	b = thinp_os_alloc(CAT_SLOT_BYTES);
	r = b ? 0 : -ENOMEM;
	if (!r)
		r = ensure_size(io, h.plen ? h.poff + padded : CAT_PAYLOAD_START);
	if (!r && h.plen)
		r = thinp_io_write(io, p, padded, h.poff, 0);
	if (!r)
		r = thinp_io_flush(io);
	if (!r) {
		build_header(b, &h);
		r = thinp_io_write(io, b, CAT_SLOT_BYTES, (uint64_t)slot * CAT_SLOT_BYTES, 0);
	}
	if (!r)
		r = thinp_io_flush(io);
	if (!r)
		commit_from(last, slot, &h);
	thinp_os_free(b);
	thinp_os_free(p);
	return r;
}
