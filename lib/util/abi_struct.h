/*
 * Structs that cross the ABI, in and out.
 *
 * Every such struct begins with `uint32_t struct_size` (sizeof as compiled
 * by the caller), and a struct the caller fills in that has a version has it
 * right after, as `uint32_t version`. Fields are only ever appended, and a
 * field a caller's older, smaller struct lacks reads as 0, so 0 must mean
 * "the default" for every appended field.
 *
 * These two helpers are the only code that looks at struct_size: every
 * public function that takes or fills such a struct goes through them.
 */
#ifndef THINP_UTIL_ABI_STRUCT_H
#define THINP_UTIL_ABI_STRUCT_H

#include "os/os.h"

/*
 * thinp_abi_copy_in - take a caller's input struct: zero the library's own
 * copy `dst` (`size` bytes, its full current size), copy
 * min(src->struct_size, size) bytes of `src` into it and set dst's
 * struct_size to `size`. The library keeps its copy, never `src`.
 * @min_size: the smallest struct_size accepted (the first release's size,
 *            or the prefix that holds every mandatory field).
 * @version:  the version expected in the field after struct_size, or 0 for a
 *            struct without one.
 * Returns 0, or -EINVAL (src NULL, struct_size below min_size, another
 * version), dst then being unspecified.
 */
int thinp_abi_copy_in(void *dst, size_t size, const void *src, size_t min_size,
		      uint32_t version);

/*
 * thinp_abi_copy_out - fill a caller's output struct `dst` from the library's
 * complete one `src` (`size` bytes): copy min(dst->struct_size, size) bytes
 * and set dst's struct_size to that count, which tells the caller how much
 * the library filled.
 * @min_size: the smallest struct_size accepted.
 * Returns 0, or -EINVAL (dst NULL or struct_size below min_size), with dst
 * untouched. A caller that must refuse a bad struct before doing any work
 * calls it first with src NULL: it then only checks.
 */
int thinp_abi_copy_out(void *dst, const void *src, size_t size, size_t min_size);

/*
 * thinp_abi_copy_string - the copy-out of a string (an error message) into a
 * caller's buffer, snprintf-style: at most len - 1 bytes and a NUL when
 * len > 0; returns strlen(s). `lock`, if not NULL, is the mutex that guards
 * `s`: it is held across the copy, so the caller gets one whole message even
 * while other threads replace it.
 */
size_t thinp_abi_copy_string(char *buf, size_t len, const char *s, thinp_os_mutex *lock);

#endif
