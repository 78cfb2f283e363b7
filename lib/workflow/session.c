/*
 * The replication session protocol: message frames and payloads, and the
 * connection wrapper that turns the transport's -EAGAIN into consistent
 * points of the job and remembers that a connection failed.
 */
#include "os/os.h"

#include "util/endian.h"
#include "workflow/job.h"
#include "workflow/session.h"

#define SESSION_MAGIC 0x4c505254u /* "TRPL" */
#define SESSION_VERSION 1u
#define FRAME_BYTES 12u

int session_connect(struct session *s)
{
	int r = s->t->connect(s->t->ctx, &s->conn);

	s->failed = r != 0;
	if (r)
		s->conn = NULL;
	return r;
}

void session_close(struct session *s)
{
	if (s->conn)
		s->t->close(s->conn);
	s->conn = NULL;
}

static int transport_failed(struct session *s, int r)
{
	s->failed = true;
	return r;
}

/* One read of the transport; waits out -EAGAIN at the job's consistent points. */
static int read_some(struct session *s, void *buf, size_t len, size_t *got)
{
	for (;;) {
		int r = s->t->read(s->conn, buf, len, got);

		if (r != -EAGAIN) {
			if (!r && *got > len)
				return transport_failed(s, -EINVAL);
			return r ? transport_failed(s, r) : 0;
		}
		if ((r = job_checkpoint(s->job, 0)))
			return r;
	}
}

/* Exactly @len bytes; a peer that closes first is -ECONNRESET. */
static int read_exact(struct session *s, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		size_t got = 0;
		int r = read_some(s, p, len, &got);

		if (r)
			return r;
		if (!got)
			return transport_failed(s, -ECONNRESET);
		p += got;
		len -= got;
	}
	return 0;
}

static int write_all(struct session *s, const void *buf, size_t len)
{
	int r = s->t->write(s->conn, buf, len);

	return r ? transport_failed(s, r) : 0;
}

int session_send(struct session *s, uint16_t type, const void *payload, size_t len)
{
	uint8_t buf[FRAME_BYTES + SESSION_MAX_PAYLOAD];

	if (len > SESSION_MAX_PAYLOAD)
		return -EINVAL;
	store_le32(buf, SESSION_MAGIC);
	store_le32(buf + 4, (uint32_t)type | SESSION_VERSION << 16);
	store_le32(buf + 8, (uint32_t)len);
	if (len)
		memcpy(buf + FRAME_BYTES, payload, len);
	return write_all(s, buf, FRAME_BYTES + len);
}

int session_recv(struct session *s, uint16_t *type, void *buf, size_t *len)
{
	uint8_t frame[FRAME_BYTES];
	uint32_t tv, n;
	int r = read_exact(s, frame, sizeof(frame));

	if (r)
		return r;
	tv = load_le32(frame + 4);
	n = load_le32(frame + 8);
	if (load_le32(frame) != SESSION_MAGIC || tv >> 16 != SESSION_VERSION ||
	    n > SESSION_MAX_PAYLOAD)
		return -EPROTO;
	*type = (uint16_t)tv;
	*len = n;
	return read_exact(s, buf, n);
}

size_t session_encode_hello(const struct session_hello *h, uint8_t *buf)
{
	memcpy(buf, h->chain, 16);
	memcpy(buf + 16, h->base, 16);
	memcpy(buf + 32, h->target, 16);
	return 48;
}

int session_decode_hello(struct session_hello *h, const uint8_t *buf, size_t len)
{
	if (len != 48)
		return -EPROTO;
	memcpy(h->chain, buf, 16);
	memcpy(h->base, buf + 16, 16);
	memcpy(h->target, buf + 32, 16);
	return 0;
}

/* Trailing text of a payload into a NUL-terminated buffer of @size. */
static int decode_text(char *out, size_t size, const uint8_t *p, size_t n)
{
	if (n >= size || memchr(p, 0, n))
		return -EPROTO;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

size_t session_encode_state(const struct session_state *st, uint8_t *buf)
{
	size_t n = strlen(st->token);

	memcpy(buf, st->newest, 16);
	store_le64(buf + 16, st->newest_id);
	memcpy(buf + 24, st->token, n);
	return 24 + n;
}

int session_decode_state(struct session_state *st, const uint8_t *buf, size_t len)
{
	if (len < 24)
		return -EPROTO;
	memcpy(st->newest, buf, 16);
	st->newest_id = load_le64(buf + 16);
	return decode_text(st->token, sizeof(st->token), buf + 24, len - 24);
}

size_t session_encode_ack(const struct session_ack *a, uint8_t *buf)
{
	size_t n = strlen(a->msg);

	store_le32(buf, (uint32_t)a->result);
	store_le32(buf + 4, 0);
	memcpy(buf + 8, a->guid, 16);
	store_le64(buf + 24, a->id);
	memcpy(buf + 32, a->msg, n);
	return 32 + n;
}

int session_decode_ack(struct session_ack *a, const uint8_t *buf, size_t len)
{
	if (len < 32)
		return -EPROTO;
	a->result = (int32_t)load_le32(buf);
	/* A result is 0 or a negative errno. */
	if (a->result > 0)
		return -EPROTO;
	memcpy(a->guid, buf + 8, 16);
	a->id = load_le64(buf + 24);
	return decode_text(a->msg, sizeof(a->msg), buf + 32, len - 32);
}

int session_stream_write(const void *buf, size_t len, void *ctx)
{
	struct session *s = ctx;
	int r = write_all(s, buf, len);

	if (r)
		return r;
	s->bytes += len;
	return s->on_write ? s->on_write(s, len) : 0;
}

int session_stream_read(void *buf, size_t len, size_t *got, void *ctx)
{
	struct session *s = ctx;
	int r = read_some(s, buf, len, got);

	if (r)
		return r;
	if (!*got)
		s->failed = true; /* the stream ends early: the peer went away */
	s->bytes += *got;
	return job_checkpoint(s->job, *got);
}
