#include "os/os.h"

#include "util/log.h"

void tlog(const struct tlog *log, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	thinp_os_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log && log->fn)
		log->fn(level, buf, log->ctx);
	else
		thinp_os_log_default(level, buf);
}

int thinp__corrupt(const struct tlog *log, uint64_t blocknr, const char *what,
		   const char *why)
{
	tlog(log, THINP_LOG_ERROR, "%s: block %" PRIu64 ": %s", what, blocknr, why);
	return -EILSEQ;
}
