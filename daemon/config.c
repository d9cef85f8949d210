/*
 * The INI configuration of custosd. Sections and keys:
 *   [store]  root = DIR, station = NAME, reserve = N[K|M|G],
 *            orphans_max_age = N[s|m|h|d], orphans_max_size = N[K|M|G|T]
 *   [inbox]  dir = DIR            (repeat for several upload directories)
 *   [docks]  root = DIR, pattern = PATTERN (repeatable),
 *            recorder_utc_offset = +08:00
 *   [ingest] settle_seconds = N, concurrency = N, rescan_seconds = N,
 *            max_file_size = N[K|M|G], release = keep|delete,
 *            release_policy = local|remote
 *   [control] socket = PATH, socket_mode = 0660 (octal)
 *   [roles]  USER = ROLE          (USER a name or a uid; ROLE archivist, legal,
 *            reviewer, auditor, officer, admin or head)
 *   [access] view_free, approver, filers, markers, readers, conclusive =
 *            comma-separated roles (kinds for conclusive); approval_period = N[d]
 *   [retention] holders, approvers = comma-separated roles; approvals = N;
 *            grace = N[s|m|h|d]; plan_interval = N[s|m|h|d];
 *            class.NAME = period=N(d|y)|permanent from=closure|recording
 *            [category=CATEGORY] (one line per class)
 *   [log]    level = error|warning|info|debug
 *   [fixity] enabled = yes|no, rate = N[K|M|G] (bytes per second),
 *            period = N[s|m|h|d]
 *   [media]  enabled = yes|no, probe = PATH (the worker custos-probe),
 *            timeout = N[s|m|h|d], memory = N[K|M|G]
 *   [remote] config = PATH (a file with a [remote] section), or the keys of
 *            custos/remote.h here (read by cs_remote_config_load)
 *   [media.policy] FORMAT = keep|preserve-ffv1|preserve-h264 (a container,
 *            a codec or *), access_height = N (custos/media.h)
 * Unknown sections or keys are errors: a typo must not be silently ignored.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "custos/media.h"
#include "custos/orphans.h"
#include "custos/recorder.h"

struct load {
	struct cs_config *c;
	char *err;
	size_t errn;
	int oom; /* a value could not be kept for lack of memory */
};

void
cs_config_init(struct cs_config *c)
{
	memset(c, 0, sizeof(*c));
	c->settle_ms = 2000;
	c->concurrency = 2;
	c->rescan_s = 60;
	c->log_level = 2;
	c->reserve = (uint64_t)256 << 20;
	c->recorder_utc_offset_min = 8 * 60;
	c->orphans_max_age_s = CS_ORPHANS_MAX_AGE_DEFAULT;
	c->orphans_max_bytes = CS_ORPHANS_MAX_BYTES_DEFAULT;
	c->fixity_enabled = 1;
	c->fixity_rate = (uint64_t)20 << 20;
	c->fixity_period_s = 30 * 86400;
	c->media_enabled = 1;
	c->media_timeout_s = 120;
	c->media_memory = (uint64_t)1 << 30;
	c->approval_period_s = 30 * 86400;
	c->socket_mode = 0660;
	c->approvals = 2;
	c->grace_s = 7 * 86400;
	c->plan_interval_s = 86400;
}

void
cs_config_fini(struct cs_config *c)
{
	free(c->store);
	free(c->station);
	free(c->docks);
	free(c->socket);
	free(c->media_probe);
	free(c->remote_config);
	free(c->media_policy);
	for (size_t i = 0; i < c->n_inboxes; i++)
		free(c->inboxes[i]);
	for (size_t i = 0; i < c->n_patterns; i++)
		free(c->patterns[i]);
	for (size_t i = 0; i < c->n_roles; i++) {
		free(c->role_user[i]);
		free(c->role_name[i]);
	}
	for (size_t i = 0; i < 6; i++)
		free(c->access[i]);
	for (size_t i = 0; i < 2; i++)
		free(c->retention[i]);
	for (size_t i = 0; i < c->n_classes; i++) {
		free((char *)c->classes[i].name);
		free((char *)c->classes[i].category);
	}
	free(c->classes);
	memset(c, 0, sizeof(*c));
}

static int
parse_uint(const char *v, uint64_t max, uint64_t *out, int allow_suffix)
{
	char *end;
	unsigned long long n;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (allow_suffix && *end != '\0' && end[1] == '\0') {
		unsigned shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 :
		    *end == 'G' || *end == 'g' ? 30 : *end == 'T' || *end == 't' ? 40 : 0;
		if (shift == 0 || n > (UINT64_MAX >> shift))
			return -1;
		n <<= shift;
		end++;
	}
	if (*end != '\0' || n > max)
		return -1;
	*out = n;
	return 0;
}

/* A duration: a whole number with s, m, h or d (seconds without). */
static int
parse_duration(const char *v, uint64_t *out)
{
	size_t len = strlen(v);
	char num[24];
	uint64_t n, unit = 1;
	char last = len > 0 ? v[len - 1] : '\0';

	if (last == 's' || last == 'm' || last == 'h' || last == 'd') {
		unit = last == 's' ? 1 : last == 'm' ? 60 : last == 'h' ? 3600 : 86400;
		len--;
	}
	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, v, len);
	num[len] = '\0';
	/* at most about 100 years: the count stays far from overflow in milliseconds */
	if (parse_uint(num, (uint64_t)36500 * 86400 / unit, &n, 0) < 0)
		return -1;
	*out = n * unit;
	return 0;
}

static int
set_str(struct load *l, char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	if (*dst == NULL)
		l->oom = 1;
	return *dst != NULL;
}

const char *const cs_config_access_keys[6] = {"view_free", "approver", "filers", "markers",
	"readers", "conclusive"};

#define ROLES "archivist, legal, reviewer, auditor, officer, admin, head"

static int
role_known(const char *r)
{
	static const char *const roles[] = {"archivist", "legal", "reviewer", "auditor",
		"officer", "admin", "head"};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(r, roles[i]) == 0)
			return 1;
	return 0;
}

/* 1 if `list` is roles separated by commas (spaces allowed around them). */
static int
roles_known(const char *list)
{
	char buf[256], *save = NULL, *w;

	if (strlen(list) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
		while (*w == ' ')
			w++;
		for (size_t n = strlen(w); n > 0 && w[n - 1] == ' '; n--)
			w[n - 1] = '\0';
		if (!role_known(w))
			return 0;
	}
	return 1;
}

void
cs_config_swap_access(struct cs_config *a, struct cs_config *b)
{
	struct cs_config t;

	memcpy(t.role_user, a->role_user, sizeof(t.role_user));
	memcpy(t.role_name, a->role_name, sizeof(t.role_name));
	memcpy(t.access, a->access, sizeof(t.access));
	t.n_roles = a->n_roles;
	t.approval_period_s = a->approval_period_s;
	memcpy(a->role_user, b->role_user, sizeof(t.role_user));
	memcpy(a->role_name, b->role_name, sizeof(t.role_name));
	memcpy(a->access, b->access, sizeof(t.access));
	a->n_roles = b->n_roles;
	a->approval_period_s = b->approval_period_s;
	memcpy(b->role_user, t.role_user, sizeof(t.role_user));
	memcpy(b->role_name, t.role_name, sizeof(t.role_name));
	memcpy(b->access, t.access, sizeof(t.access));
	b->n_roles = t.n_roles;
	b->approval_period_s = t.approval_period_s;
	memcpy(t.retention, a->retention, sizeof(t.retention));
	memcpy(a->retention, b->retention, sizeof(t.retention));
	memcpy(b->retention, t.retention, sizeof(t.retention));
	t.classes = a->classes;
	a->classes = b->classes;
	b->classes = t.classes;
	t.n_classes = a->n_classes;
	a->n_classes = b->n_classes;
	b->n_classes = t.n_classes;
	t.approvals = a->approvals;
	a->approvals = b->approvals;
	b->approvals = t.approvals;
	t.grace_s = a->grace_s;
	a->grace_s = b->grace_s;
	b->grace_s = t.grace_s;
	t.plan_interval_s = a->plan_interval_s;
	a->plan_interval_s = b->plan_interval_s;
	b->plan_interval_s = t.plan_interval_s;
}

const char *
cs_config_role(const struct cs_config *c, const char *name, long uid)
{
	char num[24];

	snprintf(num, sizeof(num), "%ld", uid);
	for (size_t i = 0; i < c->n_roles; i++)
		if ((name != NULL && strcmp(c->role_user[i], name) == 0) ||
		    strcmp(c->role_user[i], num) == 0)
			return c->role_name[i];
	return NULL;
}

#define BAD(...)                                                                             \
	do {                                                                                 \
		if (l->err[0] == '\0') /* inih reports the first error's line */            \
			snprintf(l->err, l->errn, __VA_ARGS__);                              \
		return 0;                                                                    \
	} while (0)

/* One setting of [retention]: 1, or 0 with l->err set (or l->oom). */
static int
retention_setting(struct load *l, const char *name, const char *value)
{
	struct cs_config *c = l->c;
	struct cs_retention_class k, *more;
	char why[200], *nm;
	uint64_t n;
	int rc;

	if (strcmp(name, "holders") == 0 || strcmp(name, "approvers") == 0) {
		if (!roles_known(value))
			BAD("%s must list roles among %s, not '%s'", name, ROLES, value);
		return set_str(l, &c->retention[name[0] == 'a'], value);
	}
	if (strcmp(name, "approvals") == 0) {
		if (parse_uint(value, 16, &n, 0) < 0 || n == 0)
			BAD("approvals must be a number of different users from 1 to 16, not '%s'",
			    value);
		c->approvals = (unsigned)n;
		return 1;
	}
	if (strcmp(name, "grace") == 0 || strcmp(name, "plan_interval") == 0) {
		if (parse_duration(value, &n) < 0 || (n == 0 && name[0] == 'p'))
			BAD("%s must be a duration such as 7d or 12h%s, not '%s'", name,
			    name[0] == 'g' ? " (0: none)" : "", value);
		*(name[0] == 'g' ? &c->grace_s : &c->plan_interval_s) = n;
		return 1;
	}
	if (strncmp(name, "class.", 6) != 0)
		BAD("unknown setting '%s' in [retention] (holders, approvers, approvals, grace, "
		    "plan_interval, class.NAME)",
		    name);
	nm = (char *)name + 6;
	if (*nm == '\0' || strspn(nm, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                               "0123456789_-") != strlen(nm))
		BAD("'%s': a class is named with letters, digits, - and _ (class.traffic)", name);
	for (size_t i = 0; i < c->n_classes; i++)
		if (strcmp(c->classes[i].name, nm) == 0)
			BAD("class '%s' is given twice", nm);
	rc = cs_retention_class_parse(value, &k, why, sizeof(why));
	if (rc == -ENOMEM) {
		l->oom = 1;
		return 0;
	}
	if (rc < 0)
		BAD("class '%s': %s", nm, why);
	more = realloc(c->classes, (c->n_classes + 1) * sizeof(*more));
	k.name = strdup(nm);
	if (more != NULL)
		c->classes = more;
	if (more == NULL || k.name == NULL) {
		free((char *)k.name);
		free((char *)k.category);
		l->oom = 1;
		return 0;
	}
	c->classes[c->n_classes++] = k;
	return 1;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct load *l = user;
	struct cs_config *c = l->c;
	uint64_t n;

	if (value[0] == '\0')
		BAD("'%s' has no value", name);
	if (strcmp(section, "store") == 0) {
		if (strcmp(name, "root") == 0)
			return set_str(l, &c->store, value);
		if (strcmp(name, "station") == 0)
			return set_str(l, &c->station, value);
		if (strcmp(name, "reserve") == 0) {
			if (parse_uint(value, UINT64_MAX, &n, 1) < 0)
				BAD("reserve must be a size such as 256M or 2G (or 0), not '%s'",
				    value);
			c->reserve = n;
			return 1;
		}
		if (strcmp(name, "orphans_max_age") == 0) {
			if (parse_duration(value, &n) < 0)
				BAD("orphans_max_age must be a duration such as 30d, 12h or 0 (no "
				    "limit), not '%s'",
				    value);
			c->orphans_max_age_s = (int64_t)n;
			return 1;
		}
		if (strcmp(name, "orphans_max_size") == 0) {
			if (parse_uint(value, UINT64_MAX, &n, 1) < 0)
				BAD("orphans_max_size must be a size such as 10G or 500M, or 0 (no "
				    "limit), not '%s'",
				    value);
			c->orphans_max_bytes = n;
			return 1;
		}
	} else if (strcmp(section, "inbox") == 0) {
		if (strcmp(name, "dir") == 0) {
			if (c->n_inboxes == CFG_MAX_INBOXES)
				BAD("too many upload directories (at most %d)", CFG_MAX_INBOXES);
			return set_str(l, &c->inboxes[c->n_inboxes++], value);
		}
	} else if (strcmp(section, "docks") == 0) {
		if (strcmp(name, "root") == 0)
			return set_str(l, &c->docks, value);
		if (strcmp(name, "pattern") == 0) {
			char why[200];
			if (c->n_patterns == 16)
				BAD("too many file-name patterns (at most 16)");
			if (cs_pattern_check(value, why, sizeof(why)) < 0)
				BAD("pattern '%s': %s", value, why);
			return set_str(l, &c->patterns[c->n_patterns++], value);
		}
		if (strcmp(name, "recorder_utc_offset") == 0) {
			int h, m;
			char sign, extra;
			if (strlen(value) != 6 || strspn(value + 1, "0123456789") != 2 ||
			    value[3] != ':' || strspn(value + 4, "0123456789") != 2 ||
			    sscanf(value, "%c%2d:%2d%c", &sign, &h, &m, &extra) != 3 ||
			    (sign != '+' && sign != '-') || h > 14 || m > 59)
				BAD("recorder_utc_offset must look like +08:00 or -05:00, not '%s'",
				    value);
			c->recorder_utc_offset_min = (sign == '-' ? -1 : 1) * (h * 60 + m);
			return 1;
		}
	} else if (strcmp(section, "ingest") == 0) {
		if (strcmp(name, "settle_seconds") == 0) {
			if (parse_uint(value, 3600, &n, 0) < 0)
				BAD("settle_seconds must be a whole number from 0 to 3600, "
				    "not '%s'", value);
			c->settle_ms = (unsigned)n * 1000;
			return 1;
		}
		if (strcmp(name, "concurrency") == 0) {
			if (parse_uint(value, 64, &n, 0) < 0 || n == 0)
				BAD("concurrency must be from 1 to 64, not '%s'", value);
			c->concurrency = (unsigned)n;
			return 1;
		}
		if (strcmp(name, "rescan_seconds") == 0) {
			if (parse_uint(value, 86400, &n, 0) < 0 || n == 0)
				BAD("rescan_seconds must be from 1 to 86400, not '%s'", value);
			c->rescan_s = (unsigned)n;
			return 1;
		}
		if (strcmp(name, "max_file_size") == 0) {
			if (parse_uint(value, UINT64_MAX, &n, 1) < 0)
				BAD("max_file_size must be a size such as 8G or 500M, not '%s'",
				    value);
			c->max_size = n;
			return 1;
		}
		if (strcmp(name, "release_policy") == 0) {
			if (strcmp(value, "local") == 0)
				c->release_remote = 0;
			else if (strcmp(value, "remote") == 0)
				c->release_remote = 1;
			else
				BAD("release_policy must be 'local' or 'remote', not '%s'", value);
			return 1;
		}
		if (strcmp(name, "release") == 0) {
			if (strcmp(value, "keep") == 0)
				c->release_delete = 0;
			else if (strcmp(value, "delete") == 0)
				c->release_delete = 1;
			else
				BAD("release must be 'keep' or 'delete', not '%s'", value);
			return 1;
		}
	} else if (strcmp(section, "control") == 0) {
		if (strcmp(name, "socket") == 0)
			return set_str(l, &c->socket, value);
		if (strcmp(name, "socket_mode") == 0) {
			char *end;
			unsigned long m = strtoul(value, &end, 8);
			if (*end != '\0' || value[0] < '0' || value[0] > '7' || m > 0777)
				BAD("socket_mode must be octal permissions such as 0660 or 0666, "
				    "not '%s'",
				    value);
			c->socket_mode = (unsigned)m;
			return 1;
		}
	} else if (strcmp(section, "roles") == 0) {
		if (!role_known(value))
			BAD("the role of '%s' must be one of %s, not '%s'", name, ROLES, value);
		if (c->n_roles == CFG_MAX_ROLES)
			BAD("too many users in [roles] (at most %d)", CFG_MAX_ROLES);
		for (size_t i = 0; i < c->n_roles; i++)
			if (strcmp(c->role_user[i], name) == 0)
				BAD("user '%s' is given a role twice", name);
		if (!set_str(l, &c->role_user[c->n_roles], name))
			return 0;
		if (!set_str(l, &c->role_name[c->n_roles], value)) {
			free(c->role_user[c->n_roles]);
			return 0;
		}
		c->n_roles++;
		return 1;
	} else if (strcmp(section, "access") == 0) {
		if (strcmp(name, "approval_period") == 0) {
			if (parse_duration(value, &n) < 0 || n == 0)
				BAD("approval_period must be a duration such as 30d or 12h, "
				    "not '%s'",
				    value);
			c->approval_period_s = n;
			return 1;
		}
		for (size_t i = 0; i < 6; i++) {
			if (strcmp(name, cs_config_access_keys[i]) != 0)
				continue;
			if (i != 5 && !roles_known(value))
				BAD("%s must list roles among %s, not '%s'", name, ROLES, value);
			return set_str(l, &c->access[i], value);
		}
	} else if (strcmp(section, "retention") == 0) {
		return retention_setting(l, name, value);
	} else if (strcmp(section, "log") == 0) {
		if (strcmp(name, "level") == 0) {
			static const char *const levels[] = {"error", "warning", "info", "debug"};
			for (int i = 0; i < 4; i++)
				if (strcasecmp(value, levels[i]) == 0) {
					c->log_level = i;
					return 1;
				}
			BAD("level must be error, warning, info or debug, not '%s'", value);
		}
	} else if (strcmp(section, "fixity") == 0) {
		if (strcmp(name, "enabled") == 0) {
			if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0)
				c->fixity_enabled = 1;
			else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0)
				c->fixity_enabled = 0;
			else
				BAD("enabled must be 'yes' or 'no', not '%s'", value);
			return 1;
		}
		if (strcmp(name, "rate") == 0) {
			if (parse_uint(value, UINT64_MAX, &n, 1) < 0 || n < 4096)
				BAD("rate must be bytes per second such as 20M or 500K (at least "
				    "4K), not '%s'",
				    value);
			c->fixity_rate = n;
			return 1;
		}
		if (strcmp(name, "period") == 0) {
			if (parse_duration(value, &n) < 0 || n == 0 || n > (uint64_t)3650 * 86400)
				BAD("period must be a duration such as 30d, 12h, 90m or 20s (up to "
				    "3650d), not '%s'",
				    value);
			c->fixity_period_s = n;
			return 1;
		}
	} else if (strcmp(section, "media") == 0) {
		if (strcmp(name, "enabled") == 0) {
			if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0)
				c->media_enabled = 1;
			else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0)
				c->media_enabled = 0;
			else
				BAD("enabled must be 'yes' or 'no', not '%s'", value);
			return 1;
		}
		if (strcmp(name, "probe") == 0) {
			if (value[0] != '/')
				BAD("probe must be an absolute path (of custos-probe), not '%s'",
				    value);
			return set_str(l, &c->media_probe, value);
		}
		if (strcmp(name, "timeout") == 0) {
			if (parse_duration(value, &n) < 0 || n == 0 || n > 86400)
				BAD("timeout must be a duration such as 120s or 10m (up to 1d), "
				    "not '%s'",
				    value);
			c->media_timeout_s = n;
			return 1;
		}
		if (strcmp(name, "memory") == 0) {
			if (parse_uint(value, UINT64_MAX, &n, 1) < 0 || n < ((uint64_t)64 << 20))
				BAD("memory must be a size such as 1G or 512M (at least 64M), "
				    "not '%s'",
				    value);
			c->media_memory = n;
			return 1;
		}
	} else if (strcmp(section, "remote") == 0) {
		/* config = PATH names a remote.conf; any other key is read by custos/remote.h */
		if (strcmp(name, "config") == 0) {
			if (value[0] != '/')
				BAD("config must be an absolute path (of a file with a [remote] "
				    "section), not '%s'",
				    value);
			return set_str(l, &c->remote_config, value);
		}
		c->remote_inline = 1;
		return 1;
	} else if (strcmp(section, "media.policy") == 0) {
		char entry[256], why[200], *all;
		size_t len = c->media_policy != NULL ? strlen(c->media_policy) : 0;
		if (strpbrk(name, "= ,\t") != NULL ||
		    snprintf(entry, sizeof(entry), "%s=%s", name, value) >= (int)sizeof(entry))
			BAD("'%s' is not a format name (a container such as avi or a codec such "
			    "as mjpeg, or *)",
			    name);
		if (cs_media_policy_check(entry, why, sizeof(why)) < 0)
			BAD("%s", why);
		if (len > 65536)
			BAD("[media.policy] has too many entries");
		all = realloc(c->media_policy, len + strlen(entry) + 2);
		if (all == NULL) {
			l->oom = 1;
			return 0;
		}
		snprintf(all + len, strlen(entry) + 2, "%s%s", len > 0 ? " " : "", entry);
		if (len == 0)
			snprintf(all, strlen(entry) + 1, "%s", entry);
		c->media_policy = all;
		return 1;
	} else {
		BAD("unknown section [%s]", section);
	}
	BAD("unknown setting '%s' in [%s]", name, section);
#undef BAD
}

int
cs_config_load(struct cs_config *c, const char *path, char *err, size_t errn)
{
	struct load l = {c, err, errn, 0};
	int rc;

	err[0] = '\0';
	rc = ini_parse(path, handler, &l);
	if (rc == -1) {
		snprintf(err, errn, "%s: cannot open: %s", path, strerror(errno));
		return errno == ENOMEM ? -ENOMEM : -1;
	}
	if (rc == -2 || l.oom) {
		snprintf(err, errn, "%s: out of memory while reading it", path);
		return -ENOMEM;
	}
	if (rc > 0) {
		char msg[512];
		if (err[0] == '\0')
			snprintf(err, errn, "%s: line %d: not a 'key = value' line or a [section]",
			    path, rc);
		else {
			snprintf(msg, sizeof(msg), "%s: line %d: %s", path, rc, err);
			snprintf(err, errn, "%s", msg);
		}
		return -1;
	}
	return 0;
}

int
cs_config_check(const struct cs_config *c, char *err, size_t errn)
{
	if (c->store == NULL) {
		snprintf(err, errn, "no store: set root in [store] or give --store DIR");
		return -1;
	}
	if (c->n_inboxes == 0 && c->docks == NULL) {
		snprintf(err, errn,
		    "nothing to watch: give at least one upload directory ([inbox] dir, --inbox) "
		    "or a dock root ([docks] root, --docks)");
		return -1;
	}
	if (c->remote_config != NULL && c->remote_inline) {
		snprintf(err, errn, "[remote] holds either config = PATH or the remote's settings, "
		                    "not both");
		return -1;
	}
	if (c->release_remote && c->remote_config == NULL && !c->remote_inline) {
		snprintf(err, errn, "release_policy = remote needs a remote: add a [remote] "
		                    "section (see custosd(8), REMOTE)");
		return -1;
	}
	for (size_t i = 0; i < c->n_inboxes; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->inboxes[i], c->inboxes[j]) == 0) {
				snprintf(err, errn, "upload directory %s is listed twice",
				    c->inboxes[i]);
				return -1;
			}
	return 0;
}

