/*
 * Keeping orphans/ within custosd's limits (orphans.c): [store]
 * orphans_max_age and orphans_max_size, enforced at start, after the store
 * recovers in place, on reload and daily, on the thread pool.
 */
#ifndef CUSTOSD_ORPHANS_H
#define CUSTOSD_ORPHANS_H

struct daemon;

/* At start, before the loop runs: enforces the limits once and starts the daily timer. */
int orphans_start(struct daemon *d);
/* Enforces the limits on the thread pool (once more after a run in progress). */
void orphans_prune(struct daemon *d);

#endif
