/*
 * The stream format's shared rules: header fields, size limits, the order of
 * runs, and the running digest. The writer calls these before it emits
 * anything and the reader after it has checked a CRC, so a stream the writer
 * produced always passes the reader, and a rule changed here changes both.
 *
 * A record's CRC is the CRC-32C of the stream id followed by the record's
 * frame and payload: it covers the record's number and ties it to its
 * stream. The running digest chains the records' CRCs: D0 = crc32c_raw(~0,
 * stream id), D(k+1) = crc32c_raw(Dk, le32 CRC of record k). The chain costs
 * four bytes per record yet pins the whole sequence: a dropped, repeated,
 * reordered or foreign record changes every later digest.
 */
#include "os/os.h"

#include "block/bm.h"
#include "stream/format.h"
#include "util/zeroes.h"

uint32_t stream_crc(const void *data, size_t len)
{
	return crc32c_raw(0xFFFFFFFFu, data, len) ^ 0xFFFFFFFFu;
}

uint64_t stream_max_data_blocks(uint32_t block_size)
{
	uint64_t n = THINP_STREAM_DATA_RECORD_BYTES / block_size;

	return n ? n : 1;
}

uint64_t stream_max_payload(uint32_t block_size)
{
	return sizeof(struct stream_run) + stream_max_data_blocks(block_size) * block_size;
}

uint64_t stream_nr_blocks(const thinp_stream_header *h)
{
	return h->virtual_size / h->block_size + (h->virtual_size % h->block_size != 0);
}

static int check_resume(const thinp_stream_header *h, const char **why)
{
	const thinp_stream_position *r = &h->resume;

	if (!(h->incompat & THINP_STREAM_INCOMPAT_RESUMING)) {
		if (!thinp_is_zeroes(r, sizeof(*r))) {
			*why = "resume point set in a stream that is not resumed";
			return -EINVAL;
		}
		return 0;
	}
	if (r->reserved || r->records == 0 || r->bytes < sizeof(struct stream_header_wire)) {
		*why = "malformed resume point";
		return -EINVAL;
	}
	if (r->next_block > stream_nr_blocks(h)) {
		*why = "resume point past the end of the device";
		return -EINVAL;
	}
	return 0;
}

int stream_header_check(const thinp_stream_header *h, const char **why)
{
	if (thinp_is_zeroes(h->stream_id, sizeof(h->stream_id))) {
		*why = "zero stream id";
		return -EINVAL;
	}
	if (h->incompat & ~(uint64_t)THINP_STREAM_INCOMPAT_RESUMING) {
		*why = "unknown required feature";
		return -EOPNOTSUPP;
	}
	if (h->block_size < THINP_STREAM_MIN_BLOCK_SIZE ||
	    h->block_size > THINP_STREAM_MAX_BLOCK_SIZE || h->block_size % 512) {
		*why = "block size not a multiple of 512 in [512 B, 1 GiB]";
		return -EINVAL;
	}
	if (h->virtual_size % 512) {
		*why = "virtual size not a multiple of 512";
		return -EINVAL;
	}
	if (h->unmapped == THINP_STREAM_UNMAPPED_ZERO) {
		if (h->origin_size || !thinp_is_zeroes(h->origin_guid, sizeof(h->origin_guid))) {
			*why = "external origin named but unmapped blocks read as zeroes";
			return -EINVAL;
		}
	} else if (h->unmapped != THINP_STREAM_UNMAPPED_ORIGIN) {
		*why = "unknown meaning of unmapped blocks";
		return -EINVAL;
	}
	return check_resume(h, why);
}

static void position_encode(struct stream_position_wire *w, const thinp_stream_position *p)
{
	w->next_block = cpu_to_le64(p->next_block);
	w->records = cpu_to_le64(p->records);
	w->bytes = cpu_to_le64(p->bytes);
	w->digest = cpu_to_le32(p->digest);
	w->reserved = cpu_to_le32(p->reserved);
}

static void position_decode(thinp_stream_position *p, const struct stream_position_wire *w)
{
	p->next_block = le64_to_cpu(w->next_block);
	p->records = le64_to_cpu(w->records);
	p->bytes = le64_to_cpu(w->bytes);
	p->digest = le32_to_cpu(w->digest);
	p->reserved = le32_to_cpu(w->reserved);
}

void stream_header_encode(struct stream_header_wire *w, const thinp_stream_header *h)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->magic, STREAM_MAGIC, STREAM_MAGIC_LEN);
	w->version = cpu_to_le32(THINP_STREAM_VERSION);
	w->header_size = cpu_to_le32(sizeof(*w));
	w->incompat = cpu_to_le64(h->incompat);
	w->compat = cpu_to_le64(h->compat);
	memcpy(w->stream_id, h->stream_id, 16);
	memcpy(w->target_guid, h->target_guid, 16);
	memcpy(w->base_guid, h->base_guid, 16);
	memcpy(w->origin_guid, h->origin_guid, 16);
	w->origin_size = cpu_to_le64(h->origin_size);
	w->virtual_size = cpu_to_le64(h->virtual_size);
	w->block_size = cpu_to_le32(h->block_size);
	w->unmapped = cpu_to_le32(h->unmapped);
	position_encode(&w->resume, &h->resume);
	w->crc = cpu_to_le32(stream_crc(w, offsetof(struct stream_header_wire, crc)));
}

void stream_header_decode(thinp_stream_header *h, const struct stream_header_wire *w)
{
	memset(h, 0, sizeof(*h));
	h->struct_size = sizeof(*h);
	h->version = THINP_STREAM_HEADER_VERSION;
	h->incompat = le64_to_cpu(w->incompat);
	h->compat = le64_to_cpu(w->compat);
	memcpy(h->stream_id, w->stream_id, 16);
	memcpy(h->target_guid, w->target_guid, 16);
	memcpy(h->base_guid, w->base_guid, 16);
	memcpy(h->origin_guid, w->origin_guid, 16);
	h->origin_size = le64_to_cpu(w->origin_size);
	h->virtual_size = le64_to_cpu(w->virtual_size);
	h->block_size = le32_to_cpu(w->block_size);
	h->unmapped = le32_to_cpu(w->unmapped);
	position_decode(&h->resume, &w->resume);
}

uint32_t stream_seed(const uint8_t stream_id[16])
{
	return crc32c_raw(0xFFFFFFFFu, stream_id, 16);
}

void stream_state_init(struct stream_state *s, const thinp_stream_header *h,
		       uint64_t header_len)
{
	s->nr_blocks = stream_nr_blocks(h);
	s->max_data_blocks = stream_max_data_blocks(h->block_size);
	s->seed = stream_seed(h->stream_id);
	if (h->incompat & THINP_STREAM_INCOMPAT_RESUMING) {
		s->pos = h->resume;
		return;
	}
	memset(&s->pos, 0, sizeof(s->pos));
	s->pos.bytes = header_len;
	s->pos.digest = s->seed;
}

int stream_state_check_run(const struct stream_state *s, uint64_t first, uint64_t nr,
			   const char **why)
{
	if (nr == 0) {
		*why = "empty run";
		return -EINVAL;
	}
	if (first < s->pos.next_block) {
		*why = "run out of order (starts below the end of the previous one)";
		return -EINVAL;
	}
	if (first > s->nr_blocks || nr > s->nr_blocks - first) {
		*why = "run past the end of the device";
		return -EINVAL;
	}
	return 0;
}

int stream_state_check_checkpoint(const struct stream_state *s, uint64_t next_block,
				  const char **why)
{
	if (next_block < s->pos.next_block) {
		*why = "checkpoint below the end of the previous run";
		return -EINVAL;
	}
	if (next_block > s->nr_blocks) {
		*why = "checkpoint past the end of the device";
		return -EINVAL;
	}
	return 0;
}

void stream_state_advance(struct stream_state *s, uint64_t record_len, uint32_t crc,
			  uint64_t next_block)
{
	le32 c = cpu_to_le32(crc);

	s->pos.records++;
	s->pos.bytes += record_len;
	s->pos.digest = crc32c_raw(s->pos.digest, &c, sizeof(c));
	s->pos.next_block = next_block;
}
