// SPDX-License-Identifier: GPL-2.0-only
/*
 * The Linux kernel backend of the OS layer (lib/os/os.h), built only into
 * frontends/kernel's thinp.ko (Kbuild compiles lib/ with __KERNEL__ set).
 *
 * Memory is kvmalloc'd with GFP_KERNEL; callers on the I/O path (the module's
 * request worker, the pool's commit thread) run under memalloc_noio_save(),
 * which turns those into GFP_NOIO, so reclaim never writes to a device the
 * pool itself is serving. Sleeping waits are TASK_IDLE: a commit thread idle
 * for minutes is not a hung task, and kthreads take no signals anyway.
 */
#include <linux/completion.h>
#include <linux/bitops.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/printk.h>
#include <linux/random.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/timekeeping.h>
#include <linux/wait.h>

#include <libthinp/common.h>

#include "os/os.h"

/* The kernel objects inside os_linux.h's storage. */
struct os_cond {
	wait_queue_head_t wq;
	/* Moves at every signal: a waiter notes it under the caller's mutex
	 * and sleeps until it changes, so a signal between its unlock and its
	 * sleep is not lost. Signal wakes every waiter (wake-ups may be
	 * spurious). */
	atomic_t gen;
};

/* join waits for `done`, completed when fn has returned: kthread_stop on a
 * thread that had not started yet would skip fn altogether. */
struct os_thread {
	struct task_struct *task;
	struct completion done;
	void (*fn)(void *);
	void *arg;
};

#define OS_OBJECT(type, p, storage)                                               \
	({                                                                         \
		BUILD_BUG_ON(sizeof(type) > sizeof(storage) ||                     \
			     __alignof__(type) > __alignof__(storage));            \
		(type *)(p);                                                       \
	})
#define MUTEX(m) OS_OBJECT(struct mutex, (m)->opaque, *(m))
#define RWSEM(l) OS_OBJECT(struct rw_semaphore, (l)->opaque, *(l))
#define COND(c) OS_OBJECT(struct os_cond, (c)->opaque, *(c))
#define THREAD(t) OS_OBJECT(struct os_thread, (t)->opaque, *(t))

void *thinp_os_alloc(size_t n)
{
	return n ? kvmalloc(n, GFP_KERNEL) : NULL;
}

void *thinp_os_zalloc(size_t n)
{
	return n ? kvzalloc(n, GFP_KERNEL) : NULL;
}

/*
 * kmalloc gives power-of-two sizes their natural alignment; anything larger
 * than its biggest cache comes from the page allocator or vmalloc, both page
 * aligned. align is at most 4096 = PAGE_SIZE on every arch the module targets.
 */
void *thinp_os_alloc_aligned(size_t n, size_t align)
{
	size_t sz = max(n, align);

	BUILD_BUG_ON(PAGE_SIZE < 4096);
	if (!n || align > PAGE_SIZE)
		return NULL;
	if (sz <= KMALLOC_MAX_CACHE_SIZE)
		sz = roundup_pow_of_two(sz);
	return kvmalloc(sz, GFP_KERNEL);
}

void *thinp_os_realloc(void *p, size_t old_n, size_t n)
{
	return n ? kvrealloc(p, old_n, n, GFP_KERNEL) : NULL;
}

void thinp_os_free(void *p)
{
	kvfree(p);
}

int thinp_os_mutex_init(thinp_os_mutex *m)
{
	mutex_init(MUTEX(m));
	return 0;
}

void thinp_os_mutex_destroy(thinp_os_mutex *m)
{
	mutex_destroy(MUTEX(m));
}

void thinp_os_mutex_lock(thinp_os_mutex *m)
{
	mutex_lock(MUTEX(m));
}

void thinp_os_mutex_unlock(thinp_os_mutex *m)
{
	mutex_unlock(MUTEX(m));
}

/* rw_semaphore already queues new readers behind a waiting writer. */
int thinp_os_rwlock_init(thinp_os_rwlock *l)
{
	init_rwsem(RWSEM(l));
	return 0;
}

void thinp_os_rwlock_destroy(thinp_os_rwlock *l)
{
	(void)l;
}

void thinp_os_rwlock_read_lock(thinp_os_rwlock *l)
{
	down_read(RWSEM(l));
}

void thinp_os_rwlock_read_unlock(thinp_os_rwlock *l)
{
	up_read(RWSEM(l));
}

void thinp_os_rwlock_write_lock(thinp_os_rwlock *l)
{
	down_write(RWSEM(l));
}

void thinp_os_rwlock_write_unlock(thinp_os_rwlock *l)
{
	up_write(RWSEM(l));
}

int thinp_os_cond_init(thinp_os_cond *c)
{
	init_waitqueue_head(&COND(c)->wq);
	atomic_set(&COND(c)->gen, 0);
	return 0;
}

void thinp_os_cond_destroy(thinp_os_cond *c)
{
	(void)c;
}

void thinp_os_cond_wait(thinp_os_cond *c, thinp_os_mutex *m)
{
	struct os_cond *oc = COND(c);
	int gen = atomic_read(&oc->gen);

	mutex_unlock(MUTEX(m));
	wait_event_idle(oc->wq, atomic_read(&oc->gen) != gen);
	mutex_lock(MUTEX(m));
}

/* Jiffies only go forward: the timeout is on a monotonic clock. */
int thinp_os_cond_timedwait(thinp_os_cond *c, thinp_os_mutex *m, uint32_t timeout_ms)
{
	struct os_cond *oc = COND(c);
	int gen = atomic_read(&oc->gen);
	long left;

	mutex_unlock(MUTEX(m));
	left = wait_event_idle_timeout(oc->wq, atomic_read(&oc->gen) != gen,
				       msecs_to_jiffies(timeout_ms));
	mutex_lock(MUTEX(m));
	return left ? 0 : -ETIMEDOUT;
}

void thinp_os_cond_signal(thinp_os_cond *c)
{
	thinp_os_cond_broadcast(c);
}

void thinp_os_cond_broadcast(thinp_os_cond *c)
{
	atomic_inc(&COND(c)->gen);
	wake_up_all(&COND(c)->wq);
}

static DEFINE_MUTEX(once_lock);

void thinp_os_once(thinp_os_once_flag *once, void (*fn)(void))
{
	if (smp_load_acquire(&once->done))
		return;
	mutex_lock(&once_lock);
	if (!once->done) {
		fn();
		smp_store_release(&once->done, 1);
	}
	mutex_unlock(&once_lock);
}

/* The thread never allocates with I/O reclaim: it may be the one committing
 * the pool that reclaim would write through. */
static int thread_main(void *p)
{
	struct os_thread *t = p;
	unsigned int noio = memalloc_noio_save();

	t->fn(t->arg);
	memalloc_noio_restore(noio);
	complete(&t->done);
	return 0;
}

int thinp_os_thread_start(thinp_os_thread *thread, const char *name, void (*fn)(void *), void *arg)
{
	struct os_thread *t = THREAD(thread);
	struct task_struct *task;

	t->fn = fn;
	t->arg = arg;
	init_completion(&t->done);
	/* The kernel keeps TASK_COMM_LEN - 1 = 15 characters of the name. */
	task = kthread_create(thread_main, t, "%s", name);
	if (IS_ERR(task))
		return PTR_ERR(task) == -ENOMEM ? -ENOMEM : -EAGAIN;
	/* Held so that kthread_stop in join still has the task after fn. */
	get_task_struct(task);
	t->task = task;
	wake_up_process(task);
	return 0;
}

void thinp_os_thread_join(thinp_os_thread *thread)
{
	struct os_thread *t = THREAD(thread);

	wait_for_completion(&t->done);
	/* fn has returned; this waits for the thread to leave thread_main. */
	kthread_stop(t->task);
	put_task_struct(t->task);
	t->task = NULL;
}

uint64_t thinp_os_monotonic_ns(void)
{
	return ktime_get_ns();
}

/* Uninterruptible, as the interface asks; fsleep picks a busy wait, an
 * hrtimer or msleep by length. */
void thinp_os_sleep_ns(uint64_t ns)
{
	fsleep(DIV_ROUND_UP_ULL(ns, NSEC_PER_USEC));
}

int thinp_os_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	return vsnprintf(buf, size, fmt, ap);
}

void thinp_os_log_default(int level, const char *msg)
{
	switch (level) {
	case THINP_LOG_ERROR:
		pr_err("thinp: %s\n", msg);
		break;
	case THINP_LOG_WARNING:
		pr_warn("thinp: %s\n", msg);
		break;
	case THINP_LOG_INFO:
		pr_info("thinp: %s\n", msg);
		break;
	default:
		pr_debug("thinp: %s\n", msg);
		break;
	}
}

/* The kernel keeps no table of errno descriptions: thinp_strerror() then
 * says "unknown error" for codes it has no meaning of its own for. */
const char *thinp_os_strerror(int err)
{
	(void)err;
	return NULL;
}

/* Waits (once, early after boot) for the pool to be seeded, as getrandom(2)
 * without flags does. */
int thinp_os_random_bytes(void *buf, size_t n)
{
	int r = wait_for_random_bytes();

	if (r)
		return r;
	get_random_bytes(buf, n);
	return 0;
}

void thinp_os_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	sort(base, n, size, cmp, NULL);
}

/*
 * gcc turns __builtin_popcountll (lib/sm/bitmap.c) into a call to libgcc's
 * __popcountdi2 when the target CPU baseline has no popcnt instruction, as
 * the kernel's has not; the kernel links no libgcc, so the host gives it.
 */
int __popcountdi2(u64 x);
int __popcountdi2(u64 x)
{
	return hweight64(x);
}

#if IS_ENABLED(CONFIG_LIBCRC32C)
/* libcrc32c's crc32c() is the raw register update (no inversions), as the
 * hook wants; it takes an unsigned int length. */
static uint32_t kernel_crc32c(uint32_t seed, const void *data, size_t len)
{
	const u8 *p = data;

	while (len > UINT_MAX) {
		seed = crc32c(seed, p, UINT_MAX & PAGE_MASK);
		p += UINT_MAX & PAGE_MASK;
		len -= UINT_MAX & PAGE_MASK;
	}
	return crc32c(seed, p, len);
}

thinp_os_crc32c_fn thinp_os_crc32c_accel(void)
{
	return kernel_crc32c;
}
#else
thinp_os_crc32c_fn thinp_os_crc32c_accel(void)
{
	return NULL;
}
#endif
