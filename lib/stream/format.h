/*
 * The thinp stream format on the wire (docs/STREAM.md is the specification),
 * and the rules both the writer and the reader enforce, written once here so
 * that the writer can never produce what the reader refuses.
 *
 * Layout: a header (struct stream_header_wire), then records. A record is a
 * frame (struct stream_frame: type, payload length, record number), the
 * payload, and the CRC-32C of stream id, frame and payload (the stream id is
 * not repeated in the record, but a record copied into another stream fails
 * its CRC there). Everything is little-endian.
 */
#ifndef THINP_STREAM_FORMAT_H
#define THINP_STREAM_FORMAT_H

#include "os/os.h"

#include <libthinp/stream.h>
#include "util/compiler.h"
#include "util/endian.h"

#define STREAM_MAGIC "\x89TSTR\r\n\x1a"
#define STREAM_MAGIC_LEN 8

struct stream_position_wire {
	le64 next_block;
	le64 records;
	le64 bytes;
	le32 digest;
	le32 reserved;
} THINP_PACKED;

struct stream_header_wire {
	uint8_t magic[STREAM_MAGIC_LEN];
	le32 version;
	le32 header_size; /* bytes of the header, CRC included */
	le64 incompat;
	le64 compat;
	uint8_t stream_id[16];
	uint8_t target_guid[16];
	uint8_t base_guid[16];
	uint8_t origin_guid[16];
	le64 origin_size;
	le64 virtual_size;
	le32 block_size;
	le32 unmapped;
	struct stream_position_wire resume;
	le32 crc; /* CRC-32C of every byte before it */
} THINP_PACKED;
_Static_assert(sizeof(struct stream_header_wire) == 156, "header layout");

/* A version-1 reader accepts a longer header (fields a later version appends
 * before the CRC, which it skips) up to this size. */
#define STREAM_MAX_HEADER_SIZE 4096

struct stream_frame {
	le32 type;
	le32 payload_len;
	le64 seq;
} THINP_PACKED;
_Static_assert(sizeof(struct stream_frame) == 16, "frame layout");
#define STREAM_CRC_LEN 4

/* Payloads of the known record types. DATA is a stream_run followed by the
 * blocks' bytes; UNMAP and ZERO are a stream_run alone. */
struct stream_run {
	le64 first_block;
	le64 nr_blocks;
} THINP_PACKED;

struct stream_checkpoint {
	le64 next_block;
	le64 bytes;   /* the stream bytes before this record */
	le32 digest;  /* the running digest before this record */
	le32 reserved;
} THINP_PACKED;

struct stream_end {
	le64 records; /* the records before END (= END's record number) */
	le64 bytes;   /* the stream bytes before END */
	le32 digest;  /* the running digest before END */
	le32 reserved;
} THINP_PACKED;

/* CRC-32C in its standard form (initial ~0, final inversion), as every CRC
 * field of the format holds it. */
uint32_t stream_crc(const void *data, size_t len);

/* The most blocks one DATA record may carry, and the largest payload any
 * record may have, for a block size. Both bound the reader's memory. */
uint64_t stream_max_data_blocks(uint32_t block_size);
uint64_t stream_max_payload(uint32_t block_size);

/* Blocks of a device of virtual_size bytes (the last one may be partial). */
uint64_t stream_nr_blocks(const thinp_stream_header *h);

/*
 * Header rules. Returns 0 if the header is one version 1 may write and read,
 * else -EOPNOTSUPP (an unknown required feature) or -EINVAL (anything else),
 * with the reason in *why. The reader turns -EINVAL into -EILSEQ.
 */
int stream_header_check(const thinp_stream_header *h, const char **why);
void stream_header_encode(struct stream_header_wire *w, const thinp_stream_header *h);
/* Decode the fields of a version-1 header (the caller checked magic and CRC). */
void stream_header_decode(thinp_stream_header *h, const struct stream_header_wire *w);

/*
 * Where a stream stands between two records: the next record's number, the
 * stream bytes before it (counted from the original stream's start, so a
 * resumed stream continues the count), the running digest, and the first
 * block a run may start at. The writer and the reader each keep one and
 * move it with the same functions.
 */
struct stream_state {
	thinp_stream_position pos; /* pos.next_block: where the next run may start */
	uint32_t seed;             /* stream_seed(stream id): starts every record CRC */
	uint64_t nr_blocks;
	uint64_t max_data_blocks;
};

/* header_len: the bytes of the header (the stream's first record starts
 * there unless it resumes another stream). */
void stream_state_init(struct stream_state *s, const thinp_stream_header *h,
		       uint64_t header_len);
/* 0 if a run over [first, first + nr) may come next, else -EINVAL with the
 * reason in *why. (A DATA record's own length limit is the reader's check:
 * the writer splits long runs.) */
int stream_state_check_run(const struct stream_state *s, uint64_t first, uint64_t nr,
			   const char **why);
/* 0 if a checkpoint may name next_block, else -EINVAL with *why. */
int stream_state_check_checkpoint(const struct stream_state *s, uint64_t next_block,
				  const char **why);
/* Account for a record of record_len bytes (frame, payload, CRC) with CRC
 * `crc` that leaves the next run to start at next_block. */
void stream_state_advance(struct stream_state *s, uint64_t record_len, uint32_t crc,
			  uint64_t next_block);

/* crc32c_raw(~0, stream id): the register every record CRC starts from, and
 * the running digest before the first record. */
uint32_t stream_seed(const uint8_t stream_id[16]);

static inline bool stream_type_known(uint32_t type)
{
	return type >= THINP_STREAM_DATA && type <= THINP_STREAM_END;
}

#endif
