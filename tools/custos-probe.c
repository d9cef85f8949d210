/*
 * custos-probe: the media worker (custos/media.h). Started by lib/media.c
 * with the blob open read-only on descriptor 0 and a pipe on 1, under
 * resource limits; it confines itself (cs_media_sandbox) before it reads a
 * byte, probes the blob (cs_media_probe_fd) and writes the record as one
 * line of JSON. With --derive WHAT [--max-height N] it makes that
 * derivative (cs_media_derive_fd) into the file open on descriptor 3 and
 * writes what it did as the JSON line; with --fingerprint it writes the
 * blob's fingerprint (cs_media_fingerprint_fd). Exit status: 0 the answer was
 * written, 3 the sandbox could not be set up, 4 libmagic's database could
 * not be loaded, 5 out of memory; nothing is read from the blob in the
 * first two cases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "custos/media.h"

int
main(int argc, char **argv)
{
	json_t *rec = NULL;
	const char *derive = NULL;
	int rc, max_height = 0, fp = argc > 1 && strcmp(argv[1], "--fingerprint") == 0;

	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		puts("usage: custos-probe <BLOB >RECORD\n"
		     "       custos-probe --derive WHAT [--max-height N] <BLOB 3>COPY >ANSWER\n"
		     "       custos-probe --fingerprint <BLOB >FINGERPRINT\n\n"
		     "The media worker of custos and custosd: identifies and probes the file\n"
		     "on standard input, sandboxed, and writes its media record as JSON; or\n"
		     "makes a derivative of it (access, preservation-ffv1, preservation-h264,\n"
		     "poster) into descriptor 3; or fingerprints it (keyframe hashes,\n"
		     "Chromaprint).\n"
		     "Not meant to be run by hand; see custos(1), `custos media`.");
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "--derive") == 0) {
		derive = argv[2];
		if (argc > 4 && strcmp(argv[3], "--max-height") == 0)
			max_height = (int)strtol(argv[4], NULL, 10);
	}
	if (derive == NULL && !fp && cs_media_probe_init() < 0)
		return 4;
	if (cs_media_sandbox() < 0)
		return 3;
	if (fp)
		rc = cs_media_fingerprint_fd(STDIN_FILENO, &rec);
	else if (derive != NULL)
		rc = cs_media_derive_fd(STDIN_FILENO, 3, derive, max_height, &rec);
	else
		rc = cs_media_probe_fd(STDIN_FILENO, &rec);
	/* _exit, here too (see below): the sandbox is in place */
	if (rc == -ENOSPC)
		_exit(6); /* the copy's disk is full: no answer, the parent tries again later */
	if (rc < 0)
		_exit(5);
	rc = json_dumpf(rec, stdout, JSON_COMPACT) < 0 || fflush(stdout) != 0;
	json_decref(rec);
	/*
	 * _exit: nothing is left to flush, and a leak checker's exit handler
	 * (sanitizer builds) cannot read /proc inside the sandbox.
	 */
	_exit(rc ? 5 : 0);
}
