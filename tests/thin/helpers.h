/* Helpers shared by the thin-metadata suites: images in memory, the full
 * check, and the thin-provisioning-tools oracle run on a file copy.
 *
 * The suites drive the public API (meta.h, with its lock and failure policy)
 * and, single-threaded, the pool's private interface (thin/pool_iface.h)
 * for what only the pool does (allocation, batched and range changes,
 * growth, the failure facts). */
#ifndef THINP_TESTS_THIN_HELPERS_H
#define THINP_TESTS_THIN_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/testutil.h"
#include <libthinp/io.h>
#include <libthinp/meta.h>
#include "thin/pool_iface.h"

/* A fresh memory device of `bytes` formatted with `nr_data` data blocks of
 * 128 sectors. Asserts success. */
void th_format(thinp_io **io, thinp_meta **meta, uint64_t bytes, uint64_t nr_data);
/* Close and reopen the handle on the same io (read-write). */
void th_reopen(thinp_io *io, thinp_meta **meta);
/* thinp_meta_check_io_v2 must find nothing, not even a warning (our own
 * images); findings are printed. */
void th_check_clean(thinp_io *io);
/* Number of errors the full check reports (0 = clean; warnings are not
 * counted); findings printed when verbose. */
unsigned th_check_count(thinp_io *io, bool verbose);

/* thinp_meta_insert_timed at the pool's current time (public API). */
int th_insert_now(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t data_block);
/* The pool's current time. */
uint32_t th_time(thinp_meta *meta);
/* One mapping removed through the private interface: -ENODATA if it was not
 * mapped. */
int th_remove(thinp_meta *meta, uint64_t dev, uint64_t vblock);
/* thin_lookup_next_locked with separate outputs (each may be NULL). */
int th_lookup_next(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t *vblock_out,
		   uint64_t *data_block, uint32_t *time);
/* NEEDS_CHECK cleared through thinp_meta_set_superblock_fields. */
int th_clear_needs_check(thinp_meta *meta);
/* thinp_meta_status.mode. */
int th_mode(thinp_meta *meta);

/* Path of a tool in /usr/sbin or on PATH, or NULL. */
const char *th_tool(const char *name);
/* Write the whole io to a file in the test's temp dir; returns its path
 * (static buffer, overwritten by the next call). */
const char *th_save(thinp_io *io, const char *name);
/* Load a file into a new memory io. */
void th_load(const char *path, thinp_io **io);
/* Run argv (argv[0] a full path); capture stdout+stderr into out (NUL
 * terminated, truncated to len-1). Returns the exit status, or -1. */
int th_run(char *const argv[], char *out, size_t len);
/* thin_check on a file copy of io: returns its exit status, or 77 if the
 * tool is missing. Prints its output when it fails. */
int th_thin_check(thinp_io *io);

#endif
