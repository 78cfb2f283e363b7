/*
 * The reference model for the btree tests: a dense map from (tree, device
 * slot, key slot) to a value. Key slot i stands for key base + i * stride,
 * so the keys exercised can be small, sparse or near 2^64 while the model
 * stays an array (trivially right). A model is copied at commit and copied
 * back on abort.
 */
#ifndef THINP_TESTS_BTREE_MODEL_H
#define THINP_TESTS_BTREE_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct model {
	unsigned ndev;
	uint32_t nkeys, vsize;
	uint8_t *dev_exists; /* ndev */
	uint8_t *present;    /* ndev * nkeys */
	uint8_t *vals;       /* ndev * nkeys * vsize */
	uint64_t count;
};

static inline void model_init(struct model *m, unsigned ndev, uint32_t nkeys, uint32_t vsize)
{
	m->ndev = ndev;
	m->nkeys = nkeys;
	m->vsize = vsize;
	m->dev_exists = calloc(ndev, 1);
	m->present = calloc((size_t)ndev * nkeys, 1);
	m->vals = calloc((size_t)ndev * nkeys, vsize);
	m->count = 0;
}

static inline void model_free(struct model *m)
{
	free(m->dev_exists);
	free(m->present);
	free(m->vals);
}

static inline void model_copy(struct model *dst, const struct model *src)
{
	size_t n = (size_t)src->ndev * src->nkeys;

	memcpy(dst->dev_exists, src->dev_exists, src->ndev);
	memcpy(dst->present, src->present, n);
	memcpy(dst->vals, src->vals, n * src->vsize);
	dst->count = src->count;
}

static inline size_t model_slot(const struct model *m, unsigned dev, uint32_t i)
{
	return (size_t)dev * m->nkeys + i;
}

static inline uint8_t *model_val(const struct model *m, unsigned dev, uint32_t i)
{
	return m->vals + model_slot(m, dev, i) * m->vsize;
}

static inline bool model_has(const struct model *m, unsigned dev, uint32_t i)
{
	return m->present[model_slot(m, dev, i)];
}

static inline void model_put(struct model *m, unsigned dev, uint32_t i, const uint8_t *v)
{
	size_t s = model_slot(m, dev, i);

	m->dev_exists[dev] = 1;
	m->count += !m->present[s];
	m->present[s] = 1;
	memcpy(model_val(m, dev, i), v, m->vsize);
}

static inline void model_del(struct model *m, unsigned dev, uint32_t i)
{
	size_t s = model_slot(m, dev, i);

	m->count -= m->present[s];
	m->present[s] = 0;
}

/* First present slot >= i, or nkeys. */
static inline uint32_t model_next(const struct model *m, unsigned dev, uint32_t i)
{
	while (i < m->nkeys && !model_has(m, dev, i))
		i++;
	return i;
}

#endif
