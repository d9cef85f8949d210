/*
 * Recorder docks (dock.c): sessions, receipts, and each docked folder as a
 * watched tree with its struct tree_source. Uses watch.h, pipeline.h and
 * log.h; they never call it (main.c and control.c do, from above).
 */
#ifndef CUSTOSD_DOCK_H
#define CUSTOSD_DOCK_H

#include <jansson.h>
#include <stddef.h>

#include "custos/store.h"
#include "daemon.h"

/* Opens the dock root and registers dock_rescan as d->trees_changed. 0 or -1 (logged). */
int dock_start(struct daemon *d);
void dock_rescan(struct daemon *d);
void dock_tick(struct daemon *d);
void dock_stop(struct daemon *d);
json_t *dock_status(struct daemon *d);
/*
 * Fills *m for file `rel` of a dock (pattern, device identity, clock); work
 * thread. 0, or -ENOMEM when a field could not be made (none is left out).
 */
int dock_meta(const struct dock *k, const char *rel, struct cs_meta *m, const char **officers,
    char *bufs, size_t bufn, json_t **extra);
const char *dock_device(const struct dock *k);

/*
 * For tests/fuzz: a dock of folder `dirfd` outside any daemon, its identity
 * read from DEVICE.json as a docking reads it (patterns: as in the
 * configuration, none for the default). Free it with free(). 0, or -1 with
 * the reason in why.
 */
int dock_identity_load(struct dock **out, int dirfd, char *const *patterns, size_t n_patterns,
    int offset_min, char *why, size_t whyn);

#endif
