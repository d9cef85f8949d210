/*
 * Upload (custos/upload.h): the order in which a store's objects go to a
 * remote, one pass at a time. A pass is a small state machine: BLOBS (the
 * blobs and derivatives with no replica at the remote when the pass began,
 * under the same content-addressed keys), then RECORDS
 * (the identity and the ledger's records after the last confirmed
 * checkpoint, up to the newest signed checkpoint, whose bytes are taken at
 * that moment so that the checkpoint sent is the one the records lead to;
 * when the pass confirmed blobs, a checkpoint is signed first, so that their
 * replica events go up too and a store rebuilt from the bucket knows where
 * its items' bytes are),
 * then CHECKPOINT, sent only when every record of the pass was confirmed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/ingest.h"
#include "custos/replica.h"
#include "custos/retention.h"
#include "custos/store.h"
#include "custos/upload.h"
#include "util.h"

enum phase { P_BLOBS, P_RECORDS, P_CHECKPOINT, P_DONE };

struct cs_upload {
	struct cs_store *st;
	const char *dir;
	const struct cs_remote_config *cfg;
	char remote[1200];
	int ledger; /* 0: only the items named */
	json_t *items;
	size_t next;
	enum phase phase;
	size_t outstanding; /* handed out, not reported yet */
	int records_failed; /* a record of this pass was not confirmed */
	int identity_sent;
	int no_checkpoint;
	size_t blob_events; /* blob and derivative replica events written in this pass */
	uint64_t done, tree, seq; /* confirmed checkpoint, newest, next record */
	int cp_fd;
	uint64_t cp_size;
	uint8_t cp_sha[32];
	size_t backlog;
	uint64_t backlog_bytes;
	json_t *held; /* id -> hold: items held when a copy of theirs was confirmed */
};

static void
backlog_count(struct cs_upload *u)
{
	size_t i;
	json_t *it;

	u->backlog = json_array_size(u->items);
	u->backlog_bytes = 0;
	json_array_foreach(u->items, i, it)
		u->backlog_bytes += (uint64_t)json_integer_value(json_object_get(it, "size"));
}

int
cs_upload_new(struct cs_upload **out, struct cs_store *st, const char *dir,
    const struct cs_remote_config *cfg, const char *const *ids, size_t n, const char **bad)
{
	struct cs_upload *u = calloc(1, sizeof(*u));
	int rc;

	if (u == NULL)
		return -ENOMEM;
	u->st = st;
	u->dir = dir;
	u->cfg = cfg;
	u->cp_fd = -1;
	u->ledger = ids == NULL;
	cs_remote_config_name(cfg, u->remote, sizeof(u->remote));
	rc = cs_replica_pending(st, u->remote, ids, n, &u->items, bad);
	if (rc < 0) {
		free(u);
		return rc;
	}
	backlog_count(u);
	*out = u;
	return 0;
}

void
cs_upload_free(struct cs_upload *u)
{
	if (u == NULL)
		return;
	json_decref(u->items);
	json_decref(u->held);
	if (u->cp_fd >= 0)
		close(u->cp_fd);
	free(u);
}

int
cs_upload_pass(struct cs_upload *u)
{
	json_t *items = NULL;
	int rc;

	if (!u->ledger)
		return 0; /* the items named: one pass */
	rc = cs_replica_pending(u->st, u->remote, NULL, 0, &items, NULL);
	if (rc < 0)
		return rc;
	json_decref(u->items);
	u->items = items;
	u->next = 0;
	u->phase = P_BLOBS;
	u->records_failed = 0;
	u->identity_sent = 0;
	u->blob_events = 0;
	if (u->cp_fd >= 0)
		close(u->cp_fd);
	u->cp_fd = -1;
	backlog_count(u);
	return 0;
}

static void
obj_init(struct cs_upload_obj *o, const char *kind)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->kind, sizeof(o->kind), "%s", kind);
	o->fd = -1;
}

static void
next_blob(struct cs_upload *u, struct cs_upload_obj *o)
{
	json_t *it = json_array_get(u->items, u->next++);
	const char *id = json_string_value(json_object_get(it, "id"));
	const char *hex = json_string_value(json_object_get(it, "sha256"));
	const char *dkind = json_string_value(json_object_get(it, "derivative"));

	obj_init(o, dkind != NULL ? "derivative" : "blob");
	snprintf(o->id, sizeof(o->id), "%s", id != NULL ? id : "?");
	snprintf(o->derivative, sizeof(o->derivative), "%s", dkind != NULL ? dkind : "");
	if (hex == NULL || strlen(hex) != 64 || cs__unhex(hex, 64, o->sha256) < 0) {
		o->rc = CS_EFORMAT;
		return;
	}
	memcpy(o->hex, hex, 65);
	o->rc = cs_remote_key_blob(u->cfg, hex, o->key, sizeof(o->key));
	if (o->rc == 0 && dkind != NULL)
		o->rc = cs_replica_derivative_fd(u->st, hex, &o->fd, &o->size);
	else if (o->rc == 0)
		o->rc = cs_replica_blob_fd(u->st, hex, &o->fd, &o->size);
}

/* custos.json: the station, origin and verifier key a rebuild needs first. */
static void
identity(struct cs_upload *u, struct cs_upload_obj *o)
{
	char path[4096];
	uint64_t size;

	obj_init(o, "identity");
	o->content_type = "application/json";
	snprintf(path, sizeof(path), "%s/custos.json", u->dir);
	o->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (o->fd < 0)
		o->rc = -errno;
	if (o->rc == 0)
		o->rc = cs_hash_fd(o->fd, o->hex, &size);
	if (o->rc == 0 && cs__unhex(o->hex, 64, o->sha256) < 0)
		o->rc = CS_EFORMAT;
	if (o->rc == 0)
		o->rc = cs_remote_key_identity(u->cfg, cs_store_station(u->st), o->key,
		    sizeof(o->key));
	o->size = size;
}

static void
record(struct cs_upload *u, struct cs_upload_obj *o)
{
	obj_init(o, "record");
	o->content_type = "application/json";
	o->rc = cs_remote_key_record(u->cfg, cs_store_station(u->st), u->seq, o->key,
	    sizeof(o->key));
	if (o->rc == 0)
		o->rc = cs_replica_record_fd(u->st, u->seq, &o->fd, &o->size, o->sha256);
	cs__hex(o->sha256, 32, o->hex);
	u->seq++;
}

/* The ledger part of the pass begins: which records, up to which checkpoint. */
static int
ledger_begin(struct cs_upload *u)
{
	int rc;

	/* A failure to sign leaves the newest checkpoint as it is: its records still go. */
	if (u->blob_events > 0 && cs_store_checkpoint(u->st, NULL) == CS_EFAILED)
		return CS_EFAILED;
	rc = cs_replica_checkpoint_size(u->st, &u->done);
	if (rc < 0)
		return rc;
	u->no_checkpoint = 0;
	rc = cs_replica_checkpoint_fd(u->st, &u->cp_fd, &u->cp_size, u->cp_sha, &u->tree);
	if (rc == CS_ENOTFOUND) {
		u->no_checkpoint = 1;
		u->phase = P_DONE;
		return 0;
	}
	if (rc < 0)
		return rc;
	if (u->tree <= u->done) {
		close(u->cp_fd);
		u->cp_fd = -1;
		u->phase = P_DONE;
		return 0;
	}
	u->seq = u->done;
	u->phase = P_RECORDS;
	return 0;
}

int
cs_upload_next(struct cs_upload *u, struct cs_upload_obj *objs, size_t max, size_t *n,
    int *finished)
{
	size_t k = 0;
	int rc = 0;

	while (k < max && rc == 0) {
		struct cs_upload_obj *o = &objs[k];
		if (u->phase == P_BLOBS && u->next < json_array_size(u->items)) {
			next_blob(u, o);
		} else if (u->phase == P_BLOBS) {
			if (u->outstanding > 0)
				break; /* the ledger goes after the blobs */
			if (!u->ledger) {
				u->phase = P_DONE;
				break;
			}
			rc = ledger_begin(u);
			continue;
		} else if (u->phase == P_RECORDS && !u->identity_sent) {
			identity(u, o);
			u->identity_sent = 1;
		} else if (u->phase == P_RECORDS && u->seq < u->tree) {
			record(u, o);
		} else if (u->phase == P_RECORDS) {
			if (u->outstanding > 0)
				break; /* the checkpoint goes after all its records */
			u->phase = u->records_failed ? P_DONE : P_CHECKPOINT;
			continue;
		} else if (u->phase == P_CHECKPOINT) {
			obj_init(o, "checkpoint");
			o->content_type = "text/plain; charset=utf-8";
			o->rc = cs_remote_key_checkpoint(u->cfg, cs_store_station(u->st), u->tree,
			    o->key, sizeof(o->key));
			memcpy(o->sha256, u->cp_sha, 32);
			cs__hex(o->sha256, 32, o->hex);
			o->size = u->cp_size;
			o->tree_size = u->tree;
			o->records_from = u->done;
			o->fd = u->cp_fd;
			u->cp_fd = -1;
			u->phase = P_DONE;
		} else {
			break;
		}
		if (o->rc < 0) {
			if (o->fd >= 0)
				close(o->fd);
			o->fd = -1;
			if (strcmp(o->kind, "record") == 0 || strcmp(o->kind, "identity") == 0)
				u->records_failed = 1;
		} else {
			u->outstanding++;
		}
		k++;
	}
	if (rc < 0) {
		for (size_t i = 0; i < k; i++)
			if (objs[i].fd >= 0)
				close(objs[i].fd);
		return rc;
	}
	*n = k;
	*finished = u->phase == P_DONE && u->outstanding == 0;
	return 0;
}

int
cs_upload_result(struct cs_upload *u, const struct cs_upload_obj *o,
    const struct cs_remote_result *res)
{
	int blob = strcmp(o->kind, "blob") == 0 || strcmp(o->kind, "derivative") == 0;

	if (u->outstanding > 0)
		u->outstanding--;
	if (res->rc != 0) {
		if (strcmp(o->kind, "record") == 0 || strcmp(o->kind, "identity") == 0)
			u->records_failed = 1;
		return 0;
	}
	if (blob) {
		if (u->backlog > 0)
			u->backlog--;
		u->backlog_bytes -= o->size < u->backlog_bytes ? o->size : u->backlog_bytes;
	}
	if (blob || strcmp(o->kind, "checkpoint") == 0) {
		struct cs_replica rp = {o->kind, o->id, u->remote, res->key, res->version_id,
		    o->hex, o->size, res->etag, res->lock_mode, res->retain_until, res->skipped,
		    o->tree_size, o->records_from, o->derivative};
		int rc = cs_replica_record(u->st, &rp, NULL);
		uint64_t hold = 0;
		if (rc == 0 && blob)
			u->blob_events++;
		/* a held item's new copy wants S3 legal hold too (cs_upload_take_held) */
		if (rc == 0 && blob && cs_hold_of_item(u->st, o->id, &hold) == 0 && hold > 0) {
			if (u->held == NULL)
				u->held = json_object();
			if (u->held == NULL ||
			    json_object_set_new(u->held, o->id, json_integer((json_int_t)hold)) < 0)
				rc = -ENOMEM;
		}
		return rc < 0 ? rc : 1;
	}
	return 0;
}

void
cs_upload_backlog(const struct cs_upload *u, size_t *items, uint64_t *bytes)
{
	*items = u->backlog;
	*bytes = u->backlog_bytes;
}

int
cs_upload_no_checkpoint(const struct cs_upload *u)
{
	return u->no_checkpoint;
}

json_t *
cs_upload_take_held(struct cs_upload *u)
{
	json_t *h = u->held;

	u->held = NULL;
	return h;
}
