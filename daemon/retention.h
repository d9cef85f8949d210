/*
 * The control socket's retention commands (retention.c): holds, evidence
 * use and what is due, for the users of the socket with their roles.
 */
#ifndef CUSTOSD_RETENTION_H
#define CUSTOSD_RETENTION_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "custos/retention.h"
#include "daemon.h"

/* The policy of the configuration's [retention] (strings borrowed from d->cfg). */
void retention_policy(const struct daemon *d, struct cs_retention_policy *p);

/*
 * The policy copied for work on the thread pool (a reload may free the
 * configuration's own strings meanwhile). Take on the loop thread.
 */
struct retention_snap {
	struct cs_retention_policy p;
	struct cs_retention_class *classes;
	char *holders, *approvers;
	int64_t plan_interval_ms;
};
int retention_snap_take(const struct daemon *d, struct retention_snap *s);
void retention_snap_free(struct retention_snap *s);
/*
 * The answer to retention command `cmd` from user `uid` (hold-add,
 * hold-release, holds, retention-used, retention-compute); NULL when no
 * answer could be made (out of memory).
 */
json_t *retention_command(struct daemon *d, uid_t uid, const char *cmd, json_t *req);
/* 1 if `cmd` is a retention command. */
int retention_is_command(const char *cmd);
/* Hold `hold` was added or released: what its items' remote objects need follows from here. */
void retention_holds_changed(struct daemon *d, uint64_t hold);
/*
 * Held items whose new copies the remote confirmed ({id: hold}, consumed;
 * cs_upload_take_held): S3 legal hold on their objects, on the thread pool.
 */
void retention_pushed_held(struct daemon *d, json_t *held);

#endif
