/*
 * The POSIX backend of the OS layer (lib/os/os_posix.c) against what lib/
 * relies on: allocation contracts, mutual exclusion under real contention,
 * shared read locks, timed waits that time out and wake-ups that arrive,
 * once-only initialisation, thread start/join and names, a monotonic clock,
 * formatting and sorting.
 */
#define _GNU_SOURCE /* pthread_getname_np */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "os/os.h"

#define THREADS 4
#define ROUNDS 200000

static void test_alloc(void **state)
{
	unsigned char *p = thinp_os_zalloc(1000), *q;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < 1000; i++)
		assert_int_equal(p[i], 0);
	memset(p, 0xab, 1000);
	q = thinp_os_realloc(p, 1000, 100000);
	assert_non_null(q);
	for (i = 0; i < 1000; i++)
		assert_int_equal(q[i], 0xab);
	thinp_os_free(q);
	for (i = 0; i < 8; i++) {
		p = thinp_os_alloc_aligned(4096 + i, 4096);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 4096, 0);
		thinp_os_free(p);
	}
	assert_null(thinp_os_alloc(0));
	assert_null(thinp_os_zalloc(0));
	thinp_os_free(NULL);
}

struct counter {
	thinp_os_mutex m;
	thinp_os_rwlock l;
	volatile uint64_t n;
};

static void add_under_mutex(void *arg)
{
	struct counter *c = arg;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		thinp_os_mutex_lock(&c->m);
		c->n = c->n + 1; /* read-modify-write: loses counts without the lock */
		thinp_os_mutex_unlock(&c->m);
	}
}

static void add_under_write_lock(void *arg)
{
	struct counter *c = arg;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		thinp_os_rwlock_write_lock(&c->l);
		c->n = c->n + 1;
		thinp_os_rwlock_write_unlock(&c->l);
	}
}

static void run_threads(void (*fn)(void *), void *arg)
{
	thinp_os_thread t[THREADS];
	int i;

	for (i = 0; i < THREADS; i++)
		assert_int_equal(thinp_os_thread_start(&t[i], "thinp-test", fn, arg), 0);
	for (i = 0; i < THREADS; i++)
		thinp_os_thread_join(&t[i]);
}

static void test_mutex_excludes(void **state)
{
	struct counter c = { .n = 0 };

	assert_int_equal(thinp_os_mutex_init(&c.m), 0);
	run_threads(add_under_mutex, &c);
	assert_int_equal(c.n, (uint64_t)THREADS * ROUNDS);
	thinp_os_mutex_destroy(&c.m);
}

static void test_rwlock_write_excludes(void **state)
{
	struct counter c = { .n = 0 };

	assert_int_equal(thinp_os_rwlock_init(&c.l), 0);
	run_threads(add_under_write_lock, &c);
	assert_int_equal(c.n, (uint64_t)THREADS * ROUNDS);
	thinp_os_rwlock_destroy(&c.l);
}

/* Two readers inside at once: the second takes the read lock while the main
 * thread still holds it (a read lock that excluded would hang the test). */
struct shared_read {
	thinp_os_rwlock l;
	thinp_os_mutex m;
	thinp_os_cond c;
	int inside;
};

static void second_reader(void *arg)
{
	struct shared_read *s = arg;

	thinp_os_rwlock_read_lock(&s->l);
	thinp_os_mutex_lock(&s->m);
	s->inside = 1;
	thinp_os_cond_signal(&s->c);
	thinp_os_mutex_unlock(&s->m);
	thinp_os_rwlock_read_unlock(&s->l);
}

static void test_rwlock_readers_share(void **state)
{
	struct shared_read s = { .inside = 0 };
	thinp_os_thread t;
	int r = 0;

	assert_int_equal(thinp_os_rwlock_init(&s.l), 0);
	assert_int_equal(thinp_os_mutex_init(&s.m), 0);
	assert_int_equal(thinp_os_cond_init(&s.c), 0);
	thinp_os_rwlock_read_lock(&s.l);
	assert_int_equal(thinp_os_thread_start(&t, "reader", second_reader, &s), 0);
	thinp_os_mutex_lock(&s.m);
	while (!s.inside && r == 0)
		r = thinp_os_cond_timedwait(&s.c, &s.m, 10000);
	thinp_os_mutex_unlock(&s.m);
	assert_int_equal(r, 0);
	assert_int_equal(s.inside, 1);
	thinp_os_rwlock_read_unlock(&s.l);
	thinp_os_thread_join(&t);
	thinp_os_cond_destroy(&s.c);
	thinp_os_mutex_destroy(&s.m);
	thinp_os_rwlock_destroy(&s.l);
}

static void test_cond_timeout(void **state)
{
	thinp_os_mutex m;
	thinp_os_cond c;
	uint64_t t0;

	assert_int_equal(thinp_os_mutex_init(&m), 0);
	assert_int_equal(thinp_os_cond_init(&c), 0);
	thinp_os_mutex_lock(&m);
	t0 = thinp_os_monotonic_ns();
	/* Nobody signals: only a timeout (or a spurious wake-up) ends it. */
	while (thinp_os_cond_timedwait(&c, &m, 30) != -ETIMEDOUT)
		;
	assert_true(thinp_os_monotonic_ns() - t0 >= 30u * 1000000u);
	/* An absolute deadline: reached, not before; one passed: at once. */
	t0 = thinp_os_monotonic_ns();
	while (thinp_os_cond_wait_until(&c, &m, t0 + 20u * 1000000u) != -ETIMEDOUT)
		;
	assert_true(thinp_os_monotonic_ns() >= t0 + 20u * 1000000u);
	assert_int_equal(thinp_os_cond_wait_until(&c, &m, t0), -ETIMEDOUT);
	thinp_os_mutex_unlock(&m);
	t0 = thinp_os_monotonic_ns();
	thinp_os_sleep_ns(15u * 1000000u);
	assert_true(thinp_os_monotonic_ns() - t0 >= 15u * 1000000u);
	thinp_os_cond_destroy(&c);
	thinp_os_mutex_destroy(&m);
}

static int once_runs;
static thinp_os_once_flag once = THINP_OS_ONCE_INIT;

static void count_once(void)
{
	once_runs++;
}

static void call_once(void *arg)
{
	int i;

	for (i = 0; i < 1000; i++)
		thinp_os_once(&once, count_once);
	assert_int_equal(once_runs, 1);
}

static void test_once(void **state)
{
	run_threads(call_once, NULL);
	assert_int_equal(once_runs, 1);
}

static void read_own_name(void *arg)
{
	pthread_getname_np(pthread_self(), arg, 32);
}

static void test_thread_name(void **state)
{
	char name[32] = "";
	thinp_os_thread t;

	assert_int_equal(thinp_os_thread_start(&t, "thinp-commit-long-name", read_own_name, name), 0);
	thinp_os_thread_join(&t);
	/* Named before fn runs, cut to the 15 characters Linux keeps. */
	assert_string_equal(name, "thinp-commit-lo");
}

static int format(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = thinp_os_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void test_format_and_log(void **state)
{
	char buf[8];

	assert_int_equal(format(buf, sizeof(buf), "block %llu", 123456ull), 12);
	assert_string_equal(buf, "block 1");
	thinp_os_log_default(3, "dropped");
}

/* The SSE4.2 hook where the CPU has the instruction, computing the standard
 * check value; nothing elsewhere. */
static void test_crc32c_accel(void **state)
{
	thinp_os_crc32c_fn fn = thinp_os_crc32c_accel();

#if defined(__x86_64__) || defined(__i386__)
	assert_int_equal(fn != NULL, __builtin_cpu_supports("sse4.2") != 0);
#else
	assert_null(fn);
#endif
	if (fn)
		assert_int_equal(fn(0xFFFFFFFFu, "123456789", 9) ^ 0xFFFFFFFFu, 0xE3069283u);
}

/* Two 32-byte draws differ (a stuck or zero source would not). */
static void test_random_bytes(void **state)
{
	unsigned char a[32], b[32], zero[32] = { 0 };

	assert_int_equal(thinp_os_random_bytes(a, sizeof(a)), 0);
	assert_int_equal(thinp_os_random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(thinp_os_random_bytes(a, 0), 0);
}

static void test_strerror_and_helpers(void **state)
{
	thinp_os_atomic_bool f;
	unsigned char *p;

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	assert_string_equal(thinp_os_strerror(ENOENT), "No such file or directory");
#endif
	assert_null(thinp_os_strerror(100000));
	assert_null(thinp_os_zalloc_array(SIZE_MAX / 2, 3));
	p = thinp_os_zalloc_array(100, 3);
	assert_non_null(p);
	for (int i = 0; i < 300; i++)
		assert_int_equal(p[i], 0);
	thinp_os_free(p);
	thinp_os_atomic_bool_store(&f, true);
	assert_true(thinp_os_atomic_bool_exchange(&f, false));
	assert_false(thinp_os_atomic_bool_exchange(&f, false));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void test_sort(void **state)
{
	enum { N = 5000 };
	static uint32_t v[N];
	uint64_t sum = 0, sorted_sum = 0;
	unsigned seed = 12345;
	int i;

	for (i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = (seed >> 8) % 1000; /* many duplicates */
		sum += v[i];
	}
	thinp_os_sort(v, N, sizeof(v[0]), cmp_u32);
	for (i = 0; i < N; i++) {
		if (i)
			assert_true(v[i - 1] <= v[i]);
		sorted_sum += v[i];
	}
	assert_int_equal(sum, sorted_sum);
}

static void test_monotonic(void **state)
{
	uint64_t a = thinp_os_monotonic_ns(), b;
	int i;

	for (i = 0; i < 1000; i++) {
		b = thinp_os_monotonic_ns();
		assert_true(b >= a);
		a = b;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_mutex_excludes),
		cmocka_unit_test(test_rwlock_write_excludes),
		cmocka_unit_test(test_rwlock_readers_share),
		cmocka_unit_test(test_cond_timeout),
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_thread_name),
		cmocka_unit_test(test_format_and_log),
		cmocka_unit_test(test_crc32c_accel),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_strerror_and_helpers),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
