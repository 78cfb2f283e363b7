/*
 * libthinp testing tier: the fault-injecting backend.
 *
 * ABI tier: testing (version nodes LIBTHINP_TESTING_1.N). These functions
 * exist so that programs built on libthinp can test their own crash safety
 * the way libthinp tests itself; they are not part of the stable tier
 * (<libthinp/thinp.h> does not include this header) and may change between
 * minor releases, each change in a new LIBTHINP_TESTING_1.N node.
 */
#ifndef LIBTHINP_TESTING_H
#define LIBTHINP_TESTING_H

#include <stdint.h>
#include <stddef.h>
#include <libthinp/common.h>
#include <libthinp/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The fault-injecting backend: a wrapper over another handle (the "lower"
 * device) for testing every layer above io the way SQLite's test VFS does:
 * fail chosen requests, and simulate a power loss between flushes.
 *
 * Power loss model. Writes, write-zeroes and discards that reach the wrapper
 * are not passed down: they are kept, in issue order, in the wrapper's
 * overlay (reads through the wrapper see them), and are applied to the lower
 * device, in order, by the next flush, which then flushes the lower device.
 * A power cut resolves the unflushed requests by a mode (THINP_IO_FAULT_CUT_*)
 * and kills the wrapper: from then on every request on it (read, write,
 * flush, discard, write-zeroes, resize) fails with -EIO, so the layer above
 * sees its device die; only thinp_io_size() keeps answering. The test then "reboots" by opening a
 * fresh handle on the lower device (for a memory device: by using the lower
 * handle itself) and checks what survived.
 *
 * Handles and ownership. thinp_io_open_fault() makes two objects: the wrapper
 * handle (a thinp_io, closed with thinp_io_close(), possibly by a layer above
 * that took it over) and a control object (thinp_io_fault, freed with
 * thinp_io_fault_free()). Either may go first: the shared state lives until
 * both are gone, so a test may inspect counters or cut the power after the
 * pool that owned the wrapper has closed it. The lower handle is borrowed,
 * never closed by the wrapper: it must outlive both objects.
 *
 * A typical crash-test loop:
 *
 *     for (n = 1; ; n++) {
 *             lower = fresh device holding the initial image;
 *             thinp_io_open_fault(&io, &f, lower, 0);
 *             thinp_io_fault_arm_cut(f, n, THINP_IO_FAULT_CUT_TORN, seed + n);
 *             run the workload on io until it fails or completes;
 *             close whatever used io; thinp_io_close(io);
 *             fired = thinp_io_fault_cut_fired(f);
 *             thinp_io_fault_free(f);
 *             check the image on lower (reopened);
 *             if (!fired) break;      the workload finished before op n
 *     }
 *
 * Thread safety: the wrapper declares THINP_IO_CAP_THREADSAFE and guards its
 * state with one lock held across each request (so requests through one
 * wrapper are serialized); the control functions may be called from any
 * thread, concurrently with I/O.
 */
typedef struct thinp_io_fault thinp_io_fault;

/* Request kinds, for counters and for masks of (1u << kind) in fail rules. */
#define THINP_IO_KIND_READ 0
#define THINP_IO_KIND_WRITE 1
#define THINP_IO_KIND_FLUSH 2
#define THINP_IO_KIND_DISCARD 3
#define THINP_IO_KIND_WRITE_ZEROES 4
#define THINP_IO_KIND_COUNT 5
#define THINP_IO_KIND_BIT(kind) (1u << (kind))
#define THINP_IO_KIND_ALL ((1u << THINP_IO_KIND_COUNT) - 1)

/* Flags for thinp_io_fault_fail_nth(). */
#define THINP_IO_FAULT_PERSIST (1u << 0) /* fail every later match too */

/* How a power cut resolves the writes issued since the last flush. */
#define THINP_IO_FAULT_CUT_DROP 0   /* none of them lands */
#define THINP_IO_FAULT_CUT_KEEP 1   /* all of them land, in order */
#define THINP_IO_FAULT_CUT_RANDOM 2 /* each lands or not, independently */
/* As RANDOM, and one write spanning a sector boundary (a 512-byte boundary,
 * or the lower device's alignment if larger) is torn: only its sectors before
 * a randomly chosen boundary inside it land. */
#define THINP_IO_FAULT_CUT_TORN 3

/*
 * thinp_io_open_fault - wrap `lower` in a fault-injecting handle.
 * @out:   receives the wrapper handle, owned by the caller (thinp_io_close()).
 * @fault: receives the control object, owned by the caller
 *         (thinp_io_fault_free()); may be NULL if the caller needs no control.
 * @lower: the device below; borrowed, must outlive the wrapper and the
 *         control object. The wrapper mirrors its alignment, its size and its
 *         DISCARD/DISCARD_ZEROES capabilities, and always offers write-zeroes.
 * @flags: THINP_IO_RDONLY or 0.
 * No fault is armed at first: the wrapper then behaves like the lower device
 * whose writes become durable only at flush.
 * Errors: -EINVAL (NULL lower, unknown flags), -ENOMEM; on failure nothing is
 * returned and `lower` is untouched. Since 1.0.
 */
THINP_API int thinp_io_open_fault(thinp_io **out, thinp_io_fault **fault,
				  thinp_io *lower, uint32_t flags);

/* thinp_io_fault_free - release the control object. NULL is a no-op. Writes
 * still unflushed when both the wrapper and the control object are gone are
 * lost, as in THINP_IO_FAULT_CUT_DROP: a test that forgot to flush sees it.
 * Since 1.0. */
THINP_API void thinp_io_fault_free(thinp_io_fault *fault);

/*
 * thinp_io_fault_fail_nth - make the n-th request (n >= 1, counted from this
 * call) whose kind is in `kinds` fail with `err`, without effect.
 * @kinds: a mask of THINP_IO_KIND_BIT(THINP_IO_KIND_*); 0 means every kind.
 * @err:   the negative errno to return (e.g. -EIO).
 * @flags: THINP_IO_FAULT_PERSIST to fail every matching request after the
 *         n-th as well (a device that died), else only the n-th.
 * Several rules may be active at once; the first that matches decides.
 * Errors: -EINVAL (n == 0, err >= 0, unknown bits), -ENOMEM. Since 1.0.
 */
THINP_API int thinp_io_fault_fail_nth(thinp_io_fault *fault, uint32_t kinds,
				      uint64_t n, int err, uint32_t flags);

/*
 * thinp_io_fault_fail_range - make every request whose kind is in `kinds` and
 * whose byte range overlaps [off, off + len) fail with `err` (a bad sector).
 * Flushes have no range and never match. Active until
 * thinp_io_fault_clear(). Errors: -EINVAL (len == 0, err >= 0, unknown
 * bits), -ENOMEM. Since 1.0.
 */
THINP_API int thinp_io_fault_fail_range(thinp_io_fault *fault, uint32_t kinds,
					uint64_t off, uint64_t len, int err);

/* thinp_io_fault_clear - remove every fail rule. A cut power stays cut.
 * Since 1.0. */
THINP_API void thinp_io_fault_clear(thinp_io_fault *fault);

/*
 * thinp_io_fault_arm_cut - cut the power during the n-th (n >= 1, counted
 * from this call) write, write-zeroes, discard or flush that reaches the
 * wrapper (requests failed by a fail rule do not count). That request is
 * in flight when the power goes: a write, write-zeroes or discard joins the
 * unflushed set before it is resolved by `mode`, and the request returns
 * -EIO either way. `seed` drives the random modes (the same seed and the same
 * request sequence give the same outcome). Replaces an earlier armed cut.
 * Errors: -EINVAL (n == 0, unknown mode). Since 1.0.
 */
THINP_API int thinp_io_fault_arm_cut(thinp_io_fault *fault, uint64_t n, int mode,
				     uint64_t seed);

/*
 * thinp_io_fault_cut - cut the power now: resolve the unflushed writes by
 * `mode` (applying the surviving ones to the lower device) and fail every
 * later request with -EIO. Cutting twice is a no-op returning 0.
 * Errors: -EINVAL (unknown mode); an error from the lower device while
 * applying the survivors. Since 1.0.
 */
THINP_API int thinp_io_fault_cut(thinp_io_fault *fault, int mode, uint64_t seed);

/* thinp_io_fault_cut_fired - 1 if the power has been cut (armed or
 * immediate), else 0. Since 1.0. */
THINP_API int thinp_io_fault_cut_fired(const thinp_io_fault *fault);

/* thinp_io_fault_pending - how many writes, write-zeroes and discards are
 * waiting for a flush. Since 1.0. */
THINP_API uint64_t thinp_io_fault_pending(const thinp_io_fault *fault);

/*
 * thinp_io_fault_counters - requests of one kind that reached the wrapper
 * (those that then failed by a rule or after the cut included), and their
 * bytes (0 for flushes). @ops and @bytes may be NULL.
 * Errors: -EINVAL for an unknown kind. Since 1.0.
 */
THINP_API int thinp_io_fault_counters(const thinp_io_fault *fault, unsigned kind,
				      uint64_t *ops, uint64_t *bytes);

/* thinp_io_fault_reset_counters - zero every counter. Since 1.0. */
THINP_API void thinp_io_fault_reset_counters(thinp_io_fault *fault);

#ifdef __cplusplus
}
#endif
#endif
