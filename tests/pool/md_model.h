/*
 * A model of the pool's metadata (lib/pool/pool_md.h) for the pool tests:
 * plain arrays, the same semantics as dm-thin metadata where the pool can
 * see them (times and sharing, data reference counts per mapping volume,
 * blocks freed in a transaction not reused before the commit, commit and
 * rollback), plus knobs to make operations fail.
 *
 * A md_store plays the metadata device: it holds the last committed state
 * and outlives pools, so "power loss" is: destroy the pool's md without
 * committing, then open a new md from the store.
 */
#ifndef THINP_TESTS_POOL_MD_MODEL_H
#define THINP_TESTS_POOL_MD_MODEL_H

#include <stdint.h>
#include "pool/pool_md.h"

struct md_store;

struct md_store *md_store_new(uint32_t data_block_sectors, uint64_t data_blocks,
			      uint64_t meta_blocks);
void md_store_free(struct md_store *s);
/* Number of commits made into the store. */
uint64_t md_store_commits(const struct md_store *s);

/* Knobs, read by the next md opened from the store (and live ones). */
struct md_faults {
	/* Mapping inserts allowed before inserts fail with -ENOSPC (metadata
	 * full); UINT64_MAX = unlimited. Counts total mappings in the pool. */
	uint64_t max_mappings;
	/* The n-th commit from now fails with -EIO (0 = never). */
	unsigned fail_commit_at;
	/* The n-th data block allocation from now runs out of metadata (0 =
	 * never): -ENOSPC, and info says meta_out_of_space until abort. */
	unsigned meta_full_at_alloc;
	/* The next mapping insert fails with this error (0 = never), having
	 * damaged the transaction if insert_damages (what info reports). */
	int fail_insert_err;
	bool insert_damages;
	/* The next mapping lookup fails with this error (0 = never). */
	int fail_lookup_err;
};
struct md_faults *md_store_faults(struct md_store *s);

/* Open a pool_md over the store's committed state. */
int md_model_open(struct md_store *s, struct pool_md **out);

/* Check the model's own invariants (data refs equal the mappings, counts
 * exact): 0 or -EILSEQ. Runs on the live state of an md. */
int md_model_check(struct pool_md *md);

#endif
