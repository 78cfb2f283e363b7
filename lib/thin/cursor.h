/*
 * A resumable, batched cursor over thin devices' mappings: one device's
 * mappings as runs, or two devices side by side (the delta), each device
 * taken from the live metadata, the held metadata snapshot or a named
 * snapshot block of one thinp_meta handle.
 *
 * Runs. Consecutive virtual blocks form one run while their kind is the same
 * and the data block on each side that has one follows the previous one
 * (THIN_CURSOR_TIME: and the mapping times are equal); so a run never claims
 * that two blocks are alike or contiguous when they are not. Two devices are
 * compared by data block only (time ignored), as thin_delta does.
 *
 * Cost. Without THIN_CURSOR_SAME, ranges where the two devices share a
 * metadata node are skipped unread (btree/diff.h): O(changed nodes) reads.
 * With it, shared ranges are read to report their mappings: O(mapped).
 *
 * Batches and consistency. Each call to thin_cursor_next takes the handle's
 * lock shared once and sees one consistent state of the metadata. Between
 * calls the lock is released, and:
 *   - the held metadata snapshot (or a named snapshot block) does not change
 *     while it is held; if it was released or replaced between batches the
 *     next batch fails with -ESTALE;
 *   - a live device that is not written between batches does not change
 *     (nothing but a write to a device's own mappings changes its subtree);
 *     a live device that is written may change between batches; the cursor
 *     fails the next batch with -ESTALE when it sees that the device's
 *     subtree root moved (every first change after a commit moves it), or
 *     that the device was deleted. A change made in the same open transaction
 *     as an earlier one can go unseen: walk the held snapshot, or a device
 *     nobody writes (a thin snapshot taken for backup), for an exact result.
 * A run is delivered only when it is complete, so batch boundaries never split
 * a run; thin_cursor_position is where a new cursor resumes the walk.
 *
 * Thread safety: one cursor is used by one thread at a time; cursors on one
 * handle may run in parallel with each other and with the handle's users.
 */
#ifndef THINP_THIN_CURSOR_H
#define THINP_THIN_CURSOR_H

#include "os/os.h"

#include <libthinp/meta.h>

enum thin_run_kind {
	THIN_RUN_LEFT_ONLY = 1,  /* mapped on the left only (one-device cursor: every run) */
	THIN_RUN_RIGHT_ONLY = 2,
	THIN_RUN_DIFFERENT = 3,  /* mapped on both sides, to different data blocks */
	THIN_RUN_SAME = 4,       /* mapped on both sides to the same data blocks */
	THIN_RUN_SHARED = 5,     /* both sides share the metadata node: identical, unread
				  * (no data blocks; virtual range, not every block mapped) */
};

struct thin_run {
	uint64_t begin;
	uint64_t length;
	uint64_t left_data;   /* first data block on the left (LEFT_ONLY, DIFFERENT, SAME) */
	uint64_t right_data;  /* on the right (RIGHT_ONLY, DIFFERENT, SAME) */
	uint32_t left_time;   /* mapping times of the first block */
	uint32_t right_time;
	enum thin_run_kind kind;
};

/* Which device, from which metadata (THINP_META_LIVE, THINP_META_HELD_ROOT
 * or a snapshot superblock's block). */
struct thin_cursor_dev {
	uint64_t source;
	uint64_t dev;
};

#define THIN_CURSOR_SAME (1u << 0)   /* report SAME runs (reads shared nodes) */
#define THIN_CURSOR_SHARED (1u << 1) /* report SHARED ranges (without SAME) */
#define THIN_CURSOR_TIME (1u << 2)   /* runs also need equal mapping times */

struct thin_cursor;

/*
 * Open a cursor over left's mappings, or (right != NULL) over the delta
 * between left and right, for virtual blocks [begin, end). Checks that both
 * devices exist: -ENODATA (with the handle's message naming the device and
 * side) if not; -ENODATA too when a side asks for the held snapshot and none
 * is held; -EINVAL for bad flags or begin > end; -ENOMEM.
 */
int thin_cursor_open(struct thin_cursor **out, thinp_meta *meta,
		     const struct thin_cursor_dev *left, const struct thin_cursor_dev *right,
		     uint64_t begin, uint64_t end, unsigned flags);
/*
 * Fill runs[0..max-1] with the next complete runs in virtual order; *nr = 0
 * means the walk is over. -ESTALE (see above), -EILSEQ/-EIO for damaged
 * metadata; after an error the cursor only closes.
 */
int thin_cursor_next(struct thin_cursor *c, struct thin_run *runs, size_t max, size_t *nr);
/* Every run before this virtual block has been delivered. */
uint64_t thin_cursor_position(const struct thin_cursor *c);
void thin_cursor_close(struct thin_cursor *c);

#endif
