/* The control socket's access commands (access.c): requests, approvals, views, copies. */
#ifndef CUSTOSD_ACCESS_H
#define CUSTOSD_ACCESS_H

#include <jansson.h>
#include <pwd.h>
#include <sys/types.h>

#include "custos/access.h"

#include "daemon.h"

/*
 * A connection's copy in progress: the stored bytes a granted "get" or
 * "export-open" opened, and the items an "export" on it let out.
 */
struct export_work;
struct access_conn {
	int fd;         /* -1: none */
	json_t *export; /* the ids of the export's items (object), or NULL */
	/* an export being planned on the thread pool (its answer comes later), or NULL */
	struct export_work *planning;
	/* gives the answer of a planned export (control.c's; `ans` NULL: out of memory) */
	void (*answer)(struct access_conn *c, json_t *ans);
};

void access_conn_close(struct access_conn *a);
/*
 * The answer to access command `cmd` from user `uid` (whoami, request,
 * approve, deny, conclusive, view, get, read, find, register, export,
 * export-open), or NULL when
 * `cmd` is not one of them or no answer could be made (out of memory).
 * An export is planned on the thread pool: NULL with c->planning set, and
 * c->answer gives the answer when the plan is done (never if the connection
 * ends first: access_conn_end drops it, the plan still completes).
 */
json_t *access_command(struct daemon *d, uid_t uid, const char *cmd, json_t *req,
    struct access_conn *c);
/* Ends the connection's copy and export (at its close); a planned export's answer is dropped. */
void access_conn_end(struct access_conn *a);
/* 1 if `cmd` is an access command. */
int access_is_command(const char *cmd);

/* The user of a socket connection: his name (or "uid N") and role from [roles]. */
struct access_user {
	struct passwd pw;
	char buf[4096], name[32];
	struct cs_access_who who; /* points into the above */
};
void access_user(struct daemon *d, uid_t uid, struct access_user *u);
/*
 * The answers other commands share (daemon/retention.c): a refusal by
 * `rule` with its sentence, a failure with `msg`, a lib error (`what`: the
 * record a CS_ENOTFOUND or CS_EFORMAT is about); and the refusal's log line.
 */
json_t *access_denied(const char *rule);
json_t *access_failed(const char *msg);
json_t *access_lib_error(int rc, const char *what);
void access_log_refusal(const struct cs_access_who *who, const char *cmd, json_t *ans);

#endif
