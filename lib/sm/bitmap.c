/*
 * Two-bit entries of space-map bitmaps. The layout is word-oriented (64-bit
 * little-endian words of 32 entries), so the search for a free entry tests a
 * whole word at a time: an entry is free iff both of its bits are 0, and
 * folding each pair onto its even (HIGH) position with (w | w >> 1) & 0x55..
 * leaves one bit per used entry.
 */
#include "os/os.h"

#include "sm/bitmap.h"
#include "util/endian.h"

#define BITMAP_HEADER 16u
#define PAIR_MASK 0x5555555555555555ull /* the even bit of every pair */

static uint64_t load_word(const void *block, uint32_t w)
{
	return load_le64((const uint8_t *)block + BITMAP_HEADER + 8u * w);
}

static void store_word(void *block, uint32_t w, uint64_t v)
{
	store_le64((uint8_t *)block + BITMAP_HEADER + 8u * w, v);
}

unsigned bitmap_get(const void *block, uint32_t e)
{
	uint64_t w = load_word(block, e / 32);
	unsigned p = 2 * (e % 32);

	return (unsigned)(((w >> p) & 1) << 1 | ((w >> (p + 1)) & 1));
}

void bitmap_set(void *block, uint32_t e, unsigned v)
{
	uint64_t w = load_word(block, e / 32);
	unsigned p = 2 * (e % 32);

	w &= ~(3ull << p);
	w |= (uint64_t)((v >> 1) & 1) << p;
	w |= (uint64_t)(v & 1) << (p + 1);
	store_word(block, e / 32, w);
}

/* One bit (at the pair's even position) per used entry of word w. */
static uint64_t used_pairs(uint64_t w)
{
	return (w | (w >> 1)) & PAIR_MASK;
}

/* Mask of the pair positions of entries [lo, hi) within one word, lo < hi <= 32. */
static uint64_t pair_range(unsigned lo, unsigned hi)
{
	uint64_t upto = hi == 32 ? ~0ull : (1ull << (2 * hi)) - 1;
	uint64_t below = (1ull << (2 * lo)) - 1;

	return upto & ~below & PAIR_MASK;
}

int bitmap_find_free(const void *block, uint32_t begin, uint32_t end, uint32_t *e)
{
	uint32_t w;

	if (end > SM_ENTRIES_PER_BITMAP)
		end = SM_ENTRIES_PER_BITMAP;
	for (w = begin / 32; begin < end && w * 32 < end; w++) {
		unsigned lo = w * 32 < begin ? begin - w * 32 : 0;
		unsigned hi = end - w * 32 >= 32 ? 32 : end - w * 32;
		uint64_t free_pairs = ~used_pairs(load_word(block, w)) & pair_range(lo, hi);

		if (free_pairs) {
			*e = w * 32 + (uint32_t)__builtin_ctzll(free_pairs) / 2;
			return 0;
		}
	}
	return -ENOSPC;
}

uint32_t bitmap_count_used(const void *block, uint32_t end)
{
	uint32_t w, n = 0;

	if (end > SM_ENTRIES_PER_BITMAP)
		end = SM_ENTRIES_PER_BITMAP;
	for (w = 0; w * 32 < end; w++) {
		unsigned hi = end - w * 32 >= 32 ? 32 : end - w * 32;

		n += (uint32_t)__builtin_popcountll(used_pairs(load_word(block, w)) &
						    pair_range(0, hi));
	}
	return n;
}
