/*
 * The upload stage of custosd (remote.c): with a [remote] section, every
 * secured item's blob, the ledger's records and its signed checkpoints go
 * to the bucket (custos/upload.h decides what and in which order, the same
 * as custos push; custos/remote.h sends, its sockets and timers bound to
 * the loop), and files held by release_policy = remote are released once
 * their item's copy is confirmed.
 */
#ifndef CUSTOSD_REMOTE_H
#define CUSTOSD_REMOTE_H

#include <jansson.h>

#include "daemon.h"

/* Starts the stage when the configuration has a remote (else does nothing); -ENOMEM. */
int upload_start(struct daemon *d);
/* After SIGHUP: the remote's configuration and credentials are read again, uploads retried. */
void upload_reload(struct daemon *d);
/* Stops every transfer (each is sent again after the restart) and lets held files go. */
void upload_stop(struct daemon *d);
/* Frees what is left once the loop has ended; NULL-safe. */
void upload_free(struct daemon *d);
/*
 * The "remote" member of the status: {enabled, remote, queue, bytes_pending,
 * in_flight, uploaded, present, failures, last_error, last_error_time, held}.
 */
json_t *upload_status(struct daemon *d);
/*
 * The file custosd's [remote] settings are read from (malloc'd), for work
 * on the thread pool that loads them itself (purges, legal holds); NULL when
 * no remote is configured (or out of memory). Loop thread.
 */
char *remote_config_path(const struct daemon *d);

#endif
