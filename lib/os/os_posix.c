/*
 * The POSIX backend of the OS layer (lib/os/os.h): libc and pthreads, with
 * the behaviour lib/ has today (writer-preferring rwlocks, qsort, a library
 * that never prints), except that timed waits run on CLOCK_MONOTONIC so a
 * wall-clock step cannot stretch or cut a commit interval.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np, pthread_setname_np */
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "os/os.h"

void *thinp_os_alloc(size_t n)
{
	return n ? malloc(n) : NULL;
}

void *thinp_os_zalloc(size_t n)
{
	return n ? calloc(1, n) : NULL;
}

void *thinp_os_alloc_aligned(size_t n, size_t align)
{
	void *p;

	if (!n || posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n))
		return NULL;
	return p;
}

void *thinp_os_realloc(void *p, size_t old_n, size_t n)
{
	(void)old_n;
	return n ? realloc(p, n) : NULL;
}

void thinp_os_free(void *p)
{
	free(p);
}

int thinp_os_mutex_init(thinp_os_mutex *m)
{
	return -pthread_mutex_init(&m->m, NULL);
}

void thinp_os_mutex_destroy(thinp_os_mutex *m)
{
	pthread_mutex_destroy(&m->m);
}

int thinp_os_rwlock_init(thinp_os_rwlock *l)
{
	pthread_rwlockattr_t attr;
	int r;

	r = pthread_rwlockattr_init(&attr);
	if (r)
		return -r;
	/* glibc's default lets a stream of readers starve a writer forever. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	r = pthread_rwlock_init(&l->l, &attr);
	pthread_rwlockattr_destroy(&attr);
	return -r;
}

void thinp_os_rwlock_destroy(thinp_os_rwlock *l)
{
	pthread_rwlock_destroy(&l->l);
}

int thinp_os_cond_init(thinp_os_cond *c)
{
	pthread_condattr_t attr;
	int r;

	r = pthread_condattr_init(&attr);
	if (r)
		return -r;
	r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!r)
		r = pthread_cond_init(&c->c, &attr);
	pthread_condattr_destroy(&attr);
	return -r;
}

void thinp_os_cond_destroy(thinp_os_cond *c)
{
	pthread_cond_destroy(&c->c);
}

void thinp_os_cond_wait(thinp_os_cond *c, thinp_os_mutex *m)
{
	pthread_cond_wait(&c->c, &m->m);
}

int thinp_os_cond_timedwait(thinp_os_cond *c, thinp_os_mutex *m, uint32_t timeout_ms)
{
	uint64_t deadline = thinp_os_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000u),
		.tv_nsec = (long)(deadline % 1000000000u),
	};

	return -pthread_cond_timedwait(&c->c, &m->m, &ts);
}

void thinp_os_cond_signal(thinp_os_cond *c)
{
	pthread_cond_signal(&c->c);
}

void thinp_os_cond_broadcast(thinp_os_cond *c)
{
	pthread_cond_broadcast(&c->c);
}

void thinp_os_once(thinp_os_once_flag *once, void (*fn)(void))
{
	pthread_once(&once->o, fn);
}

static void *thread_main(void *p)
{
	thinp_os_thread *t = p;

	/* Named here, before fn runs, so fn and its observers see the name. */
	pthread_setname_np(pthread_self(), t->name);
	t->fn(t->arg);
	return NULL;
}

int thinp_os_thread_start(thinp_os_thread *t, const char *name, void (*fn)(void *), void *arg)
{
	int r;

	t->fn = fn;
	t->arg = arg;
	/* Linux keeps 15 characters; a longer name would make setname fail. */
	snprintf(t->name, sizeof(t->name), "%s", name);
	r = pthread_create(&t->id, NULL, thread_main, t);
	if (r)
		return r == EAGAIN ? -EAGAIN : -ENOMEM;
	return 0;
}

void thinp_os_thread_join(thinp_os_thread *t)
{
	pthread_join(t->id, NULL);
}

uint64_t thinp_os_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void thinp_os_sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000u),
		.tv_nsec = (long)(ns % 1000000000u),
	};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int thinp_os_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	return vsnprintf(buf, size, fmt, ap);
}

void thinp_os_log_default(int level, const char *msg)
{
	/* The library never prints: without a callback a message is dropped. */
	(void)level;
	(void)msg;
}

const char *thinp_os_strerror(int err)
{
	/* strerror() may share one buffer between threads; strerrordesc_np
	 * (glibc 2.32) returns a static text, NULL for an unknown code. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	return strerrordesc_np(err);
#else
	(void)err;
	return NULL;
#endif
}

int thinp_os_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	/* getrandom returns at most 32 MiB per call, and fewer after a signal. */
	while (n) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

void thinp_os_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	qsort(base, n, size, cmp);
}
