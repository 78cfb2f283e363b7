/*
 * Resume tokens: "thinp1-" and the lowercase hex of 80 bytes, little-endian:
 * stream id, target guid, base guid (16 each), next block, records, bytes
 * (8 each), digest, and the CRC-32C of the 76 bytes before it (4 each).
 * Hex rather than base64 so the token survives any shell, file name or URL
 * unquoted; lowercase only, so each position has one spelling and a changed
 * character is always a changed byte, which the CRC catches.
 */
#include "os/os.h"

#include "stream/format.h"

#define TOKEN_PREFIX "thinp1-"
#define TOKEN_PREFIX_LEN 7
#define TOKEN_BYTES 80

_Static_assert(TOKEN_PREFIX_LEN + 2 * TOKEN_BYTES + 1 == THINP_STREAM_TOKEN_SIZE,
	       "token size");

struct token_wire {
	uint8_t stream_id[16];
	uint8_t target_guid[16];
	uint8_t base_guid[16];
	le64 next_block;
	le64 records;
	le64 bytes;
	le32 digest;
	le32 crc;
} THINP_PACKED;
_Static_assert(sizeof(struct token_wire) == TOKEN_BYTES, "token layout");

static const char hex[] = "0123456789abcdef";

int thinp_stream_token_format(char *buf, size_t size, const thinp_stream_header *hdr,
			      const thinp_stream_position *pos)
{
	struct token_wire t;
	const uint8_t *p = (const uint8_t *)&t;
	char *o;

	if (!buf || !hdr || !pos || size < THINP_STREAM_TOKEN_SIZE || pos->reserved)
		return -EINVAL;
	memcpy(t.stream_id, hdr->stream_id, 16);
	memcpy(t.target_guid, hdr->target_guid, 16);
	memcpy(t.base_guid, hdr->base_guid, 16);
	t.next_block = cpu_to_le64(pos->next_block);
	t.records = cpu_to_le64(pos->records);
	t.bytes = cpu_to_le64(pos->bytes);
	t.digest = cpu_to_le32(pos->digest);
	t.crc = cpu_to_le32(stream_crc(&t, offsetof(struct token_wire, crc)));
	memcpy(buf, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	o = buf + TOKEN_PREFIX_LEN;
	for (size_t i = 0; i < TOKEN_BYTES; i++) {
		*o++ = hex[p[i] >> 4];
		*o++ = hex[p[i] & 15];
	}
	*o = '\0';
	return 0;
}

static int hex_value(char c)
{
	const char *at = c ? strchr(hex, c) : NULL;

	return at ? (int)(at - hex) : -1;
}

int thinp_stream_token_parse(thinp_stream_header *hdr, const char *token)
{
	struct token_wire t;
	uint8_t *p = (uint8_t *)&t;

	if (!hdr || !token || hdr->version != THINP_STREAM_HEADER_VERSION ||
	    hdr->struct_size < sizeof(*hdr))
		return -EINVAL;
	if (strncmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) ||
	    strlen(token) != THINP_STREAM_TOKEN_SIZE - 1)
		return -EINVAL;
	token += TOKEN_PREFIX_LEN;
	for (size_t i = 0; i < TOKEN_BYTES; i++) {
		int hi = hex_value(token[2 * i]), lo = hex_value(token[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	if (stream_crc(&t, offsetof(struct token_wire, crc)) != le32_to_cpu(t.crc))
		return -EINVAL;
	memcpy(hdr->stream_id, t.stream_id, 16);
	memcpy(hdr->target_guid, t.target_guid, 16);
	memcpy(hdr->base_guid, t.base_guid, 16);
	hdr->resume = (thinp_stream_position){
		.next_block = le64_to_cpu(t.next_block),
		.records = le64_to_cpu(t.records),
		.bytes = le64_to_cpu(t.bytes),
		.digest = le32_to_cpu(t.digest),
	};
	hdr->incompat |= THINP_STREAM_INCOMPAT_RESUMING;
	return 0;
}
