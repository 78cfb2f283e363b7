/*
 * Node layout operations and the node validator.
 *
 * The validator is the only gate between the device and the btree code: the
 * block manager runs it on every node it reads, so the accessors in node.h
 * can trust nr_entries, max_entries and value_size to describe entries that
 * lie inside the block. Checked here (FORMAT.md 4.4 rules 1-5 and 7): the
 * checksum with the node salt, the recorded location, exactly one of
 * INTERNAL/LEAF, max_entries a multiple of 3 that fits the block with its
 * value size, nr_entries <= max_entries, keys strictly increasing. What
 * depends on the tree (expected value size, rule 6) is checked per level in
 * level.c; what spans nodes (rules 8-11) by btree_count_blocks.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/node.h"

uint32_t btree_max_entries(uint32_t value_size)
{
	uint32_t fit = (THINP_BLOCK_SIZE - BTREE_HEADER_SIZE) / (8u + value_size);

	return fit / 3u * 3u;
}

static void node_prepare_for_write(const struct validator *v, void *data, uint64_t blocknr)
{
	struct node_header *h = data;

	/* Not checked on read (the kernel and the tools ignore it either), but
	 * a shadow of a node read with non-zero padding is written clean. */
	h->padding = cpu_to_le32(0);
	h->blocknr = cpu_to_le64(blocknr);
	h->csum = cpu_to_le32(block_csum(data, BTREE_CSUM_SALT));
}

/* Header sanity: everything the accessors rely on. O(1). */
static const char *check_header(const struct node_header *h)
{
	uint32_t flags = le32_to_cpu(h->flags);
	uint32_t nr = le32_to_cpu(h->nr_entries);
	uint32_t max = le32_to_cpu(h->max_entries);
	uint32_t vsize = le32_to_cpu(h->value_size);

	if (flags != BTREE_NODE_INTERNAL && flags != BTREE_NODE_LEAF)
		return "flags must be exactly one of INTERNAL and LEAF";
	if (max % 3u)
		return "max_entries is not a multiple of 3";
	/* 64-bit arithmetic: a hostile value_size must not wrap the check. */
	if (BTREE_HEADER_SIZE + (8ull + vsize) * max > THINP_BLOCK_SIZE)
		return "entries do not fit in the block";
	if (nr > max)
		return "nr_entries exceeds max_entries";
	return NULL;
}

/* Rule 7 over keys k[0..nr), any CPU. Every read node comes here and
 * nearly all are good: one pass without an early exit keeps the loop free
 * of branches (each key loaded once). */
static bool keys_increase(const char *k, uint32_t nr)
{
	uint64_t prev = nr ? load_le64(k) : 0;
	bool bad = false;

	for (uint32_t i = 1; i < nr; i++) {
		uint64_t key = load_le64(k + 8u * i);

		bad |= prev >= key;
		prev = key;
	}
	return !bad;
}

/* Rule 7: keys strictly increasing. O(nr). */
static const char *check_keys(const void *n)
{
	const char *k = (const char *)n + BTREE_HEADER_SIZE;
	uint32_t nr = node_nr(n);

	return keys_increase(k, nr) ? NULL : "keys are not strictly increasing";
}

static int node_check(const struct validator *v, const void *data, uint64_t blocknr,
		      const char **why)
{
	const struct node_header *h = data;

	if (le32_to_cpu(h->csum) != block_csum(data, BTREE_CSUM_SALT)) {
		*why = "bad checksum";
		return -EILSEQ;
	}
	if (le64_to_cpu(h->blocknr) != blocknr) {
		*why = "node records a different location";
		return -ENOTBLK;
	}
	*why = check_header(h);
	if (!*why)
		*why = check_keys(data);
	return *why ? -EILSEQ : 0;
}

const struct validator btree_node_validator = {
	.name = "btree node",
	.prepare_for_write = node_prepare_for_write,
	.check = node_check,
};

void node_init(void *n, uint32_t flags, uint32_t value_size)
{
	struct node_header *h = n;

	memset(h, 0, sizeof(*h));
	h->flags = cpu_to_le32(flags);
	h->max_entries = cpu_to_le32(btree_max_entries(value_size));
	h->value_size = cpu_to_le32(value_size);
}

int node_lower(const void *n, uint64_t key)
{
	int lo = -1, hi = (int)node_nr(n); /* key[lo] <= key < key[hi] */

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (node_key(n, (uint32_t)mid) <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

uint32_t node_first_ge(const void *n, uint64_t key)
{
	int i = node_lower(n, key);

	if (i >= 0 && node_key(n, (uint32_t)i) == key)
		return (uint32_t)i;
	return (uint32_t)(i + 1);
}

int node_find(const void *n, uint64_t key)
{
	int i = node_lower(n, key);

	return (i >= 0 && node_key(n, (uint32_t)i) == key) ? i : -1;
}

static char *key_ptr(void *n, uint32_t i)
{
	return (char *)n + BTREE_HEADER_SIZE + 8u * i;
}

void node_insert_at(void *n, uint32_t i, uint64_t key, const void *value)
{
	uint32_t nr = node_nr(n), vs = node_vsize(n);

	memmove(key_ptr(n, i + 1), key_ptr(n, i), 8u * (nr - i));
	memmove(node_value(n, i + 1), node_value(n, i), (size_t)vs * (nr - i));
	node_set_key(n, i, key);
	memcpy(node_value(n, i), value, vs);
	node_set_nr(n, nr + 1);
}

void node_delete_at(void *n, uint32_t i, uint32_t count)
{
	uint32_t nr = node_nr(n), vs = node_vsize(n), rest = nr - i - count;

	memmove(key_ptr(n, i), key_ptr(n, i + count), 8u * rest);
	memmove(node_value(n, i), node_value(n, i + count), (size_t)vs * rest);
	node_set_nr(n, nr - count);
}

bool node_same_kind(const void *a, const void *b)
{
	return node_flags(a) == node_flags(b) && node_vsize(a) == node_vsize(b) &&
	       node_max(a) == node_max(b);
}

/* Move k entries across the boundary between neighbours l and r: the last
 * k of l to the front of r (k > 0), or the first -k of r to the end of l
 * (k < 0). The receiver must have room, the sender the entries. */
static void move_across(void *l, void *r, int64_t k)
{
	uint32_t nl = node_nr(l), nr = node_nr(r), vs = node_vsize(l);
	uint32_t u = (uint32_t)(k < 0 ? -k : k);

	if (k > 0) {
		memmove(key_ptr(r, u), key_ptr(r, 0), 8u * nr);
		memmove(node_value(r, u), node_value(r, 0), (size_t)vs * nr);
		memcpy(key_ptr(r, 0), key_ptr(l, nl - u), 8u * u);
		memcpy(node_value(r, 0), node_value(l, nl - u), (size_t)vs * u);
		node_set_nr(l, nl - u);
		node_set_nr(r, nr + u);
	} else if (k < 0) {
		memcpy(key_ptr(l, nl), key_ptr(r, 0), 8u * u);
		memcpy(node_value(l, nl), node_value(r, 0), (size_t)vs * u);
		node_set_nr(l, nl + u);
		node_delete_at(r, 0, u);
	}
}

/*
 * In place, entry moves between neighbours only (a gather buffer for three
 * nodes would be 24 KiB of stack, more than a kernel thread has). flow[j]
 * is what must cross the boundary after node j, rightwards when positive.
 * Order, so that no node ever holds more than max_entries (it never holds
 * more than at the start or at the end): first what the middle node gives
 * away, as far as it holds it; then what it receives; then the rest of
 * what it gives. The end nodes are only ever on one boundary.
 */
void node_redistribute(void **nodes, unsigned count, const uint32_t *targets)
{
	int64_t flow[2] = { 0, 0 }, left = 0, want = 0, k;
	unsigned j, pass;

	for (j = 0; j + 1 < count; j++) {
		left += node_nr(nodes[j]);
		want += targets[j];
		flow[j] = left - want;
	}
	for (pass = 0; pass < 3; pass++) {
		for (j = 0; j + 1 < count; j++) {
			bool gives = count == 3 && (j == 0 ? flow[j] < 0 : flow[j] > 0);

			if (gives == (pass == 1))
				continue;
			k = flow[j];
			if (pass == 0 && (k < 0 ? -k : k) > node_nr(nodes[1]))
				k = k < 0 ? -(int64_t)node_nr(nodes[1]) : node_nr(nodes[1]);
			move_across(nodes[j], nodes[j + 1], k);
			flow[j] -= k;
		}
	}
}
