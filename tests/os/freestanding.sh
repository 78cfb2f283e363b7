#!/bin/bash
# The OS layer's header builds with nothing but the compiler: a translation
# unit that includes lib/os/os.h and calls into it compiles with
# -ffreestanding -nostdinc -DTHINP_OS_FREESTANDING (no libc, no pthread
# headers on the include path). Negative control: the same flags must reject a
# file that includes <stdlib.h>, or the check would prove nothing.
# When lib/ is converted, every lib/*/*.c joins this compile (ARCHITECTURE.md).
set -u
srcdir=${THINP_SRCDIR:-$(dirname "$0")/../..}
cc=${CC:-cc}
flags=(-std=gnu11 -ffreestanding -nostdinc -DTHINP_OS_FREESTANDING -I"$srcdir/lib"
	-Wall -Wextra -Werror -Wno-unused-parameter -fsyntax-only -x c -)
$cc "${flags[@]}" <<'C' || { echo "FAIL: lib/os/os.h does not build freestanding"; exit 1; }
#include "os/os.h"
struct user { thinp_os_mutex m; thinp_os_rwlock l; thinp_os_cond c; thinp_os_thread t; };
static thinp_os_once_flag once = THINP_OS_ONCE_INIT;
static void init(void) {}
static void run(void *arg) {}
int use(struct user *u, char *buf);
int use(struct user *u, char *buf)
{
	uint64_t *p = thinp_os_zalloc(sizeof(*p));
	int r;

	thinp_os_once(&once, init);
	thinp_os_mutex_lock(&u->m);
	r = thinp_os_cond_timedwait(&u->c, &u->m, 10);
	thinp_os_mutex_unlock(&u->m);
	thinp_os_rwlock_read_lock(&u->l);
	thinp_os_rwlock_read_unlock(&u->l);
	if (thinp_os_thread_start(&u->t, "x", run, p) == 0)
		thinp_os_thread_join(&u->t);
	memset(buf, 0, 8);
	thinp_os_free(p);
	return r == -ETIMEDOUT ? (int)thinp_os_monotonic_ns() : -ENOMEM;
}
C
if echo '#include <stdlib.h>' | $cc "${flags[@]}" 2>/dev/null; then
	echo "FAIL: -nostdinc did not hide libc headers: the check is void"
	exit 1
fi
echo "PASS: lib/os/os.h builds freestanding"
