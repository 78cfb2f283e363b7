/*
 * Helpers of the stream tests: a memory transport (a growable sink, a source
 * that hands out bytes in random small pieces), a decoder that keeps deep
 * copies of every record, the reference model (each block unmapped, zero or
 * data, with its bytes) and random run scripts played through a writer.
 */
#ifndef THINP_TESTS_STREAM_TEST_H
#define THINP_TESTS_STREAM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libthinp/stream.h>
#include "common/testutil.h"

struct sink {
	uint8_t *buf;
	size_t len, cap;
	long fail_after; /* writes that succeed before one fails with -EIO; < 0 never */
};
int sink_write(const void *buf, size_t len, void *ctx);
void sink_free(struct sink *s);

struct source {
	const uint8_t *buf;
	size_t len, at;
	struct test_rng *rng; /* NULL: every read gets all it asks for */
};
int source_read(void *buf, size_t len, size_t *got, void *ctx);

struct rec_copy {
	thinp_stream_record rec; /* rec.data points at data */
	uint8_t *data;
};

struct decoded {
	thinp_stream_header hdr;
	bool have_hdr;
	struct rec_copy *recs;
	size_t n;
	int err; /* 0: END reached */
	char msg[256];
};
/* Decode buf entirely (reads in random pieces if rng); keeps every record. */
void decode_all(const uint8_t *buf, size_t len, struct test_rng *rng, struct decoded *out);
void decoded_free(struct decoded *d);
/* Two delivered records are the same record. */
bool rec_equal(const thinp_stream_record *a, const thinp_stream_record *b,
	       uint32_t block_size);

enum { M_UNMAPPED, M_ZERO, M_DATA };
struct model {
	uint64_t nr_blocks;
	uint32_t bs;
	uint8_t *state; /* M_* per block */
	uint8_t *data;  /* nr_blocks * bs; zero unless M_DATA */
};
void model_init(struct model *m, uint64_t nr_blocks, uint32_t bs);
void model_free(struct model *m);
void model_run(struct model *m, uint32_t type, uint64_t first, uint64_t nr, const void *data);
/* Apply a DATA/UNMAP/ZERO record; others change nothing. */
void model_apply(struct model *m, const thinp_stream_record *rec);
void model_assert_equal(const struct model *a, const struct model *b);

/* A scripted send: runs (and explicit checkpoints, type CHECKPOINT with
 * `first` the block) in ascending order over a device whose block b holds
 * block_bytes(b, salt). */
struct op {
	uint32_t type;
	uint64_t first, nr;
};
struct script {
	thinp_stream_header hdr;
	uint64_t nr_blocks;
	uint32_t salt;
	struct op *ops;
	size_t n;
};
void block_bytes(uint8_t *buf, uint64_t block, uint32_t bs, uint32_t salt);
/* A random script over nr_blocks blocks of size bs. */
void script_random(struct script *s, struct test_rng *rng, uint64_t nr_blocks, uint32_t bs);
void script_free(struct script *s);
/* The model the script describes. */
void script_model(const struct script *s, struct model *m);
/* Play the script's runs at or past from_block (clipped to it) and its
 * checkpoints past it through a writer begun with hdr into sink; asserts
 * every call succeeds. A script's explicit checkpoints are never at block 0
 * nor where a run ends, so from_block = a CHECKPOINT record's next_block
 * replays exactly what followed that record. */
void script_play(const struct script *s, const thinp_stream_header *hdr, uint64_t from_block,
		 uint64_t checkpoint_bytes, struct sink *sink);

#endif
