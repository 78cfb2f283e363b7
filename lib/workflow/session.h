/*
 * The replication session protocol (docs/WORKFLOWS.md, "Replication"): the
 * messages a sender and a receiver exchange on one connection of a
 * thinp_replicate_transport, and the connection wrapper both sides use.
 *
 * Every message is a 12-byte frame, little-endian: magic "TRPL", u16 type,
 * u16 protocol version, u32 payload length; then the payload. A STREAM
 * message has no payload: a thinp-stream (docs/STREAM.md) follows it, up to
 * and including its END record.
 */
#ifndef THINP_WORKFLOW_SESSION_H
#define THINP_WORKFLOW_SESSION_H

#include "os/os.h"
#include <libthinp/replicate.h>

#define SESSION_HELLO 1  /* sender: chain guid, base guid, target guid */
#define SESSION_STATE 2  /* receiver: newest complete replica, resume token */
#define SESSION_STREAM 3 /* sender: a stream follows */
#define SESSION_ACK 4    /* receiver: the stream's result, the replica's id and guid */

/* The largest payload either side accepts (an ACK with its message). */
#define SESSION_MAX_PAYLOAD 1024u
#define SESSION_MAX_TEXT 512u

struct session_hello {
	uint8_t chain[16];  /* the source device's guid */
	uint8_t base[16];   /* the sender's newest snapshot older than target, or 0 */
	uint8_t target[16]; /* the snapshot the sender wants replicated */
};

struct session_state {
	uint8_t newest[16]; /* the newest complete replica of the chain, or 0 */
	uint64_t newest_id;
	char token[THINP_STREAM_TOKEN_SIZE]; /* a partial receive of target, or "" */
};

struct session_ack {
	int32_t result;     /* thinp_receive's return */
	uint8_t guid[16];   /* the published replica's guid */
	uint64_t id;        /* its device id */
	char msg[SESSION_MAX_TEXT]; /* the receiver's description of a failure */
};

/* One open connection. */
struct session {
	const thinp_replicate_transport *t;
	void *conn;            /* NULL: not connected */
	thinp_job *job;        /* checked while the transport has nothing (-EAGAIN) */
	bool failed;           /* a transport call failed or the peer closed */
	uint64_t bytes;        /* stream bytes through stream_write / stream_read */
	/* Called after stream bytes were written (sender: progress, rate limit);
	 * its error ends the write. */
	int (*on_write)(struct session *s, size_t len);
};

/* Open a connection (session.failed on error) / close it (no-op if none). */
int session_connect(struct session *s);
void session_close(struct session *s);

/* Send one message. */
int session_send(struct session *s, uint16_t type, const void *payload, size_t len);
/* Read the next message's type and payload (at most SESSION_MAX_PAYLOAD
 * bytes) into buf; -EPROTO for a frame of another protocol. */
int session_recv(struct session *s, uint16_t *type, void *buf, size_t *len);

/* Message payloads to and from bytes; decoders return -EPROTO for a
 * malformed payload. */
size_t session_encode_hello(const struct session_hello *h, uint8_t *buf);
int session_decode_hello(struct session_hello *h, const uint8_t *buf, size_t len);
size_t session_encode_state(const struct session_state *st, uint8_t *buf);
int session_decode_state(struct session_state *st, const uint8_t *buf, size_t len);
size_t session_encode_ack(const struct session_ack *a, uint8_t *buf);
int session_decode_ack(struct session_ack *a, const uint8_t *buf, size_t len);

/* thinp_stream_write_fn / thinp_stream_read_fn on the session (ctx). */
int session_stream_write(const void *buf, size_t len, void *ctx);
int session_stream_read(void *buf, size_t len, size_t *got, void *ctx);

#endif
