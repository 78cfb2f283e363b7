/*
 * The OS layer (issue 14): everything the core needs from its host, behind
 * one small internal interface, so that the same lib/ sources build in user
 * space (os_posix.c) and in a Linux kernel module (a kernel backend).
 * Every lib/ file outside lib/os/ includes this and no libc, pthread or
 * system header; tests/os/freestanding.sh compiles them all against
 * os_freestanding.h alone to keep it so (docs/ARCHITECTURE.md, "OS layer").
 *
 * Conventions: fallible functions return 0 or a negative errno; lock, cond,
 * once and thread objects are embedded by value in the caller's structs (their
 * types come from the backend header, so no allocation can fail on init);
 * nothing here prints. Every function may be called from any thread unless it
 * says otherwise; an object must be initialised before, and not used after
 * its destroy.
 *
 * The backend header also provides what C and the kernel share, with the C
 * standard's meaning: the fixed-width integer types and their limits, the
 * PRI* format macros, size_t, bool, va_list, offsetof, NULL, INT_MAX,
 * INT_MIN, the E* errno values, memcpy, memmove, memset, memcmp, memchr,
 * strlen, strcmp, strncmp, strchr, strcpy, strcasecmp, snprintf, isdigit and
 * isspace. Nothing else of a C library may be used by lib/.
 *
 * A backend header may define the lock and unlock functions below itself, as
 * static inline (they are on every hot path), and then defines
 * THINP_OS_INLINE_LOCKS so that this header does not declare them.
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

/* n zeroed elements of size bytes each, as thinp_os_zalloc; NULL if n * size
 * overflows (calloc's check). */
static inline void *thinp_os_zalloc_array(size_t n, size_t size)
{
	size_t bytes;

	return __builtin_mul_overflow(n, size, &bytes) ? NULL : thinp_os_zalloc(bytes);
}

/* ---- mutex ------------------------------------------------------------ */

int thinp_os_mutex_init(thinp_os_mutex *m);
void thinp_os_mutex_destroy(thinp_os_mutex *m);
#ifndef THINP_OS_INLINE_LOCKS
void thinp_os_mutex_lock(thinp_os_mutex *m);
void thinp_os_mutex_unlock(thinp_os_mutex *m);
#endif

/* ---- rwlock: writers preferred (a waiting writer blocks new readers, as
 * the kernel's rw_semaphore does), not recursive -------------------------- */

int thinp_os_rwlock_init(thinp_os_rwlock *l);
void thinp_os_rwlock_destroy(thinp_os_rwlock *l);
#ifndef THINP_OS_INLINE_LOCKS
void thinp_os_rwlock_read_lock(thinp_os_rwlock *l);
void thinp_os_rwlock_read_unlock(thinp_os_rwlock *l);
void thinp_os_rwlock_write_lock(thinp_os_rwlock *l);
void thinp_os_rwlock_write_unlock(thinp_os_rwlock *l);
#endif

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

/* ---- atomics (compiler builtins: the same in every backend) ------------ */

/* A bool set from one thread and taken from another without a lock. */
typedef struct {
	bool v;
} thinp_os_atomic_bool;

static inline void thinp_os_atomic_bool_store(thinp_os_atomic_bool *a, bool v)
{
	__atomic_store_n(&a->v, v, __ATOMIC_SEQ_CST);
}

/* Store v and return the value it replaced, in one step. */
static inline bool thinp_os_atomic_bool_exchange(thinp_os_atomic_bool *a, bool v)
{
	return __atomic_exchange_n(&a->v, v, __ATOMIC_SEQ_CST);
}

/* A 64-bit value read on hot paths by many threads and seldom written:
 * a lock would make every reader write its cache line. */
typedef struct {
	uint64_t v;
} thinp_os_atomic_u64;

static inline uint64_t thinp_os_atomic_u64_load(const thinp_os_atomic_u64 *a)
{
	return __atomic_load_n(&a->v, __ATOMIC_ACQUIRE);
}

static inline void thinp_os_atomic_u64_store(thinp_os_atomic_u64 *a, uint64_t v)
{
	__atomic_store_n(&a->v, v, __ATOMIC_RELEASE);
}

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

/* Sleep at least ns nanoseconds (not woken early by signals). May sleep in
 * the kernel; never called with a lock held. */
void thinp_os_sleep_ns(uint64_t ns);

/* As thinp_os_cond_wait, until the clock of thinp_os_monotonic_ns reaches
 * deadline_ns; -ETIMEDOUT once it has (also without waiting, if it had). */
static inline int thinp_os_cond_wait_until(thinp_os_cond *c, thinp_os_mutex *m,
					   uint64_t deadline_ns)
{
	uint64_t now = thinp_os_monotonic_ns(), ms;

	if (now >= deadline_ns)
		return -ETIMEDOUT;
	/* Rounded up: a wait that ended just before the deadline would spin. */
	ms = (deadline_ns - now + 999999u) / 1000000u;
	return thinp_os_cond_timedwait(c, m, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
}

/* ---- logging ------------------------------------------------------------ */

/* vsnprintf semantics: at most size bytes including the NUL; returns the
 * length the whole message would have. */
int thinp_os_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
/* Where a message goes when the caller set no log callback: nowhere in user
 * space (the library never prints), printk in the kernel. level is a
 * THINP_LOG_* value. */
void thinp_os_log_default(int level, const char *msg);

/* The host's description of errno value err (positive), for the codes the
 * library has no meaning of its own for (thinp_strerror); NULL if the host
 * has none. The text is static: never freed, never overwritten. */
const char *thinp_os_strerror(int err);

/* ---- random bytes ------------------------------------------------------- */

/* Fill buf with n bytes from the host's cryptographic random source (ids that
 * must not collide across machines). 0 or a negative errno. May block until
 * the source is seeded, once, early after boot. */
int thinp_os_random_bytes(void *buf, size_t n);

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
