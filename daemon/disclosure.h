/* The control socket's disclosure commands (disclosure.c): publication records. */
#ifndef CUSTOSD_DISCLOSURE_H
#define CUSTOSD_DISCLOSURE_H

#include <jansson.h>

#include "custos/access.h"
#include "daemon.h"

/*
 * The answer to disclosure command `cmd` (disclosure-publish,
 * disclosure-revoke, disclosure-withdraw, disclosure-list, disclosure-due)
 * from user `who`, or NULL when no answer could be made (out of memory).
 */
json_t *disclosure_command(struct daemon *d, const struct cs_access_who *who, const char *cmd,
    json_t *req);
/* 1 if `cmd` is a disclosure command. */
int disclosure_is_command(const char *cmd);

#endif
