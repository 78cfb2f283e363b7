/*
 * The OS layer (planned, issue 14): everything the core needs from its host,
 * behind one small internal interface, so that the same lib/ sources build in
 * user space (os_posix.c) and in a Linux kernel module (a kernel backend, next
 * session). Not used by lib/ yet; docs/ARCHITECTURE.md, "OS layer (planned)",
 * says how lib/ will be converted.
 *
 * Conventions: fallible functions return 0 or a negative errno; lock, cond,
 * once and thread objects are embedded by value in the caller's structs (their
 * types come from the backend header, so no allocation can fail on init);
 * nothing here prints. Every function may be called from any thread unless it
 * says otherwise; an object must be initialised before, and not used after
 * its destroy.
 *
 * Backends: THINP_OS_FREESTANDING (the build check: types from the compiler
 * alone, -ffreestanding -nostdinc, compiled but never linked), __KERNEL__
 * (Linux: os_linux.c, built into frontends/kernel's thinp.ko), else POSIX.
 */
#ifndef THINP_OS_OS_H
#define THINP_OS_OS_H

#if defined(THINP_OS_FREESTANDING)
#include "os/os_freestanding.h"
#elif defined(__KERNEL__)
#include "os/os_linux.h"
#else
#include "os/os_posix.h"
#endif

/* ---- memory ---------------------------------------------------------- */

/* n bytes, uninitialised (NULL on failure or n == 0). May sleep in the
 * kernel; never called with a spinlock held. Free with thinp_os_free. */
void *thinp_os_alloc(size_t n);
/* n zeroed bytes, as thinp_os_alloc. */
void *thinp_os_zalloc(size_t n);
/* n bytes whose address is a multiple of align (a power of two, at most
 * 4096: I/O buffers); NULL on failure. Free with thinp_os_free. */
void *thinp_os_alloc_aligned(size_t n, size_t align);
/* Grow or shrink p (from thinp_os_alloc/zalloc, or NULL) from old_n to n
 * bytes, keeping min(old_n, n) bytes. NULL on failure, p then still valid.
 * old_n is needed by hosts without realloc (kvrealloc). */
void *thinp_os_realloc(void *p, size_t old_n, size_t n);
/* Free what any allocator above returned; NULL is ignored. */
void thinp_os_free(void *p);

/* ---- mutex ------------------------------------------------------------ */

int thinp_os_mutex_init(thinp_os_mutex *m);
void thinp_os_mutex_destroy(thinp_os_mutex *m);
void thinp_os_mutex_lock(thinp_os_mutex *m);
void thinp_os_mutex_unlock(thinp_os_mutex *m);

/* ---- rwlock: writers preferred (a waiting writer blocks new readers, as
 * the kernel's rw_semaphore does), not recursive -------------------------- */

int thinp_os_rwlock_init(thinp_os_rwlock *l);
void thinp_os_rwlock_destroy(thinp_os_rwlock *l);
void thinp_os_rwlock_read_lock(thinp_os_rwlock *l);
void thinp_os_rwlock_read_unlock(thinp_os_rwlock *l);
void thinp_os_rwlock_write_lock(thinp_os_rwlock *l);
void thinp_os_rwlock_write_unlock(thinp_os_rwlock *l);

/* ---- condition variable (waits on the monotonic clock) ------------------ */

int thinp_os_cond_init(thinp_os_cond *c);
void thinp_os_cond_destroy(thinp_os_cond *c);
/* Atomically release m (held by the caller) and wait; m is held again on
 * return. Wake-ups may be spurious: wait in a loop on the predicate. */
void thinp_os_cond_wait(thinp_os_cond *c, thinp_os_mutex *m);
/* As thinp_os_cond_wait, at most timeout_ms; -ETIMEDOUT when it ran out. */
int thinp_os_cond_timedwait(thinp_os_cond *c, thinp_os_mutex *m, uint32_t timeout_ms);
void thinp_os_cond_signal(thinp_os_cond *c);
void thinp_os_cond_broadcast(thinp_os_cond *c);

/* ---- once ------------------------------------------------------------- */

/* Run fn exactly once per once object (THINP_OS_ONCE_INIT), however many
 * threads call this; every caller returns after fn has finished. */
void thinp_os_once(thinp_os_once_flag *once, void (*fn)(void));

/* ---- threads ---------------------------------------------------------- */

/*
 * Start fn(arg) in a new thread called name (at most 15 characters shown by
 * the host). *t must stay valid until thinp_os_thread_join. Returns 0,
 * -EAGAIN or -ENOMEM. (A host that cannot start threads will instead drive
 * the pool's commit tick itself; see docs/ARCHITECTURE.md.)
 */
int thinp_os_thread_start(thinp_os_thread *t, const char *name, void (*fn)(void *), void *arg);
/* Wait for the thread started in *t to return. Once per started thread. */
void thinp_os_thread_join(thinp_os_thread *t);

/* ---- time ------------------------------------------------------------- */

/* Nanoseconds on a clock that never goes back (since an arbitrary start). */
uint64_t thinp_os_monotonic_ns(void);

/* ---- logging ------------------------------------------------------------ */

/* vsnprintf semantics: at most size bytes including the NUL; returns the
 * length the whole message would have. */
int thinp_os_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
/* Where a message goes when the caller set no log callback: nowhere in user
 * space (the library never prints), printk in the kernel. level is a
 * THINP_LOG_* value. */
void thinp_os_log_default(int level, const char *msg);

/* ---- sorting ------------------------------------------------------------ */

/* Sort n elements of size bytes at base by cmp (not stable; no allocation,
 * bounded stack: the kernel's sort() is a heapsort). */
void thinp_os_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* ---- crc32c acceleration hook -------------------------------------------- */

/* A raw CRC-32C (Castagnoli, reflected, no final inversion: seed in, register
 * out) the host computes faster than the portable table, or NULL to use the
 * table (lib/block/crc32c.c). */
typedef uint32_t (*thinp_os_crc32c_fn)(uint32_t seed, const void *data, size_t len);
thinp_os_crc32c_fn thinp_os_crc32c_accel(void);

#endif
