/*
 * Stand-ins for the functions of log.c, watch.c and pipeline.c that
 * daemon/dock.c calls, so the fuzz targets can link dock.c without the
 * daemon's loop. None of them is reached from the functions fuzzed
 * (dock_identity_load, dock_meta) except logmsg, which formats its message
 * (so that a bad argument still shows) and prints nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "pipeline.h"
#include "watch.h"

void
logmsg(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

char *
job_key(const struct inbox *ib, const char *rel)
{
	(void)ib, (void)rel;
	abort();
}

void
observe(struct daemon *d, struct inbox *ib, const char *rel)
{
	(void)d, (void)ib, (void)rel;
	abort();
}

void
scan_dir(struct daemon *d, struct inbox *ib, const char *rel, int depth)
{
	(void)d, (void)ib, (void)rel, (void)depth;
	abort();
}

void
watch_dir(struct daemon *d, struct inbox *ib, const char *rel)
{
	(void)d, (void)ib, (void)rel;
	abort();
}

void
unwatch_tree(struct daemon *d, struct inbox *ib)
{
	(void)d, (void)ib;
	abort();
}

void
drop_candidates(struct daemon *d, struct inbox *ib)
{
	(void)d, (void)ib;
	abort();
}

void
pump(struct daemon *d)
{
	(void)d;
	abort();
}

void
out_of_memory(struct daemon *d, const char *fmt, ...)
{
	(void)d, (void)fmt;
	abort();
}

int
store_oom_check(struct daemon *d)
{
	(void)d;
	abort();
}

int
taking_work(const struct daemon *d)
{
	(void)d;
	abort();
}
