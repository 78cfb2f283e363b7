/*
 * The Linux kernel backend's types for lib/os/os.h (include os.h, not this),
 * selected when __KERNEL__ is defined: lib/ built into frontends/kernel's
 * thinp.ko by Kbuild. What the POSIX backend takes from libc headers (fixed
 * width integers and their limits, bool, size_t, errno values, the string,
 * ctype and snprintf functions os.h lists, va_list, the PRI* format macros)
 * comes from the kernel's own small headers and declarations here.
 */
#ifndef THINP_OS_OS_LINUX_H
#define THINP_OS_OS_LINUX_H

#include <linux/ctype.h>
#include <linux/errno.h>
#include <linux/limits.h>
#include <linux/stdarg.h>
#include <linux/stddef.h>
#include <linux/types.h>

/*
 * The string functions and snprintf as the kernel exports them, declared
 * here rather than by <linux/string.h> and <linux/kernel.h>: those pull in
 * printk, spinlocks and byte-order helpers whose macros (le32_to_cpu,
 * round_up, in_range, min, ...) and functions (bitmap_set) share names with
 * lib/'s own. lib/ thus calls them without FORTIFY_SOURCE's checks. A file
 * that included those headers already (os_linux.c) has them from there.
 */
#ifndef _LINUX_STRING_H_
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *p, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *p, int c, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strcpy(char *dst, const char *src);
int strcasecmp(const char *a, const char *b);
#endif
#ifndef _LINUX_KERNEL_H
int snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
#endif

/* The kernel has no ENOTSUP (its ENOTSUPP, 524, is another code); in user
 * space on Linux it is EOPNOTSUPP, which common.h promises. */
#ifndef ENOTSUP
#define ENOTSUP EOPNOTSUPP
#endif

/* <stdint.h> limits and constants the kernel spells U32_MAX and so on. */
#ifndef UINT8_MAX
#define UINT8_MAX U8_MAX
#define UINT16_MAX U16_MAX
#define UINT32_MAX U32_MAX
#define UINT64_MAX U64_MAX
#define INT32_MAX S32_MAX
#define INT64_MAX S64_MAX
#define UINT32_C(c) c##u
#define UINT64_C(c) c##ull
#endif

/* <inttypes.h>: the kernel's u64 is unsigned long long on every arch, and its
 * vsnprintf knows the ll length modifier. */
#ifndef PRIu64
#define PRId64 "lld"
#define PRIu64 "llu"
#define PRIx64 "llx"
#define PRIX64 "llX"
#define PRId32 "d"
#define PRIu32 "u"
#define PRIx32 "x"
#endif

/*
 * The objects are storage for the kernel's own (struct mutex, rw_semaphore,
 * a wait queue, a kthread with a completion), which os_linux.c casts to and
 * checks at build time that they fit; lib/ files thus need none of the
 * scheduler headers, whose helpers (bitmap_set, ...) share names with lib/'s.
 */
#define THINP_OS_LINUX_WORDS(n) struct { unsigned long opaque[n]; }
typedef THINP_OS_LINUX_WORDS(16) thinp_os_mutex;
typedef THINP_OS_LINUX_WORDS(16) thinp_os_rwlock;
typedef THINP_OS_LINUX_WORDS(8) thinp_os_cond;
/* Done flag; the once calls are serialized by one lock in os_linux.c, so no
 * per-object lock needs a static initialiser. */
typedef struct { int done; } thinp_os_once_flag;
#define THINP_OS_ONCE_INIT { 0 }
typedef THINP_OS_LINUX_WORDS(12) thinp_os_thread;

#endif
