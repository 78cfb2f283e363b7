/*
 * libthinp thin-device streams: the codec of `thinp send` / `thinp receive`.
 *
 * ABI tier: stable (version nodes LIBTHINP_1.N).
 *
 * A stream carries one thin device (full stream) or the change from a base
 * snapshot to a target (incremental stream) as a sequence of bytes that can
 * go to a file, a pipe or a socket. docs/STREAM.md describes every byte; in
 * short: a header (stream id, target and base guids, block size, virtual
 * size, what unmapped blocks mean, feature flags), then records in ascending
 * block order: DATA (a run of blocks and their bytes), UNMAP (a run becomes
 * unprovisioned), ZERO (a run becomes provisioned zeroes), CHECKPOINT (a
 * resume point) and END (totals and a digest of the whole stream). Every
 * record carries its own CRC-32C and its record number.
 *
 * Records are absolute ("blocks [b, b+n) are X"), so applying any suffix of a
 * stream again gives the same device. A receiver should make nothing visible
 * before it has been handed the END record: only then is the stream known to
 * be complete and in order.
 *
 * The codec knows nothing of pools: a writer turns calls into bytes handed to
 * a write callback, a reader turns bytes from a read callback into checked
 * records. The program chooses the transport.
 *
 * Errors specific to streams (besides -EINVAL misuse and -ENOMEM):
 *   -EILSEQ      damage: a CRC mismatch, a malformed field, a record out of
 *                order or out of range, a digest or count that does not match
 *   -EPROTO      truncation: the input ended before the END record
 *   -EOPNOTSUPP  a format version, required feature or required record type
 *                this library does not know
 * A reader's error message (thinp_stream_reader_errmsg) says where: the byte
 * offset in the stream and the record number.
 *
 * Handles are not thread-safe: use each from one thread at a time. Different
 * handles are independent.
 */
#ifndef LIBTHINP_STREAM_H
#define LIBTHINP_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <libthinp/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The format version this library writes and reads. */
#define THINP_STREAM_VERSION 1

/* What reading an unmapped (never written, or UNMAPped) block returns. */
#define THINP_STREAM_UNMAPPED_ZERO 0   /* zeroes */
#define THINP_STREAM_UNMAPPED_ORIGIN 1 /* the external origin's data */

/* Must-understand feature bits (thinp_stream_header.incompat): a reader
 * refuses a stream with a bit it does not know. */
#define THINP_STREAM_INCOMPAT_RESUMING (1ull << 0) /* a resumed stream: header.resume is set */
/* May-ignore feature bits (thinp_stream_header.compat): none defined in
 * version 1; a reader ignores unknown ones, a writer refuses to set them. */

/* Record types. Bit 31 marks a record a reader may skip if it does not know
 * the type; an unknown type without it is refused. */
#define THINP_STREAM_OPTIONAL 0x80000000u
#define THINP_STREAM_DATA 1
#define THINP_STREAM_UNMAP 2
#define THINP_STREAM_ZERO 3
#define THINP_STREAM_CHECKPOINT 4
#define THINP_STREAM_END 5

/* Limits. A block size is a multiple of 512 in [512, 1 GiB]. A DATA record
 * carries at most max(1, THINP_STREAM_DATA_RECORD_BYTES / block_size) blocks;
 * the writer splits longer runs. */
#define THINP_STREAM_MIN_BLOCK_SIZE 512u
#define THINP_STREAM_MAX_BLOCK_SIZE (1u << 30)
#define THINP_STREAM_DATA_RECORD_BYTES (1u << 24)

/* A writer's default distance between checkpoints, in stream bytes. */
#define THINP_STREAM_CHECKPOINT_DEFAULT (64ull << 20)
/* Pass as checkpoint_bytes to emit no automatic checkpoints. */
#define THINP_STREAM_CHECKPOINT_NEVER UINT64_MAX

/*
 * A point in a stream from which it can be restarted: everything before it
 * has been received. A reader hands one out with every CHECKPOINT record
 * (the point just after that record); a resumed stream's header names the
 * point it starts from.
 */
typedef struct thinp_stream_position {
	uint64_t next_block; /* every block below this one is final */
	uint64_t records;    /* records before this point (the next record's number) */
	uint64_t bytes;      /* stream bytes before this point, header included */
	uint32_t digest;     /* the running digest at this point (docs/STREAM.md) */
	uint32_t reserved;   /* zero */
} thinp_stream_position;

/* The version of thinp_stream_header this header describes. */
#define THINP_STREAM_HEADER_VERSION 1

/*
 * A stream's header. A sender fills one (from THINP_STREAM_HEADER_INIT) for
 * thinp_stream_writer_begin(); a reader hands out the one it read. Guids are
 * 16 opaque bytes; all zeroes means "none".
 */
typedef struct thinp_stream_header {
	uint32_t struct_size;  /* sizeof(thinp_stream_header) as compiled by the caller */
	uint32_t version;      /* THINP_STREAM_HEADER_VERSION */
	uint64_t incompat;     /* THINP_STREAM_INCOMPAT_* */
	uint64_t compat;       /* may-ignore feature bits (none known in version 1) */
	uint8_t stream_id[16]; /* random per send; all zeroes: the writer picks one */
	uint8_t target_guid[16];  /* the device the stream recreates */
	uint8_t base_guid[16];    /* incremental: the snapshot it applies to; full: zeroes */
	uint8_t origin_guid[16];  /* THINP_STREAM_UNMAPPED_ORIGIN: the external origin */
	uint64_t origin_size;     /* ... and its size in bytes (0 otherwise) */
	uint64_t virtual_size;    /* the device's size in bytes, a multiple of 512 */
	uint32_t block_size;      /* bytes per block (see the limits above) */
	uint32_t unmapped;        /* THINP_STREAM_UNMAPPED_* */
	/* With THINP_STREAM_INCOMPAT_RESUMING: where this stream picks up the
	 * interrupted one with the same stream_id. All zeroes otherwise. */
	thinp_stream_position resume;
	/* Fields added in later versions go here, each marked "since version N". */
} thinp_stream_header;

#define THINP_STREAM_HEADER_INIT \
	{ sizeof(thinp_stream_header), THINP_STREAM_HEADER_VERSION, 0, 0, {0}, {0}, {0}, {0}, \
	  0, 0, 0, THINP_STREAM_UNMAPPED_ZERO, { 0, 0, 0, 0, 0 } }

/*
 * A record as a reader delivers it. Borrowed: valid until the next call on
 * the reader (or its free). Fields not listed for a type are zero.
 */
typedef struct thinp_stream_record {
	uint32_t type;        /* THINP_STREAM_DATA ... THINP_STREAM_END */
	uint32_t reserved;
	uint64_t seq;         /* the record's number in the stream, from 0 */
	uint64_t offset;      /* where it starts, in bytes of this stream's input */
	/* DATA, UNMAP, ZERO: the run [first_block, first_block + nr_blocks). */
	uint64_t first_block;
	uint64_t nr_blocks;
	/* DATA: nr_blocks * block_size bytes. */
	const void *data;
	/* CHECKPOINT: the resume point just after this record (hand it to
	 * thinp_stream_token_format once everything before it is applied).
	 * END: the totals before the END record. */
	thinp_stream_position pos;
	/* Fields added in later versions go here. */
} thinp_stream_record;

/* Transport callbacks; ctx is the pointer given with them.
 * write: consume all len bytes; 0 or a negative errno.
 * read: store between 1 and len bytes at buf and their count in *got, or 0 in
 * *got at the end of the input; return 0, or a negative errno (passed on). */
typedef int (*thinp_stream_write_fn)(const void *buf, size_t len, void *ctx);
typedef int (*thinp_stream_read_fn)(void *buf, size_t len, size_t *got, void *ctx);

/* ---- Writer ---------------------------------------------------------- */

typedef struct thinp_stream_writer thinp_stream_writer;

/*
 * thinp_stream_writer_begin - start a stream: check the header and write it.
 * @out:    receives the writer, owned by the caller (thinp_stream_writer_free).
 * @hdr:    the header; copied. A zero stream_id is replaced by a random one
 *          (getrandom(2)); see thinp_stream_writer_header(). For a resumed
 *          stream, use the header thinp_stream_token_parse() filled.
 * @checkpoint_bytes: emit a CHECKPOINT whenever this many stream bytes have
 *          gone out since the last one (checked after each record); 0 means
 *          THINP_STREAM_CHECKPOINT_DEFAULT, THINP_STREAM_CHECKPOINT_NEVER none.
 * @write, @ctx: the transport.
 * Errors: -EINVAL for a NULL argument, an unknown header version, a too small
 * struct_size, a block size or virtual size outside the limits, an unknown
 * feature bit, an unmapped value other than THINP_STREAM_UNMAPPED_*, origin
 * fields without THINP_STREAM_UNMAPPED_ORIGIN, resume fields without
 * THINP_STREAM_INCOMPAT_RESUMING (or a resume point past the end); -ENOMEM;
 * -EIO and others from getrandom or the write callback. On error nothing is
 * returned and *out is NULL. Since 1.0.
 */
THINP_API int thinp_stream_writer_begin(thinp_stream_writer **out,
					const thinp_stream_header *hdr,
					uint64_t checkpoint_bytes,
					thinp_stream_write_fn write, void *ctx);

/*
 * thinp_stream_writer_data - blocks [first, first + nr) hold the nr *
 * block_size bytes at buf. Written as one or more DATA records.
 * thinp_stream_writer_unmap - blocks [first, first + nr) become unprovisioned.
 * thinp_stream_writer_zero - blocks [first, first + nr) become provisioned
 * zeroes (with an external origin, unlike unmapped blocks, they hide it).
 * Runs must come in ascending order without overlap: first must be at least
 * the end of the previous run (or checkpoint), and first + nr at most the
 * number of blocks of the device.
 * Errors: -EINVAL for nr == 0, a run out of order or past the end, a NULL buf
 * or writer, a writer already ended (nothing is written then, and the writer
 * may go on); the write callback's error, after which the writer has failed:
 * every later call returns that error (the stream is cut in the middle of a
 * record). A DATA run split into several records may fail after some of them
 * went out. Since 1.0.
 */
THINP_API int thinp_stream_writer_data(thinp_stream_writer *w, uint64_t first,
				       uint64_t nr, const void *buf);
THINP_API int thinp_stream_writer_unmap(thinp_stream_writer *w, uint64_t first,
					uint64_t nr);
THINP_API int thinp_stream_writer_zero(thinp_stream_writer *w, uint64_t first,
				       uint64_t nr);

/*
 * thinp_stream_writer_checkpoint - emit a CHECKPOINT saying every block below
 * next_block is final; later runs must start at or after it. A sender that
 * scanned past unchanged blocks may name a point beyond its last run.
 * Errors: -EINVAL if next_block is below the end of the last run or past the
 * device; as thinp_stream_writer_data otherwise. Since 1.0.
 */
THINP_API int thinp_stream_writer_checkpoint(thinp_stream_writer *w,
					     uint64_t next_block);

/*
 * thinp_stream_writer_end - emit the END record. The writer takes no more
 * runs; it must still be freed. Errors as thinp_stream_writer_data.
 * Since 1.0.
 */
THINP_API int thinp_stream_writer_end(thinp_stream_writer *w);

/* thinp_stream_writer_header - the header as written (with the stream id the
 * writer picked). Borrowed, valid until the writer is freed. Since 1.0. */
THINP_API const thinp_stream_header *
thinp_stream_writer_header(const thinp_stream_writer *w);

/* thinp_stream_writer_errmsg - a description of the writer's last error, ""
 * if none. Borrowed, valid until the next call on the writer. Since 1.0. */
THINP_API const char *thinp_stream_writer_errmsg(const thinp_stream_writer *w);

/* thinp_stream_writer_free - free the writer (it writes nothing: a stream
 * not ended is truncated as far as a reader can tell). NULL is a no-op.
 * Since 1.0. */
THINP_API void thinp_stream_writer_free(thinp_stream_writer *w);

/* ---- Reader ---------------------------------------------------------- */

typedef struct thinp_stream_reader thinp_stream_reader;

/*
 * thinp_stream_reader_new - a reader of the stream behind `read`. Reads
 * nothing yet. Memory: the reader buffers one record at a time and grows that
 * buffer only as bytes arrive, so a hostile length field costs at most about
 * twice the bytes actually supplied, and never more than one maximal record
 * (16 MiB, or one block when blocks are larger).
 * Errors: -EINVAL for a NULL argument; -ENOMEM. Since 1.0.
 */
THINP_API int thinp_stream_reader_new(thinp_stream_reader **out,
				      thinp_stream_read_fn read, void *ctx);

/*
 * thinp_stream_reader_header - read and check the header if not yet done, and
 * hand it out through *out (borrowed, valid until the reader is freed).
 * Errors: -EILSEQ (bad magic, CRC, field, a zero stream id), -EPROTO (input
 * shorter than a header), -EOPNOTSUPP (version or required feature unknown),
 * the read callback's error. Errors are sticky: every later call returns the
 * same one.
 * Since 1.0.
 */
THINP_API int thinp_stream_reader_header(thinp_stream_reader *r,
					 const thinp_stream_header **out);

/*
 * thinp_stream_reader_next - read, check and hand out the next record through
 * *out (borrowed until the next call). Reads the header first if needed.
 * Every check on a record (its CRC, record number, fields, order, range, and
 * for CHECKPOINT and END the byte count and running digest) is done before it
 * is delivered. Unknown optional records are skipped. After END has been
 * delivered, returns -ENODATA; the reader reads nothing past END, so whatever
 * follows in the input is the caller's.
 * Errors: as thinp_stream_reader_header, plus -EOPNOTSUPP for an unknown
 * required record type, -EINVAL if the read callback reports more bytes than
 * it was asked for; sticky. Since 1.0.
 */
THINP_API int thinp_stream_reader_next(thinp_stream_reader *r,
				       const thinp_stream_record **out);

/*
 * thinp_stream_reader_run - deliver every record, END included, to fn in
 * order. Stops at the first error, or when fn returns nonzero, and returns
 * that value; 0 after END. Since 1.0.
 */
THINP_API int thinp_stream_reader_run(thinp_stream_reader *r,
				      int (*fn)(const thinp_stream_record *rec, void *ctx),
				      void *ctx);

/* thinp_stream_reader_errmsg - where and why the reader failed ("" if it did
 * not): the byte offset and record number, e.g. "record 12 at offset 8420:
 * CRC mismatch". Borrowed, valid until the reader is freed. Since 1.0. */
THINP_API const char *thinp_stream_reader_errmsg(const thinp_stream_reader *r);

/* thinp_stream_reader_free - free the reader. NULL is a no-op. Since 1.0. */
THINP_API void thinp_stream_reader_free(thinp_stream_reader *r);

/* ---- Resume tokens --------------------------------------------------- */

/* Bytes of a formatted token, NUL included. */
#define THINP_STREAM_TOKEN_SIZE 168

/*
 * thinp_stream_token_format - a printable resume token for restarting the
 * stream `hdr` at `pos` (a CHECKPOINT record's pos, once the receiver has
 * applied and made durable everything before it). The token names the
 * stream id, target and base guids and the position, and carries a CRC: a
 * "thinp1-" prefix and 160 lowercase hex digits.
 * @buf, @size: receives the NUL-terminated token; size >= THINP_STREAM_TOKEN_SIZE.
 * Errors: -EINVAL for NULL arguments or a short buffer. Thread-safe. Since 1.0.
 */
THINP_API int thinp_stream_token_format(char *buf, size_t size,
					const thinp_stream_header *hdr,
					const thinp_stream_position *pos);

/*
 * thinp_stream_token_parse - check a token and fill the fields of *hdr it
 * fixes: stream_id, target_guid, base_guid, resume, and the RESUMING bit in
 * incompat. The other fields are left as they were: the sender fills them
 * from the device and starts the resumed stream with
 * thinp_stream_writer_begin(), whose runs must then start at
 * hdr->resume.next_block or later.
 * @hdr: struct_size and version must be set (THINP_STREAM_HEADER_INIT).
 * Errors: -EINVAL for NULL arguments, a bad header version, or a token that
 * is malformed, of an unknown version or fails its CRC (nothing is changed).
 * Thread-safe. Since 1.0.
 */
THINP_API int thinp_stream_token_parse(thinp_stream_header *hdr, const char *token);

#ifdef __cplusplus
}
#endif
#endif
