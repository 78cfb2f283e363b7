/* The POSIX backend's types for lib/os/os.h (include os.h, not this). */
#ifndef THINP_OS_OS_POSIX_H
#define THINP_OS_OS_POSIX_H

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct { pthread_mutex_t m; } thinp_os_mutex;
typedef struct { pthread_rwlock_t l; } thinp_os_rwlock;
typedef struct { pthread_cond_t c; } thinp_os_cond;
typedef struct { pthread_once_t o; } thinp_os_once_flag;
#define THINP_OS_ONCE_INIT { PTHREAD_ONCE_INIT }
typedef struct {
	pthread_t id;
	void (*fn)(void *);
	void *arg;
	char name[16];
} thinp_os_thread;

/* Inline: taken and dropped on every block lookup, an extra call each would
 * show (os.h, THINP_OS_INLINE_LOCKS). */
#define THINP_OS_INLINE_LOCKS 1

static inline void thinp_os_mutex_lock(thinp_os_mutex *m)
{
	pthread_mutex_lock(&m->m);
}

static inline void thinp_os_mutex_unlock(thinp_os_mutex *m)
{
	pthread_mutex_unlock(&m->m);
}

static inline void thinp_os_rwlock_read_lock(thinp_os_rwlock *l)
{
	pthread_rwlock_rdlock(&l->l);
}

static inline void thinp_os_rwlock_read_unlock(thinp_os_rwlock *l)
{
	pthread_rwlock_unlock(&l->l);
}

static inline void thinp_os_rwlock_write_lock(thinp_os_rwlock *l)
{
	pthread_rwlock_wrlock(&l->l);
}

static inline void thinp_os_rwlock_write_unlock(thinp_os_rwlock *l)
{
	pthread_rwlock_unlock(&l->l);
}

#endif
