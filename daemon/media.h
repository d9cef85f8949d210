/*
 * The media stage of custosd (media.c): every secured item that has no media
 * record yet (just secured, secured before this stage existed, or by `custos
 * ingest` while no daemon ran) is identified and probed by the sandboxed
 * worker, one at a time, on the thread pool, and only while intake is idle.
 */
#ifndef CUSTOSD_MEDIA_H
#define CUSTOSD_MEDIA_H

#include <jansson.h>

#include "daemon.h"

/* Starts the stage (its first look at the catalog comes a second later); -ENOMEM. */
int media_start(struct daemon *d);
/* Stops it: an item in progress finishes (its worker has a time limit). */
void media_stop(struct daemon *d);
/* Frees what is left once the loop has ended; NULL-safe. */
void media_free(struct daemon *d);
/* The "media" member of the status: {enabled, processed, unreadable, pending}. */
json_t *media_status(struct daemon *d);
/* The worker to run: CUSTOS_PROBE, else [media] probe, else the installed one. */
const char *media_probe_path(const struct daemon *d);

#endif
