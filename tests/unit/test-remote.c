/*
 * Unit tests of lib/remote.c without a server: the [remote] configuration
 * (defaults, each kind of bad line named, a credentials file or a config
 * holding a secret that others may read refused), the key layout, and the
 * hooks mode (socket and timer wishes handed to the caller, driven here with
 * poll(2)) reaching an endpoint where nothing listens: the object ends with
 * CS_EREMOTEIO after the configured retries, saying it could not connect.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/remote.h"
#include "tap.h"

static char dir[256];

static void
write_file(const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	chmod(path, mode);
}

static int
load(const char *name, struct cs_remote_config *cfg, char *why, size_t n)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return cs_remote_config_load(cfg, path, why, n);
}

static void
config_tests(void)
{
	struct cs_remote_config cfg;
	char why[1024], text[1024], key[512];
	int rc;

	write_file("creds", "access_key = AK\nsecret_key = SK\n", 0600);
	snprintf(text, sizeof(text),
	    "# a comment\n[other]\nbucket = no\n[remote]\nendpoint = http://127.0.0.1:9/\n"
	    "bucket = b\ncredentials = %s/creds\n",
	    dir);
	write_file("ok.conf", text, 0644);
	rc = load("ok.conf", &cfg, why, sizeof(why));
	is_int(rc, 0, "a config with endpoint, bucket and a private credentials file loads");
	if (rc == 0) {
		ok(strcmp(cfg.endpoint, "http://127.0.0.1:9") == 0, "a trailing / is dropped");
		ok(strcmp(cfg.bucket, "b") == 0 && strcmp(cfg.access_key, "AK") == 0 &&
		    strcmp(cfg.secret_key, "SK") == 0, "bucket and keys read from their sections");
		ok(strcmp(cfg.region, "us-east-1") == 0 && strcmp(cfg.prefix, "custos") == 0 &&
		    cfg.path_style == 1 && cfg.part_size == 16u << 20 &&
		    cfg.multipart_above == cfg.part_size && cfg.parallel == 4 &&
		    cfg.lock_mode == CS_REMOTE_LOCK_GOVERNANCE && cfg.retain_days == 3650,
		    "defaults");
		cs_remote_key_blob(&cfg, "ab12", key, sizeof(key));
		ok(strcmp(key, "custos/objects/sha256/ab12") == 0, "blob key: %s", key);
		cs_remote_key_record(&cfg, "ST01", 42, key, sizeof(key));
		ok(strcmp(key, "custos/stations/ST01/ledger/0000000000000042.json") == 0,
		    "record key: %s", key);
		cs_remote_key_checkpoint(&cfg, "ST01", 7, key, sizeof(key));
		ok(strcmp(key, "custos/stations/ST01/checkpoints/0000000000000007") == 0,
		    "checkpoint key: %s", key);
		cs_remote_config_fini(&cfg);
	}

	static const struct {
		const char *lines, *want;
	} bad[] = {
	    {"bucket = b\n", "needs endpoint and bucket"},
	    {"endpoint = ftp://x\nbucket = b\n", "must be http://HOST"},
	    {"endpoint = http://\nbucket = b\n", "must be http://HOST"},
	    {"endpoint = https:////\nbucket = b\n", "must be http://HOST"},
	    {"endpoint = http://x\nbucket = b\npart_size = 1M\n", "'1M' is not a valid part_size"},
	    {"endpoint = http://x\nbucket = b\nparallel = 0\n", "not a valid parallel"},
	    {"endpoint = http://x\nbucket = b\nlock_mode = forever\n", "not a valid lock_mode"},
	    {"endpoint = http://x\nbucket = b\ncolour = red\n", "unknown key 'colour'"},
	    {"endpoint = http://x\nbucket = b\njust words\n", "expected 'key = value'"},
	    {"endpoint = http://x\nbucket = b\n", "no access_key and secret_key"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[remote]\n%s", bad[i].lines);
		write_file("bad.conf", text, 0600);
		rc = load("bad.conf", &cfg, why, sizeof(why));
		ok(rc == CS_EFORMAT && strstr(why, bad[i].want) != NULL, "refused: %s (%s)",
		    bad[i].want, why);
	}

	write_file("creds", "access_key = AK\nsecret_key = SK\n", 0644);
	rc = load("ok.conf", &cfg, why, sizeof(why));
	ok(rc == CS_EFORMAT && strstr(why, "others may read it") != NULL &&
	    strstr(why, "0600") != NULL, "a credentials file others may read is refused (%s)",
	    why);
	write_file("creds", "access_key = AK\nsecret_key = SK\nendpoint = http://y\n", 0600);
	rc = load("ok.conf", &cfg, why, sizeof(why));
	ok(rc == CS_EFORMAT && strstr(why, "holds only access_key and secret_key") != NULL,
	    "a credentials file with other keys is refused (%s)", why);
	write_file("inline.conf",
	    "[remote]\nendpoint = http://x\nbucket = b\naccess_key = A\nsecret_key = S\n", 0640);
	rc = load("inline.conf", &cfg, why, sizeof(why));
	ok(rc == CS_EFORMAT && strstr(why, "others may read it") != NULL,
	    "a config holding secret_key that others may read is refused");
	snprintf(text, sizeof(text), "%s/inline.conf", dir);
	chmod(text, 0600);
	rc = load("inline.conf", &cfg, why, sizeof(why));
	is_int(rc, 0, "... and loads once it is mode 0600");
	if (rc == 0)
		cs_remote_config_fini(&cfg);
}

/* ---- hooks mode, driven with poll(2) ---- */

struct loop {
	struct pollfd fds[16];
	int what[16];
	int nfds;
	long timer_ms; /* -1: none */
	int64_t timer_at;
	int sockets_seen, timers_seen;
	int done;
	int rc;
	char why[1024];
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_socket(void *ctx, int fd, int what)
{
	struct loop *l = ctx;
	int i;

	l->sockets_seen++;
	for (i = 0; i < l->nfds && l->fds[i].fd != fd; i++)
		;
	if (what & CS_REMOTE_REMOVE) {
		if (i < l->nfds) {
			l->fds[i] = l->fds[l->nfds - 1];
			l->nfds--;
		}
		return;
	}
	if (i == l->nfds && l->nfds < 16)
		l->nfds++;
	l->fds[i].fd = fd;
	l->fds[i].events = (short)((what & CS_REMOTE_IN ? POLLIN : 0) |
	    (what & CS_REMOTE_OUT ? POLLOUT : 0));
}

static void
on_timer(void *ctx, long ms)
{
	struct loop *l = ctx;

	l->timers_seen++;
	l->timer_ms = ms;
	l->timer_at = ms >= 0 ? mono_ms() + ms : -1;
}

static void
on_done(void *ctx, const struct cs_remote_result *res)
{
	struct loop *l = ctx;

	l->done = 1;
	l->rc = res->rc;
	snprintf(l->why, sizeof(l->why), "%s", res->why);
}

static void
hooks_test(void)
{
	struct cs_remote_config cfg;
	struct loop l = {.timer_ms = -1, .timer_at = -1};
	struct cs_remote_hooks hooks = {on_socket, on_timer, &l};
	struct cs_remote *r = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	char text[1024], why[512];
	int s, port, fd, rc;
	int64_t end;

	/* a port where nothing listens: bound, then closed */
	s = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &sl) < 0) {
		perror("socket");
		exit(2);
	}
	port = ntohs(sa.sin_port);
	close(s);
	write_file("creds", "access_key = AK\nsecret_key = SK\n", 0600);
	snprintf(text, sizeof(text),
	    "[remote]\nendpoint = http://127.0.0.1:%d\nbucket = b\ncredentials = %s/creds\n"
	    "retries = 2\nconnect_timeout = 5\n",
	    port, dir);
	write_file("down.conf", text, 0600);
	if (load("down.conf", &cfg, why, sizeof(why)) != 0) {
		printf("# %s\n", why);
		exit(2);
	}
	rc = cs_remote_new(&r, &cfg, &hooks);
	is_int(rc, 0, "a remote in hooks mode");
	fd = open("/dev/null", O_RDONLY);
	struct cs_remote_object obj = {"k/x", fd, 0, {0}, NULL};
	rc = cs_remote_put(r, &obj, on_done, &l);
	close(fd);
	is_int(rc, 0, "an object queued");
	ok(cs_remote_pending(r) == 1, "one object pending");
	end = mono_ms() + 120000; /* a bound, not the verdict */
	while (!l.done && mono_ms() < end) {
		int wait = 1000;
		if (l.timer_at >= 0)
			wait = (int)(l.timer_at - mono_ms() < 0 ? 0 : l.timer_at - mono_ms());
		int n = poll(l.fds, (nfds_t)l.nfds, wait > 1000 ? 1000 : wait);
		if (n > 0) {
			for (int i = 0; i < l.nfds; i++) {
				int ev = (l.fds[i].revents & (POLLIN | POLLHUP | POLLERR) ?
				        CS_REMOTE_IN : 0) |
				    (l.fds[i].revents & POLLOUT ? CS_REMOTE_OUT : 0);
				if (ev != 0) {
					cs_remote_action(r, l.fds[i].fd, ev);
					break; /* the set may have changed */
				}
			}
		} else if (l.timer_at >= 0 && mono_ms() >= l.timer_at) {
			l.timer_at = -1;
			cs_remote_action(r, -1, 0);
		}
	}
	ok(l.done, "the object ended");
	ok(l.timers_seen > 0, "timer wishes were handed to the caller (%d)", l.timers_seen);
	is_int(l.rc, CS_EREMOTEIO, "it failed as unreachable");
	ok(strstr(l.why, "gave up after retries") != NULL && strstr(l.why, "127.0.0.1") != NULL,
	    "saying where and that it retried: %s", l.why);
	ok(cs_remote_pending(r) == 0, "nothing pending");
	{
		const char *bw = NULL;
		rc = cs_remote_bucket_error(r, &bw);
		ok(rc == CS_EREMOTEIO && bw != NULL && strstr(bw, "127.0.0.1") != NULL,
		    "the bucket is known unusable, with the reason");
		fd = open("/dev/null", O_RDONLY);
		obj.fd = fd;
		rc = cs_remote_put(r, &obj, on_done, &l);
		close(fd);
		ok(rc == 0 && cs_remote_bucket_error(r, NULL) == 0,
		    "a new object asks again (no error while asking)");
	}
	cs_remote_free(r);
	cs_remote_config_fini(&cfg);
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "%s/custos-remote-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	config_tests();
	hooks_test();
	static const char *const names[] = {"creds", "ok.conf", "bad.conf", "inline.conf",
	    "down.conf"};
	for (size_t i = 0; i < 5; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
	return tap_done();
}
