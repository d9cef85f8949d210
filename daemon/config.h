/*
 * custosd's configuration: an INI file (parsed with libinih) overridden by
 * command-line options. Loading validates everything and names the first
 * problem with its line number, so a bad file never half-applies.
 */
#ifndef CUSTOSD_CONFIG_H
#define CUSTOSD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "custos/retention.h"

#define CFG_MAX_INBOXES 64
#define CFG_MAX_ROLES 256

struct cs_config {
	char *store;        /* store root */
	char *station;      /* station id used when the store is created */
	char *inboxes[CFG_MAX_INBOXES];
	size_t n_inboxes;
	char *docks;        /* dock root or NULL */
	char *patterns[16]; /* recorder file-name patterns (see dock.c) */
	size_t n_patterns;
	int recorder_utc_offset_min; /* recorders' clock zone, minutes east of UTC */
	char *socket;       /* control socket path (default <store>/custosd.sock) */
	unsigned settle_ms; /* a file must be unchanged this long before it is taken */
	unsigned concurrency;
	unsigned rescan_s;
	uint64_t max_size;  /* bytes, 0 = no cap */
	uint64_t reserve;   /* bytes kept free on the store's disk: ingest pauses before */
	int64_t orphans_max_age_s;  /* orphans/ older than this are removed (0: no limit) */
	uint64_t orphans_max_bytes; /* orphans/ kept within this size, oldest removed (0: none) */
	int release_delete; /* delete a source once it is secured and re-verified */
	int release_remote; /* release only once the item's remote copy is confirmed */
	char *remote_config; /* [remote] config = PATH */
	int remote_inline;   /* [remote] holds the remote's settings itself */
	int log_level;      /* 0 error .. 3 debug */
	int fixity_enabled;     /* re-hash stored blobs on a schedule */
	uint64_t fixity_rate;   /* bytes per second read by the fixity checks */
	uint64_t fixity_period_s; /* every blob is checked again within this many seconds */
	int media_enabled;      /* make a media record of every item (daemon/media.c) */
	char *media_probe;      /* the media worker (default: CUSTOS_PROBE, else installed) */
	uint64_t media_timeout_s; /* the worker is killed after this long */
	uint64_t media_memory;  /* the worker's address-space limit, bytes */
	char *media_policy;     /* [media.policy]: "FORMAT=ACTION ..." (custos/media.h) */
	/* [roles]: user name or uid -> role; [access]: the configurable rules (custos/access.h) */
	char *role_user[CFG_MAX_ROLES];
	char *role_name[CFG_MAX_ROLES];
	size_t n_roles;
	/* view_free, approver, filers, markers, readers, conclusive; NULL: the default */
	char *access[6];
	uint64_t approval_period_s; /* an approval without --until is valid this long */
	unsigned socket_mode;       /* the control socket's permissions */
	/* [retention] (custos/retention.h): holders, approvers; NULL: the default */
	char *retention[2];
	unsigned approvals;        /* different users who approve a purge plan */
	uint64_t grace_s;          /* from the last approval to execution */
	uint64_t plan_interval_s;  /* custosd makes a purge plan this often */
	struct cs_retention_class *classes; /* class.NAME lines; name, category malloc'd */
	size_t n_classes;
};

void cs_config_init(struct cs_config *c);
void cs_config_fini(struct cs_config *c);
/*
 * Loads `path` into c (which should be cs_config_init'ed). Returns 0, or -1
 * with a message naming the problem (and its line) in err, or -ENOMEM when
 * it could not be read for lack of memory (not a fault of the file).
 */
int cs_config_load(struct cs_config *c, const char *path, char *err, size_t errn);
/* Checks a complete configuration (after command-line overrides). */
int cs_config_check(const struct cs_config *c, char *err, size_t errn);
/* Swaps the [roles], [access] and [retention] settings of a and b (a reload takes them whole). */
void cs_config_swap_access(struct cs_config *a, struct cs_config *b);
/* The role of user `name` (uid `uid`) from [roles], or NULL. */
const char *cs_config_role(const struct cs_config *c, const char *name, long uid);
/* The names of the [access] settings, in the order of c->access. */
extern const char *const cs_config_access_keys[6];

#endif
