/*
 * Types for lib/os/os.h in the freestanding build check (-ffreestanding
 * -nostdinc -DTHINP_OS_FREESTANDING): everything comes from the compiler's
 * predefined macros, so a lib/ file that compiles against this uses nothing
 * but the OS layer. Objects are opaque storage: the check never links.
 */
#ifndef THINP_OS_OS_FREESTANDING_H
#define THINP_OS_OS_FREESTANDING_H

typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
typedef __UINTPTR_TYPE__ uintptr_t;
typedef __INT8_TYPE__ int8_t;
typedef __INT16_TYPE__ int16_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
#define UINT8_MAX __UINT8_MAX__
#define UINT16_MAX __UINT16_MAX__
#define UINT32_MAX __UINT32_MAX__
#define UINT64_MAX __UINT64_MAX__
#define INT32_MAX __INT32_MAX__
#define INT64_MAX __INT64_MAX__
#define SIZE_MAX __SIZE_MAX__
#define INT_MAX __INT_MAX__
#define INT_MIN (-__INT_MAX__ - 1)
#define UINT_MAX (__INT_MAX__ * 2u + 1u)
#define UINT32_C(c) c##u
#define UINT64_C(c) c##ull
/* As glibc spells them: int64_t is long where long has 64 bits. */
#if __SIZEOF_LONG__ == 8
#define __PRI64 "l"
#else
#define __PRI64 "ll"
#endif
#define PRId64 __PRI64 "d"
#define PRIu64 __PRI64 "u"
#define PRIx64 __PRI64 "x"
#define PRIX64 __PRI64 "X"
#define PRId32 "d"
#define PRIu32 "u"
#define PRIx32 "x"
#define bool _Bool
#define true 1
#define false 0
#define NULL ((void *)0)
typedef __builtin_va_list va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_end(ap) __builtin_va_end(ap)
#define va_copy(d, s) __builtin_va_copy(d, s)
#define offsetof(t, m) __builtin_offsetof(t, m)

/* The errno values lib/ returns; the numbers are Linux's on every arch the
 * kernel backend targets (asm-generic/errno-base.h, errno.h). */
#define EPERM 1
#define ENOENT 2
#define EIO 5
#define E2BIG 7
#define EAGAIN 11
#define ENOMEM 12
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define EFBIG 27
#define ENOTBLK 15
#define ENOSPC 28
#define EROFS 30
#define ERANGE 34
#define ENOSYS 38
#define ENODATA 61
#define ETIMEDOUT 110
#define EILSEQ 84
#define EPROTO 71
#define ESTALE 116
#define ECANCELED 125
#define EOVERFLOW 75
#define EPIPE 32
#define ECONNRESET 104
#define ENOTCONN 107
#define EINPROGRESS 115
#define ENOTSUP 95
#define EOPNOTSUPP 95

/* Provided by libc and by the kernel alike (os.h lists them); compilers may
 * emit calls to the first four. */
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
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int isdigit(int c);
int isspace(int c);

typedef struct { unsigned long opaque[8]; } thinp_os_mutex;
typedef struct { unsigned long opaque[8]; } thinp_os_rwlock;
typedef struct { unsigned long opaque[8]; } thinp_os_cond;
typedef struct { int opaque; } thinp_os_once_flag;
#define THINP_OS_ONCE_INIT { 0 }
typedef struct { unsigned long opaque[4]; } thinp_os_thread;

#endif
