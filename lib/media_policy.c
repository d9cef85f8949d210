/*
 * The normalisation policy (custos/media.h, cs_media_policy_action): which
 * identified formats are kept as their own preservation copy and which get
 * one in an open format, as a pure function of the media record and the
 * policy's text. Defaults follow issue 10: H.264/H.265/AAC/MP3/PCM in
 * MP4/MOV/MKV/WAV are kept; anything else gets FFV1 + FLAC in Matroska.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/media.h"

#define NAME_MAX_ 64

/* Formats kept by default: libavformat's demuxer names and libavcodec's codec names. */
static const char keep_default[] =
    " mov mp4 matroska wav mp3 h264 hevc aac mp3 pcm_s16le pcm_s16be pcm_s24le pcm_s24be "
    "pcm_s32le pcm_s32be pcm_f32le pcm_u8 pcm_alaw pcm_mulaw ";

static int
valid_action(const char *a, size_t n)
{
	return (n == 4 && strncmp(a, "keep", 4) == 0) ||
	    (n == 13 && strncmp(a, "preserve-ffv1", 13) == 0) ||
	    (n == 13 && strncmp(a, "preserve-h264", 13) == 0);
}

/*
 * Walks the policy's entries ("NAME=ACTION" separated by white space or
 * commas): the action given for `name` (NULL: look for none) into act, or
 * -EINVAL with why set for an entry that does not parse.
 */
static int
walk(const char *policy, const char *name, char act[16], int *height, char *why, size_t whyn)
{
	const char *p = policy != NULL ? policy : "";

	while (*p != '\0') {
		size_t k, n, v;
		const char *eq;

		p += strspn(p, " \t\r\n,");
		n = strcspn(p, " \t\r\n,");
		if (n == 0)
			break;
		eq = memchr(p, '=', n);
		if (eq == NULL || eq == p || (size_t)(eq - p) >= NAME_MAX_) {
			snprintf(why, whyn, "'%.*s' is not FORMAT=ACTION", (int)(n > 60 ? 60 : n),
			    p);
			return -EINVAL;
		}
		k = (size_t)(eq - p);
		v = n - k - 1;
		if (k == 13 && strncmp(p, "access_height", 13) == 0) {
			char num[16] = "";
			char *end;
			long h;
			memcpy(num, eq + 1, v < sizeof(num) - 1 ? v : sizeof(num) - 1);
			h = strtol(num, &end, 10);
			if (v == 0 || v >= sizeof(num) || *end != '\0' || h < 0 || h > 8640) {
				snprintf(why, whyn, "access_height must be 0 (no limit) to 8640 "
				                    "lines, not '%.*s'",
				    (int)(v > 20 ? 20 : v), eq + 1);
				return -EINVAL;
			}
			if (height != NULL)
				*height = (int)h;
		} else if (!valid_action(eq + 1, v)) {
			snprintf(why, whyn, "the action for '%.*s' must be keep, preserve-ffv1 or "
			                    "preserve-h264, not '%.*s'",
			    (int)k, p, (int)(v > 40 ? 40 : v), eq + 1);
			return -EINVAL;
		} else if (name != NULL && strlen(name) == k && strncmp(p, name, k) == 0) {
			memcpy(act, eq + 1, v);
			act[v] = '\0';
		}
		p += n;
	}
	return 0;
}

int
cs_media_policy_check(const char *policy, char *why, size_t whyn)
{
	char act[16];

	return walk(policy, NULL, act, NULL, why, whyn);
}

int
cs_media_policy_height(const char *policy)
{
	char act[16], why[8];
	int h = 720;

	return walk(policy, NULL, act, &h, why, sizeof(why)) < 0 ? 720 : h;
}

/*
 * The action for one format name: the policy's (`explicit_only`: that or
 * none, act empty), else the default's.
 */
static void
action_of(const char *policy, const char *name, int explicit_only, char act[16])
{
	char pat[NAME_MAX_ + 3], why[8];

	act[0] = '\0';
	(void)walk(policy, name, act, NULL, why, sizeof(why));
	if (act[0] != '\0' || explicit_only)
		return;
	snprintf(pat, sizeof(pat), " %s ", name);
	if (strlen(name) < NAME_MAX_ && strstr(keep_default, pat) != NULL) {
		snprintf(act, 16, "%s", "keep");
		return;
	}
	(void)walk(policy, "*", act, NULL, why, sizeof(why));
	if (act[0] == '\0')
		snprintf(act, 16, "%s", "preserve-ffv1");
}

/*
 * One pass over the record's names: the container's (kept when one of its
 * names is: "mov,mp4,m4a,...") and each audio or video codec's; the first
 * that is not kept decides.
 */
static void
decide(const char *policy, const json_t *media, int explicit_only, char act[16])
{
	const char *c = json_string_value(json_object_get(media, "container"));
	char name[NAME_MAX_], one[16];
	const json_t *s;
	size_t i, n;

	act[0] = '\0';
	if (c != NULL) {
		int kept = 0;
		char first[16] = "";
		while (*c != '\0') {
			n = strcspn(c, ",");
			if (n > 0 && n < sizeof(name)) {
				memcpy(name, c, n);
				name[n] = '\0';
				action_of(policy, name, explicit_only, one);
				kept |= strcmp(one, "keep") == 0;
				if (first[0] == '\0' && one[0] != '\0')
					snprintf(first, sizeof(first), "%s", one);
			}
			c += n + (c[n] == ',');
		}
		if (!kept && first[0] != '\0') {
			snprintf(act, 16, "%s", first);
			return;
		}
	}
	json_array_foreach(json_object_get(media, "streams"), i, s) {
		const char *type = json_string_value(json_object_get(s, "type"));
		const char *codec = json_string_value(json_object_get(s, "codec"));
		if (type == NULL || codec == NULL || strlen(codec) >= sizeof(name) ||
		    (strcmp(type, "video") != 0 && strcmp(type, "audio") != 0))
			continue;
		action_of(policy, codec, explicit_only, one);
		if (one[0] != '\0' && strcmp(one, "keep") != 0) {
			snprintf(act, 16, "%s", one);
			return;
		}
	}
}

int
cs_media_policy_action(const char *policy, const json_t *media, char act[16])
{
	/* what the policy names wins over the defaults */
	decide(policy, media, 1, act);
	if (act[0] == '\0')
		decide(policy, media, 0, act);
	if (act[0] == '\0')
		snprintf(act, 16, "%s", "keep");
	return 0;
}
