/*
 * The Linux kernel backend's types for lib/os/os.h (include os.h, not this),
 * selected when __KERNEL__ is defined: lib/ built into frontends/kernel's
 * thinp.ko by Kbuild. What the POSIX backend takes from libc headers (fixed
 * width integers, bool, size_t, errno values, string functions, va_list,
 * the PRI* format macros) comes from the kernel's own headers here.
 */
#ifndef THINP_OS_OS_LINUX_H
#define THINP_OS_OS_LINUX_H

#include <linux/completion.h>
#include <linux/errno.h>
#include <linux/limits.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/stdarg.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/wait.h>

/* The kernel has no ENOTSUP (its ENOTSUPP, 524, is another code); in user
 * space on Linux it is EOPNOTSUPP, which common.h promises. */
#ifndef ENOTSUP
#define ENOTSUP EOPNOTSUPP
#endif

/* <stdint.h> limits the kernel spells U32_MAX and so on. */
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#ifndef INT64_MAX
#define INT64_MAX S64_MAX
#endif

/* <inttypes.h>: the kernel's u64 is unsigned long long on every arch, and its
 * vsnprintf knows the ll length modifier. */
#ifndef PRIu64
#define PRIu64 "llu"
#define PRId64 "lld"
#define PRIx64 "llx"
#define PRIu32 "u"
#define PRIx32 "x"
#endif

typedef struct { struct mutex m; } thinp_os_mutex;
typedef struct { struct rw_semaphore l; } thinp_os_rwlock;

/*
 * A condition variable: a wait queue and a generation counter. A waiter
 * notes the generation under the caller's mutex, drops the mutex and sleeps
 * until the generation moves, so a signal between the unlock and the sleep
 * is not lost. Signal wakes every waiter (allowed: wake-ups may be spurious).
 */
typedef struct {
	wait_queue_head_t wq;
	atomic_t gen;
} thinp_os_cond;

/* Done flag; the once calls are serialized by one lock in os_linux.c, so no
 * per-object lock needs a static initialiser. */
typedef struct { int done; } thinp_os_once_flag;
#define THINP_OS_ONCE_INIT { 0 }

/* A kthread; `done` completes when fn has returned, so join waits for fn
 * itself and not only for the kthread (kthread_stop on a thread that has not
 * run yet would skip fn). */
typedef struct {
	struct task_struct *task;
	struct completion done;
	void (*fn)(void *);
	void *arg;
} thinp_os_thread;

#endif
