/*
 * A trivially simple reference model of the thin metadata (devices, details,
 * mappings, clock, transaction id, held snapshot) driven with the same random
 * operations as the real code. Shared by the model and crash suites.
 */
#ifndef THINP_TESTS_THIN_MODEL_H
#define THINP_TESTS_THIN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/testutil.h"
#include <libthinp/meta.h>

#define M_DEVS 8
#define M_VBLOCKS 1024
#define M_UNMAPPED UINT64_MAX

struct mdev {
	bool exists;
	uint64_t trans_id, mapped;
	uint32_t ctime, stime;
	uint64_t data[M_VBLOCKS];
	uint32_t time[M_VBLOCKS];
};

struct model {
	uint32_t time;
	uint64_t trans_id;
	bool held;
	struct mdev dev[M_DEVS];
};

/* The result of one random operation. */
struct mop {
	const char *name;
	int r;          /* what the library returned */
	int expected;   /* what the model predicts */
	bool commits;   /* the operation commits (a message, commit, reserve) */
	bool skipped;   /* nothing was done (e.g. no data space) */
};

/* When set, model_verify prints nothing (for trying several candidates). */
extern bool model_quiet;

struct model *model_new(void);
void model_copy(struct model *dst, const struct model *src);
/* Run one random operation on both. On success the model is updated; on an
 * unexpected result it is left as before (the caller decides). `abort_ok`
 * allows thinp_meta_abort (the caller must then reset the model to its
 * committed copy when mop.name is "abort"). */
struct mop model_op(struct model *m, thinp_meta *meta, struct test_rng *rng, bool abort_ok);
/* Compare everything the model knows with the handle (live state);
 * returns the number of differences (printed). */
unsigned model_verify(const struct model *m, thinp_meta *meta);
/* Compare the held metadata snapshot with a model of it. */
unsigned model_verify_held(const struct model *held, thinp_meta *meta);

#endif
