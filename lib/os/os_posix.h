/* The POSIX backend's types for lib/os/os.h (include os.h, not this). */
#ifndef THINP_OS_OS_POSIX_H
#define THINP_OS_OS_POSIX_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

#endif
