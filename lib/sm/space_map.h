/*
 * The abstract space map: reference counts of blocks, as a vtable so that the
 * transaction manager can use the metadata space map without depending on its
 * implementation (the metadata space map itself sits above the btree, which
 * sits above the transaction manager). Implementations: lib/sm/disk.c (data
 * device), lib/sm/metadata.c (self-hosting metadata map), and a core (RAM)
 * map used while bootstrapping and in tests.
 *
 * Counts are 32-bit. Allocation (new_block) never hands out a block that is
 * in use in either the last committed state or the current transaction.
 */
#ifndef THINP_SM_SPACE_MAP_H
#define THINP_SM_SPACE_MAP_H

#include "os/os.h"

struct space_map;

struct sm_ops {
	void (*destroy)(struct space_map *sm);
	int (*extend)(struct space_map *sm, uint64_t extra_blocks);
	int (*get_nr_blocks)(struct space_map *sm, uint64_t *n);
	int (*get_nr_free)(struct space_map *sm, uint64_t *n);
	int (*get_count)(struct space_map *sm, uint64_t b, uint32_t *count);
	int (*count_is_more_than_one)(struct space_map *sm, uint64_t b, bool *result);
	int (*set_count)(struct space_map *sm, uint64_t b, uint32_t count);
	int (*commit)(struct space_map *sm);
	int (*inc)(struct space_map *sm, uint64_t b);
	int (*dec)(struct space_map *sm, uint64_t b);
	int (*new_block)(struct space_map *sm, uint64_t *b);
	/* Size of the on-disk root (the superblock's 32 bytes) and a copy of it. */
	int (*root_size)(struct space_map *sm, size_t *size);
	int (*copy_root)(struct space_map *sm, void *dest, size_t len);
};

struct space_map {
	const struct sm_ops *ops;
};

static inline void sm_destroy(struct space_map *sm)
{
	if (sm)
		sm->ops->destroy(sm);
}
static inline int sm_extend(struct space_map *sm, uint64_t extra)
{
	return sm->ops->extend(sm, extra);
}
static inline int sm_get_nr_blocks(struct space_map *sm, uint64_t *n)
{
	return sm->ops->get_nr_blocks(sm, n);
}
static inline int sm_get_nr_free(struct space_map *sm, uint64_t *n)
{
	return sm->ops->get_nr_free(sm, n);
}
static inline int sm_get_count(struct space_map *sm, uint64_t b, uint32_t *count)
{
	return sm->ops->get_count(sm, b, count);
}
static inline int sm_count_is_more_than_one(struct space_map *sm, uint64_t b, bool *r)
{
	return sm->ops->count_is_more_than_one(sm, b, r);
}
static inline int sm_set_count(struct space_map *sm, uint64_t b, uint32_t count)
{
	return sm->ops->set_count(sm, b, count);
}
static inline int sm_commit(struct space_map *sm)
{
	return sm->ops->commit(sm);
}
static inline int sm_inc(struct space_map *sm, uint64_t b)
{
	return sm->ops->inc(sm, b);
}
static inline int sm_dec(struct space_map *sm, uint64_t b)
{
	return sm->ops->dec(sm, b);
}
static inline int sm_new_block(struct space_map *sm, uint64_t *b)
{
	return sm->ops->new_block(sm, b);
}
static inline int sm_root_size(struct space_map *sm, size_t *size)
{
	return sm->ops->root_size(sm, size);
}
static inline int sm_copy_root(struct space_map *sm, void *dest, size_t len)
{
	return sm->ops->copy_root(sm, dest, len);
}

#endif
