/*
 * A power switch over three memory devices (a pool's metadata, data and
 * catalog): each sits behind a fault device (include/libthinp/testing.h),
 * and one clock counts the writes, write-zeroes, discards, resizes and
 * flushes of all three, so that a cut hits them at one moment, as a power
 * cut hits a machine: every device resolves its unflushed writes by the
 * mode, and every later request fails with -EIO.
 */
#ifndef TEST_COMMON_POWER_H
#define TEST_COMMON_POWER_H

#include <stdint.h>
#include <libthinp/io.h>
#include <libthinp/testing.h>

struct power {
	uint64_t n, count;  /* cut at the n-th counted request */
	int mode;           /* THINP_IO_FAULT_CUT_* */
	uint64_t seed;
	int cut;
	thinp_io *lower[3]; /* the memory devices */
	thinp_io *fio[3];   /* the fault devices on them */
	thinp_io_fault *fault[3];
	thinp_io *io[3];    /* the clocked devices: use these */
};

/* Memory devices of these sizes (0: grows), no cut armed. */
void power_open(struct power *pw, uint64_t meta_bytes, uint64_t data_bytes,
		uint64_t catalog_bytes);
/* Cut at the n-th counted request from now, resolving by mode and seed. */
void power_arm(struct power *pw, uint64_t n, int mode, uint64_t seed);
/* Close the clocked and fault devices (close what uses them first) and
 * hand back the memory devices, which the caller then owns. */
void power_close(struct power *pw, thinp_io *lower[3]);

#endif
