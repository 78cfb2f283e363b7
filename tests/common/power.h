/*
 * One power supply over several devices, for crash tests of work that
 * spans them (a pool's metadata and data, a catalog, an external origin):
 * each device sits behind a fault device (<libthinp/testing.h>) behind a
 * clock, and the n-th write, write-zeroes, discard, flush or resize on any
 * of them cuts the power of all at once, each fault device resolving its
 * unflushed writes by the mode. Every later request on any of them fails
 * with -EIO; the lower devices then hold what survived.
 */
#ifndef THINP_TESTS_POWER_H
#define THINP_TESTS_POWER_H

#include <stdbool.h>
#include <stdint.h>
#include <libthinp/io.h>

#define POWER_MAX_DEVICES 8

struct power;

/* A supply whose cuts resolve by @mode (THINP_IO_FAULT_CUT_*), with @seed
 * for the random modes. Nothing armed. */
struct power *power_new(int mode, uint64_t seed);
/* Put @lower (borrowed; it must outlive the supply) on the supply: the
 * handle returned is owned by the supply, closed by power_free(). */
thinp_io *power_add(struct power *pw, thinp_io *lower);
/* Cut the power at the @n-th (>= 1) request that changes a device, counted
 * from now on all of them. */
void power_arm(struct power *pw, uint64_t n);
bool power_is_cut(const struct power *pw);
/* Cut the power now, if it is not cut yet (a power-off at the end of a run). */
void power_cut_now(struct power *pw);
/* Close every handle of the supply (close what uses them first). */
void power_free(struct power *pw);

#endif
