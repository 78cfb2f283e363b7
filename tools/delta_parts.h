/*
 * A delta read by several iterators at once, one per consecutive part of the
 * virtual range, and handed on in order as if one iterator had read it.
 *
 * Where the changes are scattered (one block per leaf), a delta reads nearly
 * every leaf of both trees, and the time goes to reading and checking them:
 * parts on separate threads use the cores there are. The library's iterators
 * may run in parallel on one handle (delta.h); this is the tool's choice of
 * how many, not the library's: it starts no thread of its own.
 */
#ifndef THINP_TOOLS_DELTA_PARTS_H
#define THINP_TOOLS_DELTA_PARTS_H

#include <stdint.h>
#include <libthinp/thinp.h>
#include <libthinp/meta.h>

/* Called with each run in ascending virtual order; `position` says every run
 * below it has been handed on. Nonzero stops the delta and is returned. */
typedef int (*delta_parts_fn)(const thinp_delta_run *run, uint64_t position, void *ctx);

/* Where the parts read: meta, or for a part on a thread of its own a
 * handle open_more gives (called on the calling thread as the threads start;
 * NULL, or a NULL return: that part reads through meta too). A handle of
 * its own per thread keeps the threads out of each other's block cache and
 * its lock (two threads on one handle took about 1.3 times the CPU of one
 * for the same delta, the extra in that lock and its cache lines);
 * it must read the same metadata as meta (the same snapshot, or the same
 * live superblock). delta_parts_run closes the handles open_more gave. */
struct delta_parts_source {
	thinp_meta *meta;
	thinp_meta *(*open_more)(void *ctx);
	void *ctx;
};

/* How a delta is cut and read. */
struct delta_parts_plan {
	unsigned parts;           /* at most this many parts (1: one iterator) */
	uint64_t min_part_blocks; /* and none shorter than this */
	/* The parts after the first start on their threads once the delta has
	 * run this long (0: at once); until then, and for a delta done sooner,
	 * the calling thread reads them in turn. delta_parts.c says why. */
	unsigned start_after_ms;
};

/*
 * The delta of `left` and `right` with opts (NULL: the defaults), its range
 * [opts->begin, opts->end) cut at the devices' highest mapped block into
 * parts of equal length as plan says. The first part is read on the
 * calling thread, the others on threads of their own, or in turn on the
 * calling thread if it gets to them before they start.
 *
 * A run that crosses a seam between parts comes out whole: the pieces the
 * parts report are joined again. Runs of later parts wait in memory until
 * the parts before them are handed on, at most DELTA_PARTS_QUEUE_BYTES per
 * part (a part that far ahead waits). Returns 0, a negative errno from the
 * library (the first part's to fail, in virtual order), or fn's nonzero
 * value. *opened_out (may be NULL) is set once the first part's iterator is
 * open: an error before that is an open error (no such device...), after
 * it a walk error.
 */
int delta_parts_run(const struct delta_parts_source *src, uint64_t left, uint64_t right,
		    const thinp_delta_options *opts, const struct delta_parts_plan *plan,
		    delta_parts_fn fn, void *ctx, int *opened_out);

#define DELTA_PARTS_QUEUE_BYTES (16u << 20)

#endif
