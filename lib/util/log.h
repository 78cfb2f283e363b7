/*
 * Internal logging. A struct tlog is the (callback, context) pair a caller set
 * on a public handle; lower layers receive a pointer to it and never print.
 */
#ifndef THINP_UTIL_LOG_H
#define THINP_UTIL_LOG_H

#include "os/os.h"
#include <libthinp/common.h>
#include "util/compiler.h"

struct tlog {
	thinp_log_fn fn; /* NULL: thinp_os_log_default (user space drops them) */
	void *ctx;
};

/* Format a message and hand it to log->fn, or to the host's default sink
 * (thinp_os_log_default) without one. `log` may be NULL. */
void tlog(const struct tlog *log, int level, const char *fmt, ...) THINP_PRINTF(3, 4);

/*
 * Every corruption error is raised through THINP_CORRUPT so that one
 * breakpoint (on thinp__corrupt) finds them all. It logs "<what>: block <b>:
 * <why>" at error level and returns -EILSEQ.
 */
int thinp__corrupt(const struct tlog *log, uint64_t blocknr, const char *what,
		   const char *why);
#define THINP_CORRUPT(log, blocknr, what, why) thinp__corrupt((log), (blocknr), (what), (why))

#endif
