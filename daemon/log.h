/*
 * custosd's log (log.c): one line per event, and what custosd does when
 * memory runs out. The bottom of daemon/: calls nothing else of it.
 */
#ifndef CUSTOSD_LOG_H
#define CUSTOSD_LOG_H

#include <errno.h>

#include "custos/error.h"
#include "custos/secure.h"
#include "daemon.h"

__attribute__((format(printf, 2, 3))) void logmsg(int level, const char *fmt, ...);
/* Levels 0 error … 3 debug above `level` are not written. */
void log_set_level(int level);
/* With `on`, lines carry journald's "<N>" priority prefix instead of "custosd: level:". */
void log_to_journal(int on);
/* lib/'s log callback (cs_log_fn): the store's messages go to the same log. */
void lib_log(void *ctx, int level, const char *msg);

/*
 * An allocation failed while doing what `fmt` says: logs it; the work is
 * tried again later by its caller's usual retry. A lack of memory that
 * lasts (several failures with no progress between) stops custosd. Loop
 * thread only.
 */
__attribute__((format(printf, 2, 3))) void out_of_memory(struct daemon *d, const char *fmt, ...);
/* A failed allocation (or OpenSSL failing, for want of one), as lib classifies it. */
static inline int
is_oom(int rc)
{
	return cs_fault(NULL, rc, CS_STAGE_INGEST) == CS_FAULT_MEMORY;
}
/*
 * After a store operation came back on the loop thread: if the store
 * stopped for lack of memory (cs_store_failure), custosd stops so that the
 * next start indexes what the catalog missed. 1 if it did.
 */
int store_oom_check(struct daemon *d);

#endif
