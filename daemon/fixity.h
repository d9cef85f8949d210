/*
 * Scheduled fixity in custosd (fixity.c): stored blobs are re-hashed in the
 * background, paced to [fixity] rate, oldest check first, so that each is
 * checked again within [fixity] period; intake always goes first.
 */
#ifndef CUSTOSD_FIXITY_H
#define CUSTOSD_FIXITY_H

#include <jansson.h>

#include "daemon.h"

/* Starts the schedule (its first look at the catalog comes a second later); -ENOMEM. */
int fixity_start(struct daemon *d);
/* Stops it: the check in progress is dropped (made again after the restart). */
void fixity_stop(struct daemon *d);
/* Frees what is left once the loop has ended; NULL-safe. */
void fixity_free(struct daemon *d);
/* The "fixity" member of the status: {enabled, checked, damaged, overdue, last_pass, ...}. */
json_t *fixity_status(struct daemon *d);

#endif
