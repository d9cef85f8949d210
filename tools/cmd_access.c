/*
 * custos request, approve, deny, conclusive, view, get, search and
 * register: the commands of users who are not custosd's own user. They
 * speak to custosd through its control socket (custosd knows them by their
 * uid and gives them their role from its configuration); custosd alone
 * opens the store, decides (lib/access.c) and writes the access register.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "custos/bag.h"
#include "custos/csv.h"
#include "custos/error.h"
#include "custos/note.h"
#include "cli.h"

/* One connection to custosd: the stream and what is read but not yet used. */
struct conn {
	int fd;
	char *buf;
	size_t len, cap;
};

/* Connects to --socket, $CUSTOS_SOCKET or STORE/custosd.sock; EXIT_OK or an exit code. */
static int
conn_open(struct conn *c, const char *sock, const struct opts *o)
{
	memset(c, 0, sizeof(*c));
	return cli_connect(sock, o, &c->fd);
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
}

/* Sends `req` (consumed) and reads one answer line into *ans; EXIT_OK or EXIT_STORE. */
static int
conn_call(struct conn *c, json_t *req, json_t **ans)
{
	char *s = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	size_t n = s != NULL ? strlen(s) : 0;
	char *nl;

	json_decref(req);
	*ans = NULL;
	if (s == NULL) {
		errmsg("out of memory");
		return EXIT_STORE;
	}
	s[n] = '\n'; /* json_dumps' NUL becomes the line's end */
	if (send(c->fd, s, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1)) {
		free(s);
		errmsg("cannot send to custosd: %s", strerror(errno));
		return EXIT_STORE;
	}
	free(s);
	while ((nl = c->buf != NULL ? memchr(c->buf, '\n', c->len) : NULL) == NULL) {
		ssize_t r;
		if (c->cap - c->len < 65536) {
			char *nb = realloc(c->buf, c->cap + 131072);
			if (nb == NULL) {
				errmsg("out of memory");
				return EXIT_STORE;
			}
			c->buf = nb;
			c->cap += 131072;
		}
		r = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r <= 0) {
			errmsg("custosd closed the connection without an answer (see its log)");
			return EXIT_STORE;
		}
		c->len += (size_t)r;
	}
	*ans = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);
	c->len -= (size_t)(nl - c->buf) + 1;
	memmove(c->buf, nl + 1, c->len);
	if (*ans == NULL) {
		errmsg("custosd sent an answer that is not JSON");
		return EXIT_STORE;
	}
	return EXIT_OK;
}

/*
 * A refusal or error in `ans`: printed (with its rule), EXIT_PROBLEM for a
 * refusal, EXIT_USAGE for a bad request; EXIT_OK if ans is ok.
 */
static int
answer_error(json_t *ans, const struct opts *o)
{
	const char *rule = json_string_value(json_object_get(ans, "rule"));
	const char *item = json_string_value(json_object_get(ans, "item"));

	if (json_is_true(json_object_get(ans, "ok")))
		return EXIT_OK;
	if (o->json)
		print_json(ans);
	if (rule != NULL)
		errmsg("refused by rule %s: %s%s%s", rule,
		    json_string_value(json_object_get(ans, "error")), item ? ": item " : "",
		    item ? item : "");
	else
		errmsg("%s", json_string_value(json_object_get(ans, "error")));
	return rule != NULL ? EXIT_PROBLEM : EXIT_USAGE;
}

/* One request, one answer: prints a refusal; *ans (ok) is the caller's. */
static int
call(const char *sock, const struct opts *o, json_t *req, json_t **ans)
{
	struct conn c;
	int code = conn_open(&c, sock, o);

	*ans = NULL;
	if (code != EXIT_OK) {
		json_decref(req);
		return code;
	}
	code = conn_call(&c, req, ans);
	conn_close(&c);
	if (code == EXIT_OK && (code = answer_error(*ans, o)) != EXIT_OK) {
		json_decref(*ans);
		*ans = NULL;
	}
	return code;
}

int
socket_call(const char *sock, const struct opts *o, json_t *req, json_t **ans)
{
	return call(sock, o, req, ans);
}

/* --approval REQ: a request number. */
static int
approval_arg(void *target, const char *arg)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno || *end || v < 0 || arg[0] == '\0') {
		errmsg("--approval takes a request number (as `custos request` printed it), not "
		       "'%s'",
		    arg);
		return EXIT_USAGE;
	}
	*(long long *)target = v;
	return 0;
}

/* Sets "key": value on req when value is not NULL (or "key": number >= 0). */
static json_t *
with(json_t *req, const char *key, const char *value)
{
	if (req != NULL && value != NULL && json_object_set_new(req, key, json_string(value)) < 0) {
		json_decref(req);
		return NULL;
	}
	return req;
}

static json_t *
with_num(json_t *req, const char *key, long long v)
{
	if (req != NULL && v >= 0 && json_object_set_new(req, key, json_integer(v)) < 0) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* ---- request / approve / deny / conclusive ---- */

static const char usage_request[] =
    "usage: custos request --case C --action view|copy|export --purpose P [--items ID]...\n"
    "                      [--for KIND --name NAME (--letter REF | --licence N)]\n"
    "                      [--socket PATH] [--json]\n"
    "\n"
    "Files a request to view, copy or export evidence of case file C (all its items,\n"
    "or the --items named) and prints its number. The approving role (custosd's\n"
    "[access] approver, `head` by default) approves or denies it; every access\n"
    "made under the approval cites it (`--approval N`). For an outside requester\n"
    "(no account) an archivist files it: --for police|procuratorate|court with the\n"
    "agency's --letter reference, --for party, or --for lawyer with the lawyer's\n"
    "--licence number. Parties and lawyers receive only items marked conclusive.\n";

int
cmd_request(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *number = NULL, *action = NULL, *purpose = NULL, *kind = NULL;
	const char *name = NULL, *letter = NULL, *licence = NULL, *items[100];
	size_t n_items = 0;
	json_t *req, *ans, *arr;
	int rc;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("case", 0, CLI_STRING, &number), CLI_OPT("action", 0, CLI_STRING, &action),
	    CLI_OPT("purpose", 0, CLI_STRING, &purpose),
	    CLI_LIST_OPT("items", items, 100, &n_items), CLI_OPT("for", 0, CLI_STRING, &kind),
	    CLI_OPT("name", 0, CLI_STRING, &name), CLI_OPT("letter", 0, CLI_STRING, &letter),
	    CLI_OPT("licence", 0, CLI_STRING, &licence), CLI_END};

	rc = cli_parse(argc, argv, own, usage_request, o);
	if (rc >= 0)
		return rc;
	for (; optind < argc && n_items < 100; optind++)
		items[n_items++] = argv[optind]; /* --items ID ID ...: the rest are ids too */
	if (optind < argc) {
		errmsg("a request names at most 100 items: file several, or one for the whole "
		       "case file (no --items)");
		return EXIT_USAGE;
	}
	if (number == NULL || action == NULL || purpose == NULL) {
		fputs(usage_request, stderr);
		return EXIT_USAGE;
	}
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < n_items; i++)
		if (json_array_append_new(arr, json_string(items[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	req = json_pack("{s:s, s:s, s:s, s:s, s:o*}", "cmd", "request", "case", number, "action",
	    action, "purpose", purpose, "items", arr);
	req = with(with(with(with(req, "kind", kind), "name", name), "letter", letter), "licence",
	    licence);
	rc = call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json)
		print_json(ans);
	else
		printf("request %lld filed: %s of %s, waiting for approval\n",
		    (long long)json_integer_value(json_object_get(ans, "request")), action, number);
	json_decref(ans);
	return EXIT_OK;
}

static const char usage_approve[] =
    "usage: custos approve REQ [--until TIME] [--socket PATH] [--json]\n"
    "       custos deny REQ --reason R [--socket PATH] [--json]\n"
    "\n"
    "Approves (until TIME, RFC 3339; by default for custosd's [access]\n"
    "approval_period) or denies request REQ. Only the approving role may, and\n"
    "never for a request of his own.\n";

static int
decide(int argc, char **argv, struct opts *o, int approve)
{
	const char *sock = NULL, *until = NULL, *reason = NULL;
	long long rq = -1;
	json_t *req, *ans;
	int rc;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("until", 0, CLI_STRING, &until), CLI_OPT("reason", 0, CLI_STRING, &reason),
	    CLI_END};

	rc = cli_parse(argc, argv, own, usage_approve, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || (rc = approval_arg(&rq, argv[optind])) != 0) {
		fputs(usage_approve, stderr);
		return EXIT_USAGE;
	}
	if (!approve && reason == NULL) {
		errmsg("a denial gives its reason: --reason R");
		return EXIT_USAGE;
	}
	req = json_pack("{s:s}", "cmd", approve ? "approve" : "deny");
	req = with(with(with_num(req, "request", rq), "until", until), "reason", reason);
	rc = call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json)
		print_json(ans);
	else
		printf("request %lld %s\n", rq, approve ? "approved" : "denied");
	json_decref(ans);
	return EXIT_OK;
}

int
cmd_approve(int argc, char **argv, struct opts *o)
{
	return decide(argc, argv, o, 1);
}

int
cmd_deny(int argc, char **argv, struct opts *o)
{
	return decide(argc, argv, o, 0);
}

static const char usage_conclusive[] =
    "usage: custos conclusive ID --reason R [--not] [--socket PATH] [--json]\n"
    "\n"
    "Marks item ID as conclusive (结论性: one a party or its lawyer may receive with\n"
    "an approval), or with --not takes the mark away. A ledger event; the roles\n"
    "of custosd's [access] markers (legal, admin by default) may.\n";

int
cmd_conclusive(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *reason = NULL;
	int unmark = 0, rc;
	json_t *req, *ans;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("reason", 0, CLI_STRING, &reason), CLI_OPT("not", 0, CLI_FLAG, &unmark),
	    CLI_END};

	rc = cli_parse(argc, argv, own, usage_conclusive, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || reason == NULL) {
		fputs(usage_conclusive, stderr);
		return EXIT_USAGE;
	}
	req = json_pack("{s:s, s:s, s:s, s:b}", "cmd", "conclusive", "id", argv[optind], "reason",
	    reason, "conclusive", !unmark);
	rc = call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json)
		print_json(ans);
	else
		printf("%s %s conclusive\n", argv[optind], unmark ? "is no longer" : "marked");
	json_decref(ans);
	return EXIT_OK;
}

/* ---- view / get ---- */

static const char usage_view[] =
    "usage: custos view ID [--approval REQ] [--purpose P] [--socket PATH] [--json]\n"
    "\n"
    "Shows item ID's record and events through custosd, which writes the view in\n"
    "the access register. Legal staff view with --purpose; others cite an\n"
    "approval of a view request (--approval REQ).\n";

int
cmd_view(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *purpose = NULL;
	long long appr = -1;
	json_t *req, *ans, *e;
	size_t i;
	int rc;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("purpose", 0, CLI_STRING, &purpose),
	    CLI_CALL_OPT("approval", &appr, approval_arg), CLI_END};

	rc = cli_parse(argc, argv, own, usage_view, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		fputs(usage_view, stderr);
		return EXIT_USAGE;
	}
	req = json_pack("{s:s, s:s}", "cmd", "view", "id", argv[optind]);
	req = with(with_num(req, "approval", appr), "purpose", purpose);
	rc = call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json) {
		print_json(ans);
	} else {
		json_t *rec = json_object_get(ans, "record");
		printf("id               %s\nsha256           %s\nsize             %lld\n",
		    json_string_value(json_object_get(rec, "id")),
		    json_string_value(json_object_get(rec, "sha256")),
		    (long long)json_integer_value(json_object_get(rec, "size")));
		case_show_item(rec, 0);
		printf("events:\n");
		json_array_foreach(json_object_get(ans, "events"), i, e)
		{
			json_t *ev = json_object_get(e, "event");
			printf("  #%lld  %s  %s\n",
			    (long long)json_integer_value(json_object_get(e, "seq")),
			    json_string_value(json_object_get(ev, "time")),
			    json_string_value(json_object_get(ev, "event")));
		}
		printf("(access register entry %lld)\n",
		    (long long)json_integer_value(json_object_get(ans, "access")));
	}
	json_decref(ans);
	return EXIT_OK;
}

static const char usage_get[] =
    "usage: custos get ID -o FILE --approval REQ [--socket PATH] [--json]\n"
    "\n"
    "Copies item ID's stored bytes into FILE (a new file) through custosd under\n"
    "an approved copy request, and checks them against the item's SHA-256. The\n"
    "copy is written in the access register before the first byte is sent.\n";

/*
 * Reads the granted copy chunk by chunk into fd, calling tick (if not NULL)
 * with each chunk's size; EXIT_OK or an exit code.
 */
static int
receive(struct conn *c, int fd, const char *file, const char *want, const struct opts *o,
    void (*tick)(void *ctx, uint64_t n), void *tctx)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dg[32], *raw = NULL;
	char hex[65];
	long long off = 0;
	int code = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? EXIT_OK
	                                                                        : EXIT_STORE;

	while (code == EXIT_OK) {
		json_t *ans, *req = with_num(json_pack("{s:s}", "cmd", "read"), "offset", off);
		const char *data;
		int n;
		code = conn_call(c, req, &ans);
		if (code == EXIT_OK)
			code = answer_error(ans, o) == EXIT_OK ? EXIT_OK : EXIT_STORE;
		data = json_string_value(json_object_get(ans, "data"));
		if (code == EXIT_OK && json_is_true(json_object_get(ans, "eof"))) {
			json_decref(ans);
			break;
		}
		free(raw);
		raw = data != NULL ? malloc(strlen(data)) : NULL;
		n = raw != NULL ? cs_base64_decode(data, strlen(data), raw, strlen(data)) : -1;
		json_decref(ans);
		if (code == EXIT_OK && n <= 0) {
			errmsg("custosd sent a part of the copy that is not base64");
			code = EXIT_STORE;
		} else if (code == EXIT_OK &&
		    (write(fd, raw, (size_t)n) != n || EVP_DigestUpdate(md, raw, (size_t)n) != 1)) {
			errmsg("cannot write %s: %s", file, strerror(errno));
			code = EXIT_STORE;
		}
		off += n;
		if (code == EXIT_OK && tick != NULL)
			tick(tctx, (uint64_t)n);
	}
	free(raw);
	if (code == EXIT_OK && (EVP_DigestFinal_ex(md, dg, NULL) != 1 || fsync(fd) < 0))
		code = EXIT_STORE;
	EVP_MD_CTX_free(md);
	for (int i = 0; code == EXIT_OK && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dg[i]);
	if (code == EXIT_OK && strcmp(hex, want) != 0) {
		errmsg("the copy in %s does not match the item's SHA-256: do not use it", file);
		code = EXIT_PROBLEM;
	}
	return code;
}

int
get_via_socket(const char *sock, const struct opts *o, json_t *req, const char *out,
    json_t **ans)
{
	struct conn c;
	char want[65];
	int rc, fd;

	*ans = NULL;
	rc = conn_open(&c, sock, o);
	if (rc != EXIT_OK) {
		json_decref(req);
		return rc;
	}
	rc = conn_call(&c, req, ans);
	if (rc == EXIT_OK)
		rc = answer_error(*ans, o);
	if (rc != EXIT_OK) {
		conn_close(&c);
		return rc;
	}
	snprintf(want, sizeof(want), "%s", json_string_value(json_object_get(*ans, "sha256")));
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		errmsg("cannot create %s: %s (it must not exist yet)", out, strerror(errno));
		conn_close(&c);
		return EXIT_USAGE;
	}
	rc = receive(&c, fd, out, want, o, NULL, NULL);
	close(fd);
	conn_close(&c);
	if (rc != EXIT_OK)
		(void)unlink(out);
	return rc;
}

int
cmd_get(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *out = NULL;
	long long appr = -1;
	json_t *req, *ans = NULL;
	int rc;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("output", 'o', CLI_STRING, &out), CLI_CALL_OPT("approval", &appr, approval_arg),
	    CLI_END};

	rc = cli_parse(argc, argv, own, usage_get, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || out == NULL) {
		fputs(usage_get, stderr);
		return EXIT_USAGE;
	}
	req = with_num(json_pack("{s:s, s:s}", "cmd", "get", "id", argv[optind]), "approval", appr);
	rc = get_via_socket(sock, o, req, out, &ans);
	if (rc == EXIT_OK && o->json)
		print_json(ans);
	else if (rc == EXIT_OK)
		printf("%s copied to %s (sha256 %s, access register entry %lld)\n", argv[optind],
		    out, json_string_value(json_object_get(ans, "sha256")),
		    (long long)json_integer_value(json_object_get(ans, "access")));
	json_decref(ans);
	return rc;
}

/* ---- export for socket users ---- */

/* A socket export's writing: the connection, the plan's digests and the progress. */
struct sock_export {
	struct conn *c;
	const json_t *plan;
	const struct opts *o;
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *pctx;
	uint64_t done, total;
};

/* receive()'s tick: the bytes of the bag's payload written so far, to the progress. */
static void
export_tick(void *ctx, uint64_t n)
{
	struct sock_export *x = ctx;

	x->done += n;
	if (x->progress != NULL)
		x->progress(x->pctx, x->done, x->total);
}

/* cs_bag_copy_fn: the item's bytes from custosd ("export-open", then "read"). */
static int
copy_from_socket(void *ctx, const char *id, const char *kind, int out, char hex[65],
    uint64_t *size)
{
	struct sock_export *x = ctx;
	const json_t *p = NULL;
	json_t *ans = NULL, *it;
	size_t i;
	int rc;

	json_array_foreach(json_object_get(x->plan, "payload"), i, it)
	{
		const char *pid = json_string_value(json_object_get(it, "id"));
		const char *pk = json_string_value(json_object_get(it, "kind"));
		if (pid != NULL && strcmp(pid, id) == 0 &&
		    (kind == NULL ? pk == NULL : pk != NULL && strcmp(pk, kind) == 0))
			p = it;
	}
	if (p == NULL)
		return CS_EFORMAT;
	rc = conn_call(x->c,
	    json_pack("{s:s, s:s, s:s*}", "cmd", "export-open", "id", id, "kind", kind), &ans);
	if (rc == EXIT_OK)
		rc = answer_error(ans, x->o);
	json_decref(ans);
	if (rc == EXIT_OK)
		rc = receive(x->c, out, id, json_string_value(json_object_get(p, "sha256")), x->o,
		    export_tick, x);
	if (rc != EXIT_OK)
		return rc == EXIT_PROBLEM ? CS_EDIGEST : -EIO;
	/* receive() checked the bytes against this digest */
	snprintf(hex, 65, "%s", json_string_value(json_object_get(p, "sha256")));
	*size = (uint64_t)json_integer_value(json_object_get(p, "size"));
	return 0;
}

int
export_via_socket(const char *sock, const struct opts *o, json_t *req, const char *to,
    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *pctx,
    struct cs_bag_result *res, json_t **ans)
{
	struct sock_export x = {.o = o, .progress = progress, .pctx = pctx};
	struct conn c;
	int rc;

	*ans = NULL;
	rc = conn_open(&c, sock, o);
	if (rc != EXIT_OK) {
		json_decref(req);
		return rc;
	}
	x.c = &c;
	rc = conn_call(&c, req, ans);
	if (rc == EXIT_OK)
		rc = answer_error(*ans, o);
	if (rc == EXIT_OK) {
		x.plan = json_object_get(*ans, "plan");
		res->entry = (uint64_t)json_integer_value(json_object_get(*ans, "access"));
		res->items = json_array_size(json_object_get(x.plan, "payload"));
		res->bytes = (uint64_t)json_integer_value(json_object_get(x.plan, "bytes"));
		x.total = res->bytes;
		rc = cs_bag_write(x.plan, to, copy_from_socket, &x, res);
		rc = rc == 0 ? EXIT_OK : rc;
	}
	conn_close(&c);
	return rc;
}

/* ---- search / register ---- */

static const char usage_search[] =
    "usage: custos search (--case C | --case-prefix P | --officer O | --device D |\n"
    "                      --sha256 H | --from T --to T) [--socket PATH] [--json]\n"
    "\n"
    "`custos find` through custosd, for users who cannot read the store: the\n"
    "search (who searched for what, how many found) is logged in the ledger.\n";

int
cmd_search(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *v[7] = {NULL};
	static const char *const keys[7] = {"case", "case_prefix", "officer", "device", "sha256",
	    "from", "to"};
	json_t *req, *ans, *r;
	size_t i;
	int rc;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("case", 0, CLI_STRING, &v[0]), CLI_OPT("case-prefix", 0, CLI_STRING, &v[1]),
	    CLI_OPT("officer", 0, CLI_STRING, &v[2]), CLI_OPT("device", 0, CLI_STRING, &v[3]),
	    CLI_OPT("sha256", 0, CLI_STRING, &v[4]), CLI_OPT("from", 0, CLI_STRING, &v[5]),
	    CLI_OPT("to", 0, CLI_STRING, &v[6]), CLI_END};

	rc = cli_parse(argc, argv, own, usage_search, o);
	if (rc >= 0)
		return rc;
	req = json_pack("{s:s}", "cmd", "find");
	for (i = 0; i < 7; i++)
		req = with(req, keys[i], v[i]);
	if (json_object_size(req) < 2 || optind != argc) {
		json_decref(req);
		fputs(usage_search, stderr);
		return EXIT_USAGE;
	}
	rc = call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json)
		print_json(json_object_get(ans, "items"));
	else
		json_array_foreach(json_object_get(ans, "items"), i, r)
		    printf("%s\t%lld\t%s\n", json_string_value(json_object_get(r, "id")),
		        (long long)json_integer_value(json_object_get(r, "size")),
		        json_string_value(json_object_get(r, "name")));
	json_decref(ans);
	return EXIT_OK;
}

static const char usage_register[] =
    "usage: custos register [--case C] [--from T] [--to T] [--searches] [--csv]\n"
    "                       [--socket PATH] [--json]\n"
    "\n"
    "Prints the access register (查阅登记簿): every view, copy and export let\n"
    "through, with the requester (uid and name), requester kind, purpose, approval\n"
    "and approver, items, action and time; of one case file, between two times\n"
    "(RFC 3339, --to excluded). --searches lists the logged searches instead.\n";

/*
 * A CSV field: quoted when it holds a comma, quote or line break; a formula
 * cell (custos/csv.h) begins with an apostrophe.
 */
static void
csv_field(const char *s, int last)
{
	if (s == NULL)
		s = "";
	if (strpbrk(s, ",\"\r\n") != NULL) {
		putchar('"');
		if (cs_csv_formula(s))
			putchar('\'');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		if (cs_csv_formula(s))
			putchar('\'');
		fputs(s, stdout);
	}
	putchar(last ? '\n' : ',');
}

/* The items of an entry joined by spaces (malloc'd). */
static char *
joined(json_t *items)
{
	size_t len = 1, i, at = 0;
	json_t *v;
	char *s;

	json_array_foreach(items, i, v)
	{
		len += strlen(json_string_value(v)) + 1;
	}
	s = calloc(1, len);
	json_array_foreach(items, i, v)
	{
		if (s == NULL)
			break;
		at += (size_t)snprintf(s + at, len - at, "%s%s", i > 0 ? " " : "",
		    json_string_value(v));
	}
	return s;
}

static void
register_row(json_t *e, int csv)
{
	json_t *rq = json_object_get(e, "requester"), *ap = json_object_get(e, "approver");
	json_t *actor = json_object_get(e, "actor");
	char seq[24], appr[24], uid[24], act[64], *items = joined(json_object_get(e, "items"));
	const char *deriv = json_string_value(json_object_get(e, "derivative"));
	const char *ref = json_string_value(json_object_get(rq, "letter"));
	const char *f[13];

	if (ref == NULL)
		ref = json_string_value(json_object_get(rq, "licence"));
	snprintf(seq, sizeof(seq), "%lld",
	    (long long)json_integer_value(json_object_get(e, "seq")));
	snprintf(uid, sizeof(uid), "%lld",
	    (long long)json_integer_value(json_object_get(actor, "uid")));
	if (json_is_integer(json_object_get(e, "approval")))
		snprintf(appr, sizeof(appr), "%lld",
		    (long long)json_integer_value(json_object_get(e, "approval")));
	else
		snprintf(appr, sizeof(appr), "-");
	f[0] = seq;
	f[1] = json_string_value(json_object_get(e, "time"));
	f[2] = json_string_value(json_object_get(e, "action"));
	if (deriv != NULL) { /* a fetched derivative: "view (access copy)" */
		snprintf(act, sizeof(act), "%s (%s copy)", f[2] != NULL ? f[2] : "", deriv);
		f[2] = act;
	}
	f[3] = json_string_value(json_object_get(actor, "name"));
	f[4] = uid;
	f[5] = json_string_value(json_object_get(rq, "kind"));
	f[6] = json_string_value(json_object_get(rq, "name"));
	f[7] = ref;
	f[8] = json_string_value(json_object_get(e, "purpose"));
	f[9] = appr;
	f[10] = json_string_value(json_object_get(ap, "name"));
	f[11] = json_string_value(json_object_get(e, "case"));
	f[12] = items;
	if (csv) {
		for (int i = 0; i < 13; i++)
			csv_field(f[i], i == 12);
	} else {
		printf("#%s %s %s by %s (uid %s) for %s %s%s%s: %s; approval %s by %s; case %s; "
		       "items %s\n",
		    f[0], f[1], f[2], f[3], f[4], f[5], f[6] ? f[6] : "", f[7] ? " ref " : "",
		    f[7] ? f[7] : "", f[8] ? f[8] : "", f[9], f[10] ? f[10] : "-",
		    f[11] ? f[11] : "-", items ? items : "");
	}
	free(items);
}

int
cmd_register(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *number = NULL, *from = NULL, *to = NULL;
	int csv = 0, searches = 0, rc;
	json_t *req, *ans, *e;
	size_t i;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("case", 0, CLI_STRING, &number), CLI_OPT("from", 0, CLI_STRING, &from),
	    CLI_OPT("to", 0, CLI_STRING, &to), CLI_OPT("csv", 0, CLI_FLAG, &csv),
	    CLI_OPT("searches", 0, CLI_FLAG, &searches), CLI_END};

	rc = cli_parse(argc, argv, own, usage_register, o);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fputs(usage_register, stderr);
		return EXIT_USAGE;
	}
	req = json_pack("{s:s, s:b}", "cmd", "register", "searches", searches);
	req = with(with(with(req, "case", number), "from", from), "to", to);
	rc = call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json || searches) {
		print_json(json_object_get(ans, "entries"));
	} else {
		if (csv)
			printf(
			    "entry,time,action,user,uid,requester_kind,requester,reference,purpose,"
			    "approval,approver,case,items\n");
		json_array_foreach(json_object_get(ans, "entries"), i, e)
		{
			register_row(e, csv);
		}
	}
	json_decref(ans);
	return EXIT_OK;
}
