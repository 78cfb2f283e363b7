/*
 * The stream writer: runs in, records out.
 *
 * Each call checks its run against the shared rules (stream/format.c) before
 * a byte goes out, so misuse (-EINVAL) leaves the stream as it was and the
 * caller may go on. A record is written as frame, payload and CRC through
 * the write callback without copying the caller's data: the CRC is computed
 * over the pieces as they go. A failed write leaves a record cut in half, so
 * the writer fails for good (every later call returns the same error).
 *
 * Checkpoints: after every run record, if checkpoint_bytes or more stream
 * bytes went out since the last checkpoint (or the stream's start), a
 * CHECKPOINT at the end of that run follows. The rule depends only on the
 * byte counts, which a resumed stream continues, so a resumed writer given
 * the same runs emits the same records as the uninterrupted one would have.
 */
#include "os/os.h"

#include "block/bm.h"
#include "stream/format.h"
#include "stream/writer.h"

struct thinp_stream_writer {
	thinp_stream_header hdr;
	struct stream_state st;
	thinp_stream_write_fn write;
	void *ctx;
	uint64_t checkpoint_bytes;
	uint64_t last_checkpoint; /* st.pos.bytes just after the last checkpoint */
	int failed;               /* sticky transport error, or 0 */
	bool ended;
	char errmsg[192];
};

THINP_PRINTF(3, 4)
static int set_error(thinp_stream_writer *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	thinp_os_vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

/* Write a piece of a record and fold it into *crc (unless crc is NULL). */
static int put(thinp_stream_writer *w, const void *buf, size_t len, uint32_t *crc)
{
	int ret;

	if (len == 0)
		return 0;
	if (crc)
		*crc = crc32c_raw(*crc, buf, len);
	ret = w->write(buf, len, w->ctx);
	if (ret < 0) {
		w->failed = ret;
		return set_error(w, ret, "write callback failed at stream record %llu: %s",
				 (unsigned long long)w->st.pos.records, thinp_strerror(ret));
	}
	return 0;
}

int stream_writer_emit(thinp_stream_writer *w, uint32_t type, const void *fixed,
		       size_t fixed_len, const void *data, size_t data_len,
		       uint64_t next_block)
{
	struct stream_frame f = {
		.type = cpu_to_le32(type),
		.payload_len = cpu_to_le32((uint32_t)(fixed_len + data_len)),
		.seq = cpu_to_le64(w->st.pos.records),
	};
	uint32_t crc = w->st.seed;
	le32 crc_le;
	int ret;

	if ((ret = put(w, &f, sizeof(f), &crc)) < 0 ||
	    (ret = put(w, fixed, fixed_len, &crc)) < 0 ||
	    (ret = put(w, data, data_len, &crc)) < 0)
		return ret;
	crc ^= 0xFFFFFFFFu;
	crc_le = cpu_to_le32(crc);
	if ((ret = put(w, &crc_le, sizeof(crc_le), NULL)) < 0)
		return ret;
	stream_state_advance(&w->st, sizeof(f) + fixed_len + data_len + STREAM_CRC_LEN, crc,
			     next_block);
	return 0;
}

static int emit_checkpoint(thinp_stream_writer *w, uint64_t next_block)
{
	struct stream_checkpoint c = {
		.next_block = cpu_to_le64(next_block),
		.bytes = cpu_to_le64(w->st.pos.bytes),
		.digest = cpu_to_le32(w->st.pos.digest),
	};
	int ret = stream_writer_emit(w, THINP_STREAM_CHECKPOINT, &c, sizeof(c), NULL, 0,
				     next_block);

	if (ret == 0)
		w->last_checkpoint = w->st.pos.bytes;
	return ret;
}

static int maybe_checkpoint(thinp_stream_writer *w)
{
	if (w->checkpoint_bytes == THINP_STREAM_CHECKPOINT_NEVER ||
	    w->st.pos.bytes - w->last_checkpoint < w->checkpoint_bytes)
		return 0;
	return emit_checkpoint(w, w->st.pos.next_block);
}

/* 0 if the writer may emit another record. */
static int usable(thinp_stream_writer *w)
{
	if (!w)
		return -EINVAL;
	if (w->failed)
		return w->failed;
	if (w->ended)
		return set_error(w, -EINVAL, "the stream has ended");
	return 0;
}

static int check_run(thinp_stream_writer *w, uint64_t first, uint64_t nr)
{
	const char *why;
	int ret = usable(w);

	if (ret)
		return ret;
	if (stream_state_check_run(&w->st, first, nr, &why))
		return set_error(w, -EINVAL, "run [%llu, +%llu): %s", (unsigned long long)first,
				 (unsigned long long)nr, why);
	return 0;
}

static int emit_run(thinp_stream_writer *w, uint32_t type, uint64_t first, uint64_t nr,
		    const void *data)
{
	struct stream_run run = { cpu_to_le64(first), cpu_to_le64(nr) };
	size_t data_len = data ? (size_t)(nr * w->hdr.block_size) : 0;
	int ret = stream_writer_emit(w, type, &run, sizeof(run), data, data_len, first + nr);

	return ret ? ret : maybe_checkpoint(w);
}

int thinp_stream_writer_data(thinp_stream_writer *w, uint64_t first, uint64_t nr,
			     const void *buf)
{
	const uint8_t *p = buf;
	int ret = check_run(w, first, nr);

	if (ret)
		return ret;
	if (!buf)
		return set_error(w, -EINVAL, "DATA run without data");
	while (nr) {
		uint64_t n = THINP_MIN(nr, w->st.max_data_blocks);

		if ((ret = emit_run(w, THINP_STREAM_DATA, first, n, p)) < 0)
			return ret;
		first += n;
		nr -= n;
		p += n * w->hdr.block_size;
	}
	return 0;
}

int thinp_stream_writer_unmap(thinp_stream_writer *w, uint64_t first, uint64_t nr)
{
	int ret = check_run(w, first, nr);

	return ret ? ret : emit_run(w, THINP_STREAM_UNMAP, first, nr, NULL);
}

int thinp_stream_writer_zero(thinp_stream_writer *w, uint64_t first, uint64_t nr)
{
	int ret = check_run(w, first, nr);

	return ret ? ret : emit_run(w, THINP_STREAM_ZERO, first, nr, NULL);
}

int thinp_stream_writer_checkpoint(thinp_stream_writer *w, uint64_t next_block)
{
	const char *why;
	int ret = usable(w);

	if (ret)
		return ret;
	if (stream_state_check_checkpoint(&w->st, next_block, &why))
		return set_error(w, -EINVAL, "checkpoint at block %llu: %s",
				 (unsigned long long)next_block, why);
	return emit_checkpoint(w, next_block);
}

int thinp_stream_writer_end(thinp_stream_writer *w)
{
	struct stream_end e;
	int ret = usable(w);

	if (ret)
		return ret;
	e = (struct stream_end){
		.records = cpu_to_le64(w->st.pos.records),
		.bytes = cpu_to_le64(w->st.pos.bytes),
		.digest = cpu_to_le32(w->st.pos.digest),
	};
	ret = stream_writer_emit(w, THINP_STREAM_END, &e, sizeof(e), NULL, 0,
				 w->st.pos.next_block);
	if (ret == 0)
		w->ended = true;
	return ret;
}

static bool id_is_zero(const uint8_t id[16])
{
	static const uint8_t zero[16];

	return memcmp(id, zero, sizeof(zero)) == 0;
}

/* Copy and check the caller's header, picking a stream id if it has none;
 * -EINVAL with *why on any problem (or the random source's error). */
static int take_header(thinp_stream_header *dst, const thinp_stream_header *src,
		       const char **why)
{
	if (src->version != THINP_STREAM_HEADER_VERSION || src->struct_size < sizeof(*dst)) {
		*why = "unknown header version or struct size";
		return -EINVAL;
	}
	memcpy(dst, src, sizeof(*dst));
	if (dst->compat) {
		*why = "unknown may-ignore feature";
		return -EINVAL;
	}
	if (id_is_zero(dst->stream_id)) {
		int ret;

		if (dst->incompat & THINP_STREAM_INCOMPAT_RESUMING) {
			*why = "a resumed stream without the stream id it resumes";
			return -EINVAL;
		}
		if ((ret = thinp_os_random_bytes(dst->stream_id, 16)) < 0) {
			*why = "no random bytes for the stream id";
			return ret;
		}
	}
	return stream_header_check(dst, why) ? -EINVAL : 0;
}

int thinp_stream_writer_begin(thinp_stream_writer **out, const thinp_stream_header *hdr,
			      uint64_t checkpoint_bytes, thinp_stream_write_fn write,
			      void *ctx)
{
	struct stream_header_wire wire;
	thinp_stream_writer *w;
	const char *why;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!hdr || !write)
		return -EINVAL;
	w = thinp_os_zalloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	if ((ret = take_header(&w->hdr, hdr, &why)) < 0)
		goto fail;
	w->write = write;
	w->ctx = ctx;
	w->checkpoint_bytes = checkpoint_bytes ? checkpoint_bytes : THINP_STREAM_CHECKPOINT_DEFAULT;
	stream_state_init(&w->st, &w->hdr, sizeof(wire));
	w->last_checkpoint = w->st.pos.bytes;
	stream_header_encode(&wire, &w->hdr);
	if ((ret = w->write(&wire, sizeof(wire), ctx)) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	thinp_os_free(w);
	return ret;
}

const thinp_stream_header *thinp_stream_writer_header(const thinp_stream_writer *w)
{
	return w ? &w->hdr : NULL;
}

const char *thinp_stream_writer_errmsg(const thinp_stream_writer *w)
{
	return w ? w->errmsg : "";
}

void thinp_stream_writer_free(thinp_stream_writer *w)
{
	thinp_os_free(w);
}
