/*
 * custosd's log: one line per event on stderr (with journald's priority
 * prefix under systemd), and what custosd does when memory runs out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

#include "custos/name.h"
#include "custos/store.h"
#include "log.h"

/* ---- logging: one line per event, with a journald priority prefix ---- */

static int log_level = 2;
static int log_prefix; /* "<N>" prefixes when stderr goes to the journal */

void
logmsg(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {3, 4, 6, 7};
	char buf[2048], text[4 * sizeof(buf)];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/*
	 * One event, one line of text: names are bytes, so control characters
	 * and bytes that are not UTF-8 are written as \xHH (custos/name.h).
	 */
	cs_name_readable(buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
	    text, sizeof(text));
	if (log_prefix)
		fprintf(stderr, "<%d>%s\n", prio[level], text);
	else
		fprintf(stderr, "custosd: %s: %s\n", names[level], text);
}

void
log_set_level(int level)
{
	log_level = level;
}

void
log_to_journal(int on)
{
	log_prefix = on;
}

void
lib_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	logmsg(level, "%s", msg);
}

/* ---- out of memory ---- */

/*
 * custosd never goes on with a result it could not compute for lack of
 * memory: what failed is dropped and done again later, by the retry each
 * part already has (a file when it has settled again, a directory at the
 * next rescan, a receipt or a checkpoint two seconds later). Nothing is
 * refused or released for lack of memory. A lack that lasts is not waited
 * out: at the OOM_LIMIT-th failure with no progress since the first (a file
 * secured, a receipt written, a checkpoint signed), each within OOM_WINDOW_MS
 * of the one before, custosd stops as on SIGTERM and exits 4, so that the
 * service manager starts it afresh.
 */
enum { OOM_LIMIT = 3, OOM_WINDOW_MS = 300000 };

void
out_of_memory(struct daemon *d, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (d->oom_streak > 0 && uv_now(d->loop) - d->oom_last > OOM_WINDOW_MS)
		d->oom_streak = 0; /* the earlier shortage passed */
	d->oom_last = uv_now(d->loop);
	if (++d->oom_streak < OOM_LIMIT) {
		logmsg(1, "out of memory %s; tried again later", what);
		return;
	}
	if (d->stopping)
		return;
	logmsg(0, "out of memory %s, %u times in a row: stopping (exit status 4) so that custosd "
	          "is started afresh; nothing is lost",
	    what, d->oom_streak);
	d->oom_stop = 1;
	d->stop(d);
}

int
store_oom_check(struct daemon *d)
{
	int why = cs_store_failure(d->st);

	if (!is_oom(why))
		return 0;
	if (!d->stopping) {
		logmsg(0, "the catalog could not index a ledger event for lack of memory (%s): "
		          "the store takes no more work until it is opened again. Stopping (exit "
		          "status 4); the next start indexes the event. Nothing is lost",
		    cs_strerror(why));
		d->oom_stop = 1;
		d->stop(d);
	}
	return 1;
}
