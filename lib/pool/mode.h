/*
 * The pool's one decision on a failed metadata operation (mode.c): which
 * mode the pool enters, whether the open transaction is rolled back, whether
 * NEEDS_CHECK is set, and which error the caller gets.
 *
 * lib/thin and the test model only report facts (the error, and through
 * pool_md_info whether the change damaged the transaction); this table alone
 * turns them into policy, and pool_md_failed_locked / pool_md_read_failed
 * (pool.c) apply it.
 */
#ifndef THINP_POOL_MODE_H
#define THINP_POOL_MODE_H

#include "os/os.h"

struct pool_mode_in {
	uint32_t mode;      /* the pool's THINP_POOL_MODE_* now */
	int err;            /* what the operation returned (negative errno) */
	bool change;        /* a change (md_lock exclusive), not a read */
	bool damaged;       /* the change damaged the open transaction */
};

struct pool_mode_out {
	uint32_t mode;      /* the mode to enter (never below the current one) */
	bool rollback;      /* abort to the last commit first (if that fails:
			     * FAIL and -EIO, whatever the table said) */
	bool needs_check;   /* set NEEDS_CHECK on the metadata device */
	bool meta_space_ro; /* READ_ONLY for want of metadata space: a metadata
			     * resize returns the pool to RW */
	int err;            /* the error for the caller */
	const char *why;    /* for the message, e.g. "pool is in fail mode";
			     * NULL when the error is only an answer */
};

void pool_mode_decide(const struct pool_mode_in *in, struct pool_mode_out *out);

#endif
