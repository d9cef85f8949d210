/*
 * The probe that custos-probe runs in its sandbox (custos/media.h): libmagic
 * names the file's type; files that may be media are opened with
 * libavformat through an AVIOContext on the descriptor, with only the
 * demuxers and decoders listed here, every nested open refused (a playlist
 * or a reference file that names another file gets no bytes of it),
 * QuickTime data references off, and bounded probe size, analysis time and
 * stream count. The answer is a JSON record; what libavformat cannot read is
 * status "unreadable" with the reason. The whole file is untrusted input.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/dict.h>
#include <magic.h>

#include "custos/error.h"
#include "custos/media.h"
#include "media_av.h"

#define AVIO_BUF 65536
#define MAX_STREAMS 64
#define PROBESIZE (16 << 20)
#define ANALYZE_US (15 * 1000000)
#define STR_MAX 512

/* The demuxers tried (names as libavformat's, e.g. "mov" of "mov,mp4,..."). */
static const char format_whitelist[] =
    "mov,mp4,m4a,3gp,3g2,mj2,avi,mpegts,mpeg,wav,w64,matroska,webm,mp3,aac,flac,ogg,asf,flv,"
    "amr,h264,hevc,mjpeg,rawvideo";
/* The decoders avformat_find_stream_info may open. */
static const char codec_whitelist[] =
    "h264,hevc,mpeg4,mpeg2video,mpeg1video,mjpeg,h263,vp8,vp9,av1,wmv1,wmv2,wmv3,vc1,"
    "aac,aac_latm,mp3,mp3float,mp2,mp2float,ac3,eac3,opus,vorbis,flac,alac,amrnb,amrwb,"
    "wmav1,wmav2,pcm_s16le,pcm_s16be,pcm_s24le,pcm_s24be,pcm_s32le,pcm_f32le,pcm_u8,"
    "pcm_alaw,pcm_mulaw,adpcm_ima_wav,adpcm_ms,rawvideo";

static magic_t magic_db;

int
cs__av_read(void *opaque, uint8_t *buf, int n)
{
	struct cs__av_reader *r = opaque;
	ssize_t got;

	do
		got = pread(r->fd, buf, (size_t)n, (off_t)r->pos);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return AVERROR(errno);
	if (got == 0)
		return AVERROR_EOF;
	r->pos += got;
	return (int)got;
}

int64_t
cs__av_seek(void *opaque, int64_t off, int whence)
{
	struct cs__av_reader *r = opaque;
	int64_t to;

	whence &= ~AVSEEK_FORCE;
	if (whence == AVSEEK_SIZE)
		return r->size;
	to = whence == SEEK_SET ? off : whence == SEEK_CUR ? r->pos + off :
	    whence == SEEK_END ? r->size + off : -1;
	if (to < 0)
		return AVERROR(EINVAL);
	r->pos = to;
	return to;
}

/* Every nested open (HLS segments and keys, reference files, ...) is refused. */
static int
io_open_refuse(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
    AVDictionary **options)
{
	struct cs__av_reader *r = s->opaque;

	(void)pb;
	(void)flags;
	(void)options;
	if (r != NULL && !r->nested) {
		r->nested = 1;
		snprintf(r->nested_url, sizeof(r->nested_url), "%s", url != NULL ? url : "");
	}
	return AVERROR(EPERM);
}

int
cs_media_probe_init(void)
{
	magic_db = magic_open(MAGIC_NONE);
	if (magic_db == NULL || magic_load(magic_db, NULL) != 0)
		return CS_EFORMAT;
	return 0;
}

/* Sets key to a JSON string of at most STR_MAX bytes of `s` (text from the file). */
static int
set_str(json_t *o, const char *key, const char *s)
{
	if (s == NULL)
		return 0;
	return json_object_set_new(o, key, json_stringn_nocheck(s, strnlen(s, STR_MAX))) < 0 ||
	    !json_is_string(json_object_get(o, key)) ? -ENOMEM : 0;
}

/* A string from the file as valid UTF-8 (anything else as '?'), bounded. */
static int
set_text(json_t *o, const char *key, const char *s)
{
	char buf[STR_MAX + 1];
	json_t *v;
	size_t i, n;

	if (s == NULL)
		return 0;
	n = strnlen(s, STR_MAX);
	memcpy(buf, s, n);
	buf[n] = '\0';
	v = json_string(buf);
	if (v == NULL) {
		/* not UTF-8: keep printable ASCII */
		for (i = 0; i < n; i++)
			if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
				buf[i] = '?';
		v = json_string(buf);
	}
	return v == NULL || json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static int
set_int(json_t *o, const char *key, int64_t v)
{
	return json_object_set_new(o, key, json_integer(v)) < 0 ? -ENOMEM : 0;
}

static const char *
tag(AVDictionary *m, const char *key)
{
	AVDictionaryEntry *e = av_dict_get(m, key, NULL, 0);

	return e != NULL ? e->value : NULL;
}

/* ISO 6709 "+48.8577+002.2950+035.000/": lat, lon and alt as decimal strings. */
static int
set_location(json_t *rec, const char *s)
{
	char part[3][32];
	const char *p = s;
	json_t *loc;
	int n = 0, rc;

	while (n < 3 && (*p == '+' || *p == '-')) {
		size_t k = 1;
		while (k < sizeof(part[0]) - 1 && ((p[k] >= '0' && p[k] <= '9') || p[k] == '.'))
			k++;
		memcpy(part[n], p, k);
		part[n][k] = '\0';
		p += k;
		n++;
	}
	loc = json_object();
	if (loc == NULL)
		return -ENOMEM;
	rc = set_text(loc, "iso6709", s);
	if (rc == 0 && n >= 2) {
		rc = set_str(loc, "lat", part[0]);
		if (rc == 0)
			rc = set_str(loc, "lon", part[1]);
		if (rc == 0 && n == 3)
			rc = set_str(loc, "alt", part[2]);
	}
	if (rc == 0 && json_object_set_new(rec, "location", loc) < 0)
		return -ENOMEM;
	if (rc < 0)
		json_decref(loc);
	return rc;
}

static void
fourcc(uint32_t t, char out[5])
{
	for (int i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)(t >> (8 * i));
		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '.';
	}
	out[4] = '\0';
}

static int64_t
to_us(int64_t ts, AVRational tb)
{
	return ts == AV_NOPTS_VALUE ? -1 : av_rescale_q(ts, tb, AV_TIME_BASE_Q);
}

static int
add_stream(json_t *streams, json_t *data, const AVStream *s)
{
	const AVCodecParameters *p = s->codecpar;
	const char *type = av_get_media_type_string(p->codec_type);
	json_t *o = json_object();
	char tagb[5], fr[48];
	int64_t d = to_us(s->duration, s->time_base);
	int rc;

	if (o == NULL)
		return -ENOMEM;
	fourcc(p->codec_tag, tagb);
	rc = set_int(o, "index", s->index);
	if (rc == 0)
		rc = set_str(o, "type", type != NULL ? type : "unknown");
	if (rc == 0)
		rc = set_str(o, "codec", avcodec_get_name(p->codec_id));
	if (rc == 0 && p->codec_tag != 0)
		rc = set_str(o, "codec_tag", tagb);
	if (rc == 0 && p->codec_type == AVMEDIA_TYPE_VIDEO && p->width > 0) {
		rc = set_int(o, "width", p->width);
		if (rc == 0)
			rc = set_int(o, "height", p->height);
		if (rc == 0 && s->avg_frame_rate.num > 0 && s->avg_frame_rate.den > 0) {
			snprintf(fr, sizeof(fr), "%d/%d", s->avg_frame_rate.num,
			    s->avg_frame_rate.den);
			rc = set_str(o, "frame_rate", fr);
		}
	}
	if (rc == 0 && p->codec_type == AVMEDIA_TYPE_AUDIO) {
		if (p->sample_rate > 0)
			rc = set_int(o, "sample_rate", p->sample_rate);
		if (rc == 0 && p->ch_layout.nb_channels > 0)
			rc = set_int(o, "channels", p->ch_layout.nb_channels);
	}
	if (rc == 0 && d >= 0)
		rc = set_int(o, "duration_us", d);
	if (rc == 0 && p->codec_type == AVMEDIA_TYPE_DATA) {
		json_t *dt = json_pack("{s:i, s:s}", "index", s->index, "codec",
		    avcodec_get_name(p->codec_id));
		if (dt != NULL && p->codec_tag != 0)
			rc = set_str(dt, "codec_tag", tagb);
		if (dt == NULL || rc < 0 || json_array_append_new(data, dt) < 0)
			rc = -ENOMEM;
	}
	if (rc == 0 && json_array_append_new(streams, o) < 0)
		return -ENOMEM;
	if (rc < 0)
		json_decref(o);
	return rc;
}

/* What libavformat's error means to an operator. */
void
cs__av_reason(int err, const struct cs__av_reader *r, char *buf, size_t n)
{
	char e[AV_ERROR_MAX_STRING_SIZE];

	if (r->nested) {
		snprintf(buf, n, "the file refers to another file ('%.100s'), which is never "
		                 "opened: a reference or playlist is not read",
		    r->nested_url);
		return;
	}
	if (err == AVERROR(ENOMEM)) {
		snprintf(buf, n, "the probe ran out of its memory limit");
		return;
	}
	av_strerror(err, e, sizeof(e));
	if (err == AVERROR_INVALIDDATA || err == AVERROR(EINVAL))
		snprintf(buf, n, "no supported container was recognised, or it is damaged or cut "
		                 "short (libavformat: %s)",
		    e);
	else
		snprintf(buf, n, "libavformat cannot read it: %s", e);
}

#ifdef CS_FAILPOINTS
/* Test-only: a blob that starts with one of these makes the worker misbehave. */
static void
failpoint(int fd)
{
	char b[24] = {0};

	if (pread(fd, b, sizeof(b) - 1, 0) < 0)
		return;
	if (strncmp(b, "CUSTOS-PROBE-HANG", 17) == 0)
		for (;;)
			pause();
	if (strncmp(b, "CUSTOS-PROBE-CRASH", 18) == 0)
		raise(SIGSEGV);
	if (strncmp(b, "CUSTOS-PROBE-HOG", 16) == 0) {
		for (;;) {
			char *p = malloc(1 << 20);
			if (p == NULL)
				abort(); /* as a library that does not check would */
			memset(p, 1, 1 << 20);
		}
	}
}
#endif

int
cs__av_open(int fd, int64_t size, struct cs__av_reader *r, AVFormatContext **out)
{
	AVFormatContext *fc = NULL;
	AVIOContext *pb = NULL;
	AVDictionary *opts = NULL;
	uint8_t *buf = av_malloc(AVIO_BUF);
	int err = 0;

	*out = NULL;
	*r = (struct cs__av_reader){fd, 0, size, 0, {0}};
	if (buf != NULL)
		pb = avio_alloc_context(buf, AVIO_BUF, 0, r, cs__av_read, NULL, cs__av_seek);
	fc = avformat_alloc_context();
	if (pb == NULL || fc == NULL) {
		err = AVERROR(ENOMEM);
		goto out;
	}
	buf = NULL; /* pb's now */
	fc->pb = pb;
	fc->flags |= AVFMT_FLAG_CUSTOM_IO;
	fc->opaque = r;
	fc->io_open = io_open_refuse;
	fc->probesize = PROBESIZE;
	fc->max_analyze_duration = ANALYZE_US;
	fc->format_whitelist = av_strdup(format_whitelist);
#ifdef CS_FAILPOINTS
	/* Test-only: more demuxers, to show that nested opens are refused. */
	if (getenv("CUSTOS_PROBE_FORMATS") != NULL) {
		av_free(fc->format_whitelist);
		fc->format_whitelist = av_strdup(getenv("CUSTOS_PROBE_FORMATS"));
	}
#endif
	fc->codec_whitelist = av_strdup(codec_whitelist);
	fc->protocol_whitelist = av_strdup("none");
	if (fc->format_whitelist == NULL || fc->codec_whitelist == NULL ||
	    fc->protocol_whitelist == NULL || av_dict_set(&opts, "enable_drefs", "0", 0) < 0 ||
	    av_dict_set_int(&opts, "max_streams", MAX_STREAMS, 0) < 0 ||
	    av_dict_set(&opts, "use_absolute_path", "0", 0) < 0) {
		err = AVERROR(ENOMEM);
		goto out;
	}
	err = avformat_open_input(&fc, "blob", NULL, &opts); /* a name, for relative URLs */
	if (err == 0)
		err = avformat_find_stream_info(fc, NULL);
	if (err == 0 && fc->nb_streams == 0)
		err = AVERROR_INVALIDDATA;
out:
	av_dict_free(&opts);
	av_free(buf);
	if (err < 0) {
		/* avformat_open_input frees fc on failure, not the custom pb */
		avformat_close_input(&fc);
		if (pb != NULL)
			av_freep(&pb->buffer);
		avio_context_free(&pb);
		return err;
	}
	*out = fc;
	return 0;
}

void
cs__av_close(AVFormatContext **fc)
{
	AVIOContext *pb = *fc != NULL ? (*fc)->pb : NULL;

	avformat_close_input(fc);
	if (pb != NULL)
		av_freep(&pb->buffer);
	avio_context_free(&pb);
}

static int
probe_av(int fd, int64_t size, json_t *rec, char *why, size_t whyn)
{
	AVFormatContext *fc = NULL;
	struct cs__av_reader r;
	json_t *streams = json_array(), *data = json_array();
	const char *t;
	int err, rc = 0;

	if (streams == NULL || data == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	err = cs__av_open(fd, size, &r, &fc);
	if (err < 0) {
		cs__av_reason(err, &r, why, whyn);
		goto out;
	}
	rc = set_str(rec, "container", fc->iformat->name);
	if (rc == 0)
		rc = set_str(rec, "container_name", fc->iformat->long_name);
	if (rc == 0 && fc->duration != AV_NOPTS_VALUE && fc->duration >= 0)
		rc = set_int(rec, "duration_us", fc->duration);
	if (rc == 0)
		rc = set_text(rec, "creation_time", tag(fc->metadata, "creation_time"));
	t = tag(fc->metadata, "make");
	if (rc == 0)
		rc = set_text(rec, "make",
		    t != NULL ? t : tag(fc->metadata, "com.apple.quicktime.make"));
	t = tag(fc->metadata, "model");
	if (rc == 0)
		rc = set_text(rec, "model",
		    t != NULL ? t : tag(fc->metadata, "com.apple.quicktime.model"));
	t = tag(fc->metadata, "location");
	if (t == NULL)
		t = tag(fc->metadata, "com.apple.quicktime.location.ISO6709");
	if (rc == 0 && t != NULL)
		rc = set_location(rec, t);
	for (unsigned i = 0; rc == 0 && i < fc->nb_streams && i < MAX_STREAMS; i++)
		rc = add_stream(streams, data, fc->streams[i]);
	if (rc == 0 && json_object_set(rec, "streams", streams) < 0)
		rc = -ENOMEM;
	if (rc == 0 && json_object_set(rec, "data_tracks", data) < 0)
		rc = -ENOMEM;
	if (rc == 0) {
		int v = 0, a = 0;
		for (unsigned i = 0; i < fc->nb_streams; i++) {
			v |= fc->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
			    !(fc->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC);
			a |= fc->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
		}
		rc = set_str(rec, "kind", v ? "video" : a ? "audio" : "other");
	}
out:
	cs__av_close(&fc);
	json_decref(streams);
	json_decref(data);
	return rc;
}

/* Types libmagic names that are not media: recorded with their type, never demuxed. */
static int
not_media(const char *mime)
{
	return strncmp(mime, "image/", 6) == 0 || strncmp(mime, "text/", 5) == 0 ||
	    (strncmp(mime, "application/", 12) == 0 &&
	        strcmp(mime, "application/octet-stream") != 0 &&
	        strcmp(mime, "application/ogg") != 0 && strcmp(mime, "application/mxf") != 0);
}

static const char *
kind_of(const char *mime)
{
	if (strncmp(mime, "image/", 6) == 0)
		return "image";
	if (strcmp(mime, "application/pdf") == 0 || strncmp(mime, "text/", 5) == 0 ||
	    strstr(mime, "document") != NULL || strstr(mime, "msword") != NULL ||
	    strstr(mime, "rtf") != NULL)
		return "document";
	return "other";
}

static int
add_tool(json_t *rec)
{
	char fv[32], cv[32], uv[32], mv[16];
	unsigned f = avformat_version(), c = avcodec_version(), u = avutil_version();
	int m = magic_version();
	json_t *tool;

	snprintf(fv, sizeof(fv), "%u.%u.%u", f >> 16, (f >> 8) & 0xff, f & 0xff);
	snprintf(cv, sizeof(cv), "%u.%u.%u", c >> 16, (c >> 8) & 0xff, c & 0xff);
	snprintf(uv, sizeof(uv), "%u.%u.%u", u >> 16, (u >> 8) & 0xff, u & 0xff);
	snprintf(mv, sizeof(mv), "%d.%02d", m / 100, m % 100);
	tool = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "custos-probe", "libavformat", fv,
	    "libavcodec", cv, "libavutil", uv, "libmagic", mv);
	return tool == NULL || json_object_set_new(rec, "tool", tool) < 0 ? -ENOMEM : 0;
}

int
cs_media_probe_fd(int fd, json_t **out)
{
	json_t *rec = json_object();
	const char *mime = NULL, *desc = NULL;
	char why[400] = "";
	struct stat sb;
	int rc;

	if (rec == NULL)
		return -ENOMEM;
	rc = add_tool(rec);
	if (rc < 0)
		goto out;
	if (fstat(fd, &sb) < 0) {
		snprintf(why, sizeof(why), "the blob cannot be read: %s", strerror(errno));
		goto done;
	}
	if (sb.st_size == 0) {
		rc = set_str(rec, "kind", "empty");
		snprintf(why, sizeof(why), "the file is empty");
		goto done;
	}
#ifdef CS_FAILPOINTS
	failpoint(fd);
#endif
	if (magic_db != NULL) {
		/* libmagic reads through the descriptor's offset: give it a duplicate's */
		magic_setflags(magic_db, MAGIC_MIME_TYPE);
		mime = magic_descriptor(magic_db, fd);
		rc = set_text(rec, "mime", mime);
		mime = json_string_value(json_object_get(rec, "mime"));
		(void)lseek(fd, 0, SEEK_SET);
		magic_setflags(magic_db, MAGIC_NONE);
		desc = magic_descriptor(magic_db, fd);
		if (rc == 0)
			rc = set_text(rec, "type", desc);
		(void)lseek(fd, 0, SEEK_SET);
		if (rc < 0)
			goto out;
	}
#ifdef CS_FAILPOINTS
	if (getenv("CUSTOS_PROBE_FORMATS") != NULL)
		mime = NULL; /* test-only: every file goes to libavformat */
#endif
	if (mime != NULL && not_media(mime)) {
		rc = set_str(rec, "kind", kind_of(mime));
		goto done;
	}
	rc = probe_av(fd, (int64_t)sb.st_size, rec, why, sizeof(why));
	if (rc == 0 && why[0] != '\0' && json_object_get(rec, "kind") == NULL)
		rc = set_str(rec, "kind", "unknown");
done:
	if (rc == 0)
		rc = set_str(rec, "status", why[0] != '\0' ? "unreadable" : "ok");
	if (rc == 0 && why[0] != '\0')
		rc = set_text(rec, "reason", why);
out:
	if (rc < 0) {
		json_decref(rec);
		return rc;
	}
	*out = rec;
	return 0;
}
