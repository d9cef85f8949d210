/*
 * Fuzzes custosd's control socket protocol: one JSON request per line, one
 * JSON answer per line. The reading is static in daemon/control.c
 * (alloc_cb, on_read, handle_request, reply) and tied to libuv handles, so
 * this is a line-for-line copy of those steps with the socket taken away:
 * keep it in step with them. status_json needs a store; a fixed object
 * stands in for it. Every complete line gets exactly one answer line.
 *
 * Input: one byte that sets how many bytes each read delivers, then the
 * byte stream a client sends.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"

struct client {
	char buf[4096];
	size_t len;
	int closed;
	size_t answers;
};

static json_t *
status_json(void)
{
	return json_pack("{s:s, s:b}", "state", "running", "taking_files", 1);
}

static void
reply(struct client *cl, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	/* One answer, one line: the answer must exist and hold no newline. */
	CHECK(s != NULL);
	CHECK(strchr(s, '\n') == NULL);
	cl->answers++;
	free(s);
}

static void
handle_request(struct client *cl, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr), *ans;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (req == NULL || cmd == NULL)
		ans = json_pack("{s:b, s:s}", "ok", 0, "error",
		    "a request is one JSON object per line with a \"cmd\"");
	else if (strcmp(cmd, "status") == 0) {
		ans = status_json();
		json_object_set_new(ans, "ok", json_true());
	} else
		ans = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "unknown command", "cmd", cmd);
	reply(cl, ans);
	json_decref(ans);
	json_decref(req);
}

/* alloc_cb then on_read, for one read of up to `n` bytes from `in`; returns bytes taken. */
static size_t
read_some(struct client *cl, const uint8_t *in, size_t n)
{
	size_t room = sizeof(cl->buf) - cl->len;
	char *nl;

	if (n > room)
		n = room;
	memcpy(cl->buf + cl->len, in, n);
	cl->len += n;
	while ((nl = memchr(cl->buf, '\n', cl->len)) != NULL) {
		size_t linelen = (size_t)(nl - cl->buf);
		handle_request(cl, cl->buf, linelen);
		memmove(cl->buf, nl + 1, cl->len - linelen - 1);
		cl->len -= linelen + 1;
	}
	if (cl->len == sizeof(cl->buf))
		cl->closed = 1; /* a line longer than any request: refuse and hang up */
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client *cl;
	size_t chunk, pos = 1, lines = 0;

	if (size == 0)
		return 0;
	chunk = 1 + (size_t)data[0] * 17;
	cl = calloc(1, sizeof(*cl));
	CHECK(cl != NULL);
	while (pos < size && !cl->closed)
		pos += read_some(cl, data + pos, size - pos < chunk ? size - pos : chunk);
	/* Every newline the daemon read (before any hang-up) was answered once. */
	for (size_t i = 1; i < pos; i++)
		lines += data[i] == '\n';
	CHECK(cl->answers == lines);
	free(cl);
	return 0;
}
