/*
 * Finding files (watch.c): inotify watches on every watched tree, scans,
 * and the candidates, files seen and waiting to settle. Calls only log.h;
 * a change that concerns the docks goes through d->trees_changed.
 */
#ifndef CUSTOSD_WATCH_H
#define CUSTOSD_WATCH_H

#include <uv.h>

#include "daemon.h"

/* The job key of file `rel` of a tree (malloc'd; NULL: out of memory). */
char *job_key(const struct inbox *ib, const char *rel);
/* A sidecar "<file>.json" belongs to <file> when <file> exists beside it. */
int is_sidecar(int dirfd, const char *rel);
/* Forgets candidate c (it was secured, refused, or went away). */
void cand_remove(struct daemon *d, struct cand *c);
void observe(struct daemon *d, struct inbox *ib, const char *rel);
void scan_dir(struct daemon *d, struct inbox *ib, const char *rel, int depth);
/* Scans every upload directory (not the docks: dock_rescan). */
void rescan_all(struct daemon *d);
void watch_dir(struct daemon *d, struct inbox *ib, const char *rel);
void unwatch_tree(struct daemon *d, struct inbox *ib);
/* The inotify descriptor is readable (uv_poll_cb). */
void on_inotify(uv_poll_t *h, int status, int events);

#endif
