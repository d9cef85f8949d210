/*
 * Purges in custosd (purge.c): the timer that resumes and executes approved
 * purge plans and writes the periodic plan, on the thread pool; and the
 * control socket's retention commands.
 */
#ifndef CUSTOSD_PURGE_H
#define CUSTOSD_PURGE_H

#include <jansson.h>
#include <sys/types.h>

#include "daemon.h"

/* Starts the timer (its first look resumes a plan cut short); -ENOMEM. */
int purge_start(struct daemon *d);
/* Stops it; a plan being executed runs to its end (work items complete). */
void purge_stop(struct daemon *d);
/* Frees what is left once the loop has ended; NULL-safe. */
void purge_free(struct daemon *d);
/*
 * The answer to retention command `cmd` from user `uid`: retention-approve,
 * retention-cancel ({plan, reason}), retention-plans, retention-show
 * ({plan}), retention-plan-write, destruction-register. NULL: out of memory.
 */
json_t *purge_command(struct daemon *d, uid_t uid, const char *cmd, json_t *req);
/* The "purge" member of the status: {looks, executed, failed, last_plan}. */
json_t *purge_status(struct daemon *d);
/* 1 if `cmd` is one of them. */
int purge_is_command(const char *cmd);

#endif
