/*
 * custos retention approve|cancel|plans|show|plan --write|execute and
 * custos destruction-register: purge plans and the permanent register of
 * what was destroyed. All but `execute` speak to custosd through its
 * control socket (custosd knows the user by his uid and gives him his
 * role); `execute` is the store user's, in the foreground, when no custosd
 * runs (custosd executes approved plans itself once their grace is over).
 * Every decision is lib/'s (lib/purge.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/remote_purge.h"
#include "custos/replica.h"
#include "custos/retention.h"
#include "cli.h"

static const char usage_purge[] =
    "usage: custos retention plans [--socket PATH] [--json]\n"
    "       custos retention show PLAN [--socket PATH] [--json]\n"
    "       custos retention plan --write [--socket PATH] [--json]\n"
    "       custos retention approve PLAN [--socket PATH] [--json]\n"
    "       custos retention cancel PLAN --reason R [--socket PATH] [--json]\n"
    "       custos retention execute PLAN [--config FILE] [--store DIR]\n"
    "\n"
    "A purge plan lists the items whose retention period is over (custosd writes\n"
    "one every [retention] plan_interval when items are due; `plan --write` asks\n"
    "for one now and prints its number, 0 when nothing is due). It executes only\n"
    "after `approve` by [retention] approvals different users of an approving\n"
    "role ([retention] approvers: head, admin by default), and then only once\n"
    "the grace period after the last approval is over ([retention] grace, 7 days\n"
    "by default). Until it runs any approver can `cancel` it, with a reason.\n"
    "custosd executes an approved plan itself after its grace; `execute` runs one\n"
    "in the foreground as the store's user when custosd is stopped, and resumes\n"
    "one cut short; the objects of purged items at the remote go too, by the\n"
    "[remote] settings of --config FILE or <store>/remote.conf (without either,\n"
    "a plan with items at a remote is refused: custosd's settings are its own).\n"
    "Each purged item keeps its record and ledger history: its\n"
    "tombstone is the destruction register's entry (custos destruction-register);\n"
    "its stored bytes and derivatives are removed, unless another item still\n"
    "needs the same bytes. An item put on hold, in a case opened again or used\n"
    "as evidence since the plan was made is skipped, and named in the plan.\n"
    "Exit status: 0 done, 1 refused by a rule, 2 bad request, 3 custosd or the\n"
    "store failed.\n";

static const char usage_register[] =
    "usage: custos destruction-register [--csv | --json] [--socket PATH | --store DIR]\n"
    "\n"
    "Prints the destruction register: one entry for every item a purge\n"
    "destroyed, oldest first: the ledger entry of its tombstone, when, the item,\n"
    "its SHA-256 and size, its case files, its retention class and the dates\n"
    "counted, the plan and who approved it, what became of the local bytes and\n"
    "of the remote objects. The register is never purged. --csv writes RFC 4180\n"
    "CSV with a header; --json the entries as they are in the ledger. Given a\n"
    "store (--store DIR or $CUSTOS_STORE, and no --socket) its own user reads it\n"
    "directly (a rebuilt station, custosd stopped); else custosd is asked.\n";

/* A plan number operand; -1 if `s` is not one. */
static long long
plan_number(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = s != NULL ? strtoll(s, &end, 10) : -1;
	return s == NULL || errno != 0 || *end != '\0' || s[0] < '1' || s[0] > '9' ? -1 : v;
}

static const char *
sv(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "-";
}

static const char *
actor_name(json_t *o)
{
	return sv(json_object_get(o, "actor"), "name");
}

static void
print_plan_line(json_t *p)
{
	printf("plan %lld  %-9s  made %s  items %zu  approvals %zu/%lld", (long long)
	    json_integer_value(json_object_get(p, "plan")), sv(p, "state"), sv(p, "time"),
	    json_array_size(json_object_get(p, "items")),
	    json_array_size(json_object_get(p, "approvals")),
	    (long long)json_integer_value(json_object_get(p, "approvals_needed")));
	if (json_object_get(p, "executes_at") != NULL)
		printf("  executes at %s", sv(p, "executes_at"));
	putchar('\n');
}

static void
print_plan(json_t *p)
{
	json_t *v, *x;
	size_t i;

	print_plan_line(p);
	json_array_foreach(json_object_get(p, "items"), i, v)
	{
		printf("  %s  class %s from %s %s, due %s  cases", sv(v, "id"), sv(v, "class"),
		    sv(v, "from"), sv(v, "since"), sv(v, "due"));
		json_t *c;
		size_t j;
		json_array_foreach(json_object_get(v, "cases"), j, c)
		{
			putchar(' ');
			print_cell(stdout, json_string_value(c), 0);
		}
		putchar('\n');
	}
	json_array_foreach(json_object_get(p, "approvals"), i, v)
		printf("  approved %s by %s\n", sv(v, "time"), actor_name(v));
	x = json_object_get(p, "cancelled");
	if (x != NULL) {
		printf("  cancelled %s by %s: ", sv(x, "time"), actor_name(x));
		print_cell(stdout, sv(x, "reason"), 0);
		putchar('\n');
	}
	json_array_foreach(json_object_get(p, "skipped"), i, v)
		printf("  skipped %s: %s\n", sv(v, "id"), sv(v, "why"));
	x = json_object_get(p, "done");
	if (x != NULL)
		printf("  done %s: %lld purged\n", sv(x, "time"),
		    (long long)json_integer_value(json_object_get(p, "purged")));
}

static void
progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	fprintf(stderr, "\r%s: purging: %llu of %llu items", prog, (unsigned long long)done,
	    (unsigned long long)total);
	if (done == total)
		fputc('\n', stderr);
}

/* The remote the purged items' objects are removed from (custos/remote_purge.h). */
struct at_remote {
	struct cs_store *st;
	struct cs_remote_config cfg;
};

static int
remote_hook(void *ctx, const json_t *entry, json_t **outcome)
{
	struct at_remote *r = ctx;

	return cs_remote_purge_entry(&r->cfg, r->st, entry, outcome);
}

/* 1 if an item of plan `plan` has a copy at a remote (a replica event), else 0. */
static int
plan_at_remote(struct cs_store *st, long long plan)
{
	json_t *p = NULL, *v, *reps;
	size_t i;
	int yes = 0;

	if (cs_purge_plan_get(st, (uint64_t)plan, &p) < 0)
		return 0;
	json_array_foreach(json_object_get(p, "items"), i, v)
	{
		reps = NULL;
		if (!yes && cs_replica_list(st, sv(v, "id"), &reps) == 0)
			yes = json_array_size(reps) > 0;
		json_decref(reps);
	}
	json_decref(p);
	return yes;
}

/*
 * The [remote] settings for the purge: --config FILE, else <store>/remote.conf
 * if there is one. 1 loaded, 0 none, < 0 an exit code's negative (printed).
 */
static int
remote_settings(const struct opts *o, const char *config, struct cs_remote_config *cfg)
{
	char buf[4096], why[1024];
	const char *dir = store_dir(o);
	int rc;

	if (config == NULL && dir != NULL) {
		snprintf(buf, sizeof(buf), "%s/remote.conf", dir);
		if (access(buf, F_OK) == 0)
			config = buf;
	}
	if (config == NULL)
		return 0;
	rc = cs_remote_config_load(cfg, config, why, sizeof(why));
	if (rc < 0) {
		errmsg("%s: %s", config, why[0] ? why : cs_strerror(rc));
		cs_remote_config_fini(cfg);
		return -EXIT_USAGE;
	}
	return 1;
}

/* custos retention execute PLAN: the store user's run, in the foreground. */
static int
execute(struct opts *o, long long plan, const char *config)
{
	struct cs_purge_hooks hooks = {NULL, isatty(2) ? progress : NULL, NULL};
	struct at_remote r;
	struct cs_store *st;
	json_t *p = NULL;
	const char *rule = NULL;
	int code = EXIT_OK, rc, have;

	memset(&r, 0, sizeof(r));
	have = remote_settings(o, config, &r.cfg);
	if (have < 0)
		return -have;
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL) {
		if (have)
			cs_remote_config_fini(&r.cfg);
		return code;
	}
	r.st = st;
	if (have) {
		hooks.remote = remote_hook;
		hooks.ctx = &r;
	} else if (plan_at_remote(st, plan)) {
		errmsg("items of plan %lld have copies at a remote, and no [remote] settings "
		       "are given: name them with --config FILE (as for custos push), or let "
		       "custosd execute the plan",
		    plan);
		cs_store_close(st);
		return EXIT_USAGE;
	}
	rc = cs_purge_execute(st, (uint64_t)plan, &hooks, &rule);
	if (have)
		cs_remote_config_fini(&r.cfg);
	if (rc == CS_EDENIED) {
		(void)cs_purge_plan_get(st, (uint64_t)plan, &p);
		if (p != NULL && json_object_get(p, "executes_at") != NULL &&
		    strcmp(sv(p, "state"), "approved") == 0)
			errmsg("plan %lld runs only after its grace period: at %s", plan,
			    sv(p, "executes_at"));
		else
			errmsg("plan %lld is %s: only a plan approved by enough approvers and "
			       "past its grace runs (`custos retention show %lld`)",
			    plan, p != NULL ? sv(p, "state") : "unknown", plan);
		code = EXIT_PROBLEM;
	} else if (rc == CS_ENOTFOUND) {
		errmsg("no purge plan %lld (`custos retention plans` lists them)", plan);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("plan %lld could not be completed: %s; run `custos retention execute %lld` "
		       "again to resume it",
		    plan, cs_strerror(rc), plan);
		code = EXIT_STORE;
	} else if (cs_purge_plan_get(st, (uint64_t)plan, &p) == 0) {
		if (o->json)
			print_json(p);
		else
			print_plan(p);
	}
	json_decref(p);
	cs_store_close(st);
	return code;
}

int
cmd_purge(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *reason = NULL, *config = NULL, *sub;
	int write = 0, rc;
	long long plan = -1;
	json_t *req = NULL, *ans, *v;
	size_t i;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("reason", 0, CLI_STRING, &reason), CLI_OPT("write", 0, CLI_FLAG, &write),
	    CLI_OPT("config", 0, CLI_STRING, &config), CLI_END};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_purge, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	sub = argv[1];
	argv[1] = argv[0];
	rc = cli_parse(argc - 1, argv + 1, own, usage_purge, o);
	if (rc >= 0)
		return rc;
	optind++;
	if (optind + 1 == argc)
		plan = plan_number(argv[optind]);
	if ((strcmp(sub, "approve") == 0 || strcmp(sub, "cancel") == 0 ||
	        strcmp(sub, "show") == 0 || strcmp(sub, "execute") == 0) &&
	    plan < 0) {
		errmsg("`custos retention %s` names the plan by its number "
		       "(custos retention plans)", sub);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "execute") == 0)
		return execute(o, plan, config);
	if (strcmp(sub, "approve") == 0)
		req = json_pack("{s:s, s:I}", "cmd", "retention-approve", "plan",
		    (json_int_t)plan);
	else if (strcmp(sub, "cancel") == 0 && reason != NULL)
		req = json_pack("{s:s, s:I, s:s}", "cmd", "retention-cancel", "plan",
		    (json_int_t)plan, "reason", reason);
	else if (strcmp(sub, "cancel") == 0) {
		errmsg("a cancellation says why: --reason R");
		return EXIT_USAGE;
	} else if (strcmp(sub, "show") == 0)
		req = json_pack("{s:s, s:I}", "cmd", "retention-show", "plan", (json_int_t)plan);
	else if (strcmp(sub, "plans") == 0 && optind == argc)
		req = json_pack("{s:s}", "cmd", "retention-plans");
	else if (strcmp(sub, "plan") == 0 && write && optind == argc)
		req = json_pack("{s:s}", "cmd", "retention-plan-write");
	else {
		errmsg("unknown `custos retention` command or operands: '%s'", sub);
		fputs(usage_purge, stderr);
		return EXIT_USAGE;
	}
	rc = socket_call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (strcmp(sub, "plans") == 0) {
		if (o->json)
			print_json(json_object_get(ans, "plans"));
		json_array_foreach(o->json ? NULL : json_object_get(ans, "plans"), i, v)
			print_plan_line(v);
	} else if (strcmp(sub, "plan") == 0) {
		if (o->json)
			print_json(ans);
		else if (json_integer_value(json_object_get(ans, "plan")) == 0)
			printf("nothing is due that is in no plan already: no plan written\n");
		else
			printf("plan %lld written; it waits for its approvals\n",
			    (long long)json_integer_value(json_object_get(ans, "plan")));
	} else if (o->json) {
		print_json(json_object_get(ans, "plan") != NULL ? json_object_get(ans, "plan")
		                                                 : ans);
	} else if (strcmp(sub, "show") == 0) {
		print_plan(json_object_get(ans, "plan"));
	} else {
		v = json_object_get(ans, "plan");
		printf("plan %lld %s", plan, sub[0] == 'a' ? "approved by you" : "cancelled");
		if (sub[0] == 'a' && strcmp(sv(v, "state"), "approved") == 0)
			printf("; it executes at %s unless cancelled before", sv(v, "executes_at"));
		else if (sub[0] == 'a')
			printf("; %zu of %lld approvals",
			    json_array_size(json_object_get(v, "approvals")),
			    (long long)json_integer_value(json_object_get(v, "approvals_needed")));
		putchar('\n');
	}
	json_decref(ans);
	return EXIT_OK;
}

/* 1 if `custos retention SUB ...` is one of the purge commands (cmd_purge). */
int
purge_is_sub(int argc, char **argv)
{
	static const char *const subs[] = {"approve", "cancel", "plans", "show", "execute"};

	if (argc < 2)
		return 0;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i]) == 0)
			return 1;
	for (int i = 2; strcmp(argv[1], "plan") == 0 && i < argc; i++)
		if (strcmp(argv[i], "--write") == 0)
			return 1;
	return 0;
}

/* The strings of array `a` (or each element's `field`) joined by ';', malloc'd. */
static char *
joined(json_t *a, const char *field)
{
	size_t n = 1, off = 0, i;
	json_t *v;
	char *s;

	json_array_foreach(a, i, v)
		n += strlen(field != NULL ? sv(v, field) : json_string_value(v) != NULL ?
		                                          json_string_value(v) : "") + 1;
	s = malloc(n);
	if (s == NULL)
		return NULL;
	json_array_foreach(a, i, v)
	{
		const char *t = field != NULL ? sv(v, field) : json_string_value(v);
		size_t l = t != NULL ? strlen(t) : 0;
		if (i > 0)
			s[off++] = ';';
		memcpy(s + off, t != NULL ? t : "", l);
		off += l;
	}
	s[off] = '\0';
	return s;
}

static void
register_row(json_t *e, int csv)
{
	char seq[24], size[24], plan[24], *cases, *approvers, *remote;
	const char *f[13];

	snprintf(seq, sizeof(seq), "%lld",
	    (long long)json_integer_value(json_object_get(e, "seq")));
	snprintf(size, sizeof(size), "%lld",
	    (long long)json_integer_value(json_object_get(e, "size")));
	snprintf(plan, sizeof(plan), "%lld",
	    (long long)json_integer_value(json_object_get(e, "plan")));
	cases = joined(json_object_get(e, "cases"), NULL);
	approvers = joined(json_object_get(e, "approvers"), "name");
	remote = json_object_get(e, "remote") != NULL ?
	    json_dumps(json_object_get(e, "remote"), JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	f[0] = seq;
	f[1] = sv(e, "time");
	f[2] = sv(e, "id");
	f[3] = sv(e, "sha256");
	f[4] = size;
	f[5] = cases != NULL ? cases : "";
	f[6] = sv(e, "class");
	f[7] = sv(e, "since");
	f[8] = sv(e, "due");
	f[9] = plan;
	f[10] = approvers != NULL ? approvers : "";
	f[11] = sv(e, "local");
	f[12] = remote != NULL ? remote : "";
	if (cases == NULL || approvers == NULL)
		output_failed = 1;
	if (csv) {
		csv_row(stdout, f, 13);
	} else {
		printf("#%s  %s  %s  %s  %s bytes  cases ", f[0], f[1], f[2], f[3], f[4]);
		print_cell(stdout, f[5], 0);
		printf("  class %s  plan %s  approved by %s  local %s%s%s\n", f[6], f[9], f[10],
		    f[11], remote != NULL ? "  remote " : "", f[12]);
	}
	free(cases);
	free(approvers);
	free(remote);
}

int
cmd_destruction_register(int argc, char **argv, struct opts *o)
{
	static const char *const head[] = {"entry", "time", "id", "sha256", "size", "cases",
	    "class", "since", "due", "plan", "approvers", "local", "remote"};
	const char *sock = NULL;
	int csv = 0, rc;
	json_t *ans, *e;
	size_t i;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("csv", 0, CLI_FLAG, &csv), CLI_END};

	rc = cli_parse(argc, argv, own, usage_register, o);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fputs(usage_register, stderr);
		return EXIT_USAGE;
	}
	if (csv && o->json) {
		errmsg("give --json or --csv, not both");
		return EXIT_USAGE;
	}
	if (sock != NULL || store_dir(o) == NULL) {
		rc = socket_call(sock, o, json_pack("{s:s}", "cmd", "destruction-register"), &ans);
		if (rc != EXIT_OK)
			return rc;
	} else {
		/* the store's own user (an auditor's copy, a rebuilt station): read it directly */
		struct cs_store *st = open_store(o, CS_OPEN_READ, &rc);
		json_t *reg = NULL;
		if (st == NULL)
			return rc;
		rc = cs_destruction_register(st, &reg);
		cs_store_close(st);
		if (rc < 0) {
			errmsg("the destruction register cannot be read: %s", cs_strerror(rc));
			return EXIT_STORE;
		}
		ans = json_pack("{s:o}", "entries", reg);
		if (ans == NULL) {
			errmsg("out of memory");
			return EXIT_STORE;
		}
	}
	if (o->json) {
		print_json(json_object_get(ans, "entries"));
	} else {
		if (csv)
			csv_row(stdout, head, 13);
		json_array_foreach(json_object_get(ans, "entries"), i, e)
			register_row(e, csv);
		if (!csv && json_array_size(json_object_get(ans, "entries")) == 0 && !o->quiet)
			fprintf(stderr, "%s: nothing has been destroyed\n", prog);
	}
	json_decref(ans);
	return EXIT_OK;
}
