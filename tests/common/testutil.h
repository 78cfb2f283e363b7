/* Shared helpers for the cmocka suites. */
#ifndef THINP_TESTS_TESTUTIL_H
#define THINP_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/*
 * Seeded pseudo-random numbers (xorshift64*), so every random test is
 * reproducible: the seed comes from THINP_TEST_SEED if set, else from the
 * time, and is printed so a failure can be replayed.
 */
struct test_rng {
	uint64_t s;
};
uint64_t test_seed(const char *suite);
void test_rng_init(struct test_rng *r, uint64_t seed);
uint64_t test_rng_next(struct test_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t test_rng_below(struct test_rng *r, uint64_t n);

/* Scale factor for long runs: 1 normally, THINP_TEST_LONG (e.g. 10) for make check-long. */
unsigned test_scale(void);
/*
 * THINP_TEST_SHORT, else 1: how much shorter a short run is. scripts/
 * test-all.sh sets it for its ThreadSanitizer run, where single-threaded
 * random tests only cost time (TSan slows their large copies some 30-fold
 * and has nothing to find where one thread runs), and for make distcheck,
 * whose make check proves the tarball, not the code a second time.
 */
unsigned test_short(void);
/* A random test's operation count: n times test_scale(), divided by
 * test_short() (at least 1). */
unsigned test_ops(unsigned n);

/* A temporary directory for the test, removed by test_tmpdir_cleanup(). */
const char *test_tmpdir(void);
void test_tmpdir_cleanup(void);

/* Run /usr/sbin/thin_check -q on a metadata image file: its exit status,
 * or -1 (with a message) if it is not installed. */
int thin_check_path(const char *path);

#endif
