/*
 * The fingerprints that custos-probe computes in its sandbox
 * (cs_media_fingerprint_fd, custos/media.h), from the blob on one
 * descriptor. Video: only keyframes are decoded (non-key packets are not
 * even sent to the decoder, and it skips non-key frames), at most one per
 * interval of the timeline (one per second; longer for footage of more than
 * FP_MAX_HASHES seconds), each scaled to 9x8 gray with libswscale and
 * reduced to a 64-bit difference hash (dHash: bit 8*y+x set when pixel x of
 * row y is darker than pixel x+1) with its time in ms from the stream's
 * start. Audio: Chromaprint's raw fingerprint (32-bit values, one per
 * chromaprint_get_item_duration samples, "item_us") of the first audio stream, decoded and
 * resampled to mono 16-bit at 11025 Hz, of at most FP_MAX_AUDIO values.
 * Both are written as hex text: video 24 digits per hash (time ms, 8;
 * hash, 16), audio 8 digits per value. The answer names the algorithms and
 * the library versions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <chromaprint.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "custos/media.h"
#include "media_av.h"

#define FP_MAX_HASHES 4096  /* video hashes per item */
#define FP_MAX_AUDIO 16384  /* chromaprint values per item (about 34 minutes) */
#define FP_INTERVAL_MS 1000 /* at most one keyframe hash per second of footage */
#define AUDIO_RATE 11025

struct fp {
	AVFormatContext *ifc;
	AVCodecContext *vdec, *adec;
	struct SwsContext *sws;
	SwrContext *swr;
	ChromaprintContext *cp;
	AVPacket *pkt;
	AVFrame *frame;
	int vin, ain;
	int64_t interval_ms, last_bucket;
	char *vhex; /* FP_MAX_HASHES * 24 + 1 */
	size_t nv;
	int16_t *abuf;
	int abuf_n;
	int64_t afed; /* samples given to chromaprint */
	struct cs__av_reader *r;
	char why[200];
};

static const char hexd[] = "0123456789abcdef";

static void
put_hex(char *dst, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		dst[i] = hexd[v & 15];
}

static int
open_dec(struct fp *f, int in, AVCodecContext **out)
{
	const AVStream *s = f->ifc->streams[in];
	const AVCodec *c = avcodec_find_decoder(s->codecpar->codec_id);
	AVCodecContext *d;

	if (c == NULL)
		return AVERROR_DECODER_NOT_FOUND;
	d = avcodec_alloc_context3(c);
	*out = d;
	if (d == NULL || avcodec_parameters_to_context(d, s->codecpar) < 0)
		return AVERROR(ENOMEM);
	d->pkt_timebase = s->time_base;
	d->thread_count = 1; /* one core: the workers of several items run side by side */
	if (in == f->vin)
		d->skip_frame = AVDISCARD_NONKEY;
	return avcodec_open2(d, c, NULL);
}

/* The hash of the frame just decoded, when its interval has none yet. */
static int
hash_frame(struct fp *f)
{
	const AVStream *s = f->ifc->streams[f->vin];
	AVFrame *fr = f->frame;
	uint8_t px[8 * 9 + 16], *dst[4] = {px, NULL, NULL, NULL};
	int ls[4] = {9, 0, 0, 0};
	int64_t ts = fr->best_effort_timestamp, ms, bucket;
	uint64_t h = 0;

	if (ts == AV_NOPTS_VALUE || f->nv >= FP_MAX_HASHES)
		return 0;
	if (s->start_time != AV_NOPTS_VALUE)
		ts -= s->start_time;
	ms = av_rescale_q(ts, s->time_base, (AVRational){1, 1000});
	if (ms < 0)
		ms = 0;
	if (ms > UINT32_MAX)
		return 0;
	bucket = ms / f->interval_ms;
	if (bucket <= f->last_bucket)
		return 0;
	f->sws = sws_getCachedContext(f->sws, fr->width, fr->height, fr->format, 9, 8,
	    AV_PIX_FMT_GRAY8, SWS_AREA, NULL, NULL, NULL);
	if (f->sws == NULL)
		return AVERROR(ENOMEM);
	if (sws_scale(f->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height,
	        dst, ls) != 8)
		return 0;
	for (int y = 0; y < 8; y++)
		for (int x = 0; x < 8; x++)
			h = h << 1 | (px[9 * y + x] < px[9 * y + x + 1]);
	put_hex(f->vhex + 24 * f->nv, (uint64_t)ms, 8);
	put_hex(f->vhex + 24 * f->nv + 8, h, 16);
	f->nv++;
	f->last_bucket = bucket;
	return 0;
}

/* Feeds the decoded audio frame to chromaprint, resampled, until FP_MAX_AUDIO values. */
static int
feed_audio(struct fp *f)
{
	int64_t limit = (int64_t)FP_MAX_AUDIO * chromaprint_get_item_duration_ms(f->cp) *
	    AUDIO_RATE / 1000;
	int room = (int)av_rescale_rnd(f->frame->nb_samples, AUDIO_RATE, f->adec->sample_rate,
	    AV_ROUND_UP) + 256;
	uint8_t *out;
	int n;

	if (f->afed >= limit)
		return 0;
	if (room > f->abuf_n) {
		int16_t *b = realloc(f->abuf, (size_t)room * sizeof(*b));
		if (b == NULL)
			return AVERROR(ENOMEM);
		f->abuf = b;
		f->abuf_n = room;
	}
	out = (uint8_t *)f->abuf;
	n = swr_convert(f->swr, &out, f->abuf_n, (const uint8_t **)f->frame->extended_data,
	    f->frame->nb_samples);
	if (n < 0)
		return n;
	if (n > 0 && !chromaprint_feed(f->cp, f->abuf, n))
		return AVERROR_EXTERNAL;
	f->afed += n;
	return 0;
}

/* Receives every frame the decoder has ready. */
static int
drain(struct fp *f, AVCodecContext *d)
{
	int err;

	for (;;) {
		err = avcodec_receive_frame(d, f->frame);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0)
			return err == AVERROR_INVALIDDATA ? 0 : err;
		err = d == f->vdec ? hash_frame(f) : feed_audio(f);
		av_frame_unref(f->frame);
		if (err < 0)
			return err;
	}
}

static int
open_audio(struct fp *f)
{
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	int err = open_dec(f, f->ain, &f->adec);

	if (err < 0)
		return err;
	if (f->adec->ch_layout.nb_channels == 0)
		av_channel_layout_default(&f->adec->ch_layout, 1);
	err = swr_alloc_set_opts2(&f->swr, &mono, AV_SAMPLE_FMT_S16, AUDIO_RATE,
	    &f->adec->ch_layout, f->adec->sample_fmt, f->adec->sample_rate, 0, NULL);
	if (err < 0)
		return err;
	err = swr_init(f->swr);
	if (err < 0)
		return err;
	f->cp = chromaprint_new(CHROMAPRINT_ALGORITHM_DEFAULT);
	if (f->cp == NULL)
		return AVERROR(ENOMEM);
	return chromaprint_start(f->cp, AUDIO_RATE, 1) ? 0 : AVERROR_EXTERNAL;
}

/* The audio part of the answer: {"algorithm", "item_us", "count", "values"}. */
static int
audio_json(struct fp *f, json_t *rec)
{
	uint32_t *raw = NULL;
	int size = 0, rc = 0;
	char *hex = NULL;
	json_t *a;

	if (!chromaprint_finish(f->cp) || !chromaprint_get_raw_fingerprint(f->cp, &raw, &size))
		return json_object_set_new(rec, "audio_reason",
		           json_string("Chromaprint could not fingerprint the audio")) < 0 ?
		    AVERROR(ENOMEM) : 0;
	if (size > FP_MAX_AUDIO)
		size = FP_MAX_AUDIO;
	hex = malloc((size_t)size * 8 + 1);
	if (hex == NULL) {
		chromaprint_dealloc(raw);
		return AVERROR(ENOMEM);
	}
	for (int i = 0; i < size; i++)
		put_hex(hex + 8 * i, raw[i], 8);
	hex[8 * size] = '\0';
	chromaprint_dealloc(raw);
	a = json_pack("{s:s, s:i, s:s, s:I, s:i, s:s}", "algorithm", "chromaprint",
	    "chromaprint_algorithm", CHROMAPRINT_ALGORITHM_DEFAULT + 1, "chromaprint",
	    chromaprint_get_version(), "item_us",
	    (json_int_t)chromaprint_get_item_duration(f->cp) * 1000000 / AUDIO_RATE, "count",
	    size, "values", hex);
	if (a == NULL || json_object_set_new(rec, "audio", a) < 0)
		rc = AVERROR(ENOMEM);
	free(hex);
	return rc;
}

/* The worker's library versions, Chromaprint's among them. */
static int
add_tool(json_t *rec)
{
	return cs__av_tool(rec) < 0 ||
	    json_object_set_new(json_object_get(rec, "tool"), "chromaprint",
	        json_string(chromaprint_get_version())) < 0 ? -ENOMEM : 0;
}

/* Reads the blob once: keyframes to the video decoder, audio to chromaprint. */
static int
run(struct fp *f)
{
	int err, vok = f->vin >= 0, aok = f->ain >= 0;
	int64_t dur_ms = f->ifc->duration > 0 ? f->ifc->duration / 1000 : 0;

	f->interval_ms = FP_INTERVAL_MS;
	if (dur_ms / FP_INTERVAL_MS >= FP_MAX_HASHES)
		f->interval_ms = dur_ms / FP_MAX_HASHES + 1;
	f->last_bucket = -1;
	if (vok && open_dec(f, f->vin, &f->vdec) < 0) {
		avcodec_free_context(&f->vdec); /* no "video" in the answer */
		vok = 0;
	}
	if (aok && open_audio(f) < 0) {
		if (f->cp != NULL)
			chromaprint_free(f->cp);
		f->cp = NULL; /* no "audio" in the answer */
		aok = 0;
	}
	if (!vok && !aok) {
		snprintf(f->why, sizeof(f->why), "%s", f->vin < 0 && f->ain < 0 ?
		    "the file has no audio or video stream" :
		    "the file's streams cannot be decoded");
		return 0;
	}
	for (;;) {
		AVCodecContext *d = NULL;
		err = av_read_frame(f->ifc, f->pkt);
		if (err == AVERROR_EOF)
			break;
		if (err < 0) {
			if (f->nv == 0 && f->afed == 0) {
				cs__av_reason(err, f->r, f->why, sizeof(f->why));
				return 0;
			}
			break; /* a damaged tail: what was read so far */
		}
		if (vok && f->pkt->stream_index == f->vin && (f->pkt->flags & AV_PKT_FLAG_KEY) &&
		    f->nv < FP_MAX_HASHES)
			d = f->vdec;
		else if (aok && f->pkt->stream_index == f->ain)
			d = f->adec;
		if (d != NULL) {
			err = avcodec_send_packet(d, f->pkt);
			if (err == 0)
				err = drain(f, d);
			if (err == AVERROR(ENOMEM) || err == AVERROR_EXTERNAL) {
				av_packet_unref(f->pkt);
				return err;
			}
		}
		av_packet_unref(f->pkt);
	}
	if (vok && avcodec_send_packet(f->vdec, NULL) == 0 && drain(f, f->vdec) == AVERROR(ENOMEM))
		return AVERROR(ENOMEM);
	if (aok && avcodec_send_packet(f->adec, NULL) == 0 && drain(f, f->adec) == AVERROR(ENOMEM))
		return AVERROR(ENOMEM);
	return 0;
}

int
cs_media_fingerprint_fd(int in, json_t **res)
{
	struct fp f;
	struct cs__av_reader r;
	struct stat sb;
	json_t *rec = json_object();
	int err, rc = 0;

	memset(&f, 0, sizeof(f));
	f.vin = f.ain = -1;
	f.r = &r;
	f.pkt = av_packet_alloc();
	f.frame = av_frame_alloc();
	f.vhex = malloc(FP_MAX_HASHES * 24 + 1);
	if (rec == NULL || f.pkt == NULL || f.frame == NULL || f.vhex == NULL ||
	    add_tool(rec) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (fstat(in, &sb) < 0) {
		snprintf(f.why, sizeof(f.why), "the blob cannot be read: %s", strerror(errno));
		goto done;
	}
	err = cs__av_open(in, (int64_t)sb.st_size, &r, &f.ifc);
	if (err < 0) {
		cs__av_reason(err, &r, f.why, sizeof(f.why));
		goto done;
	}
	f.vin = av_find_best_stream(f.ifc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	f.ain = av_find_best_stream(f.ifc, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	if (f.vin >= 0 && (f.ifc->streams[f.vin]->disposition & AV_DISPOSITION_ATTACHED_PIC))
		f.vin = -1; /* cover art is not the video */
	f.vin = f.vin >= 0 ? f.vin : -1;
	f.ain = f.ain >= 0 ? f.ain : -1;
	err = run(&f);
	if (err == AVERROR(ENOMEM)) {
		rc = -ENOMEM;
		goto out;
	}
	if (err < 0 && f.why[0] == '\0')
		snprintf(f.why, sizeof(f.why), "the file cannot be fingerprinted (%s)",
		    av_err2str(err));
	if (f.why[0] == '\0' && f.vdec != NULL) {
		f.vhex[24 * f.nv] = '\0';
		if (json_object_set_new(rec, "video",
		        json_pack("{s:s, s:I, s:i, s:s}", "algorithm", "dhash64-keyframe",
		            "interval_ms", (json_int_t)f.interval_ms, "count", (int)f.nv, "hashes",
		            f.vhex)) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (f.why[0] == '\0' && f.cp != NULL && audio_json(&f, rec) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (f.why[0] == '\0' && json_object_get(rec, "video") == NULL &&
	    json_object_get(rec, "audio") == NULL)
		snprintf(f.why, sizeof(f.why), "no keyframe or audio could be decoded");
done:
	if (json_object_set_new(rec, "status", json_string(f.why[0] ? "failed" : "ok")) < 0 ||
	    (f.why[0] && json_object_set_new(rec, "reason", json_string(f.why)) < 0))
		rc = -ENOMEM;
out:
	avcodec_free_context(&f.vdec);
	avcodec_free_context(&f.adec);
	sws_freeContext(f.sws);
	swr_free(&f.swr);
	if (f.cp != NULL)
		chromaprint_free(f.cp);
	free(f.abuf);
	free(f.vhex);
	cs__av_close(&f.ifc);
	av_packet_free(&f.pkt);
	av_frame_free(&f.frame);
	if (rc < 0) {
		json_decref(rec);
		return rc;
	}
	*res = rec;
	return 0;
}
