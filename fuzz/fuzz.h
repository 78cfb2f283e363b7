/*
 * The one entry point of a fuzz harness, and its assertion.
 *
 * A harness fuzz/<target>.c defines fuzz_one(): take the bytes, hand them to
 * one entry point of the library, check what must hold, clean up. Return 0 for
 * an input worth keeping, -1 for one the harness rejects as meaningless (too
 * short...). A broken invariant is a crash: FUZZ_CHECK aborts, so AFL++ records
 * the input and the corpus replay under `make check` fails. Harnesses may use
 * the library's internals (they link libthinp_core).
 */
#ifndef THINP_FUZZ_FUZZ_H
#define THINP_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int fuzz_one(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,  \
				__LINE__, #cond);                               \
			abort();                                                \
		}                                                               \
	} while (0)

#endif
