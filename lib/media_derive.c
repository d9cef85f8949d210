/*
 * The derivatives that custos-probe makes in its sandbox (custos/media.h,
 * cs_media_derive_fd): from the blob on one descriptor into the file the
 * parent opened on another, never a path. An access copy is an MP4 (H.264 +
 * AAC, moov before mdat) made by remuxing when the original's streams
 * already fit (no re-encode) and by transcoding otherwise, scaled to at
 * most the policy's height; a preservation copy is FFV1 + FLAC in Matroska
 * (lossless) or high-quality H.264 + AAC in MP4; a poster is one JPEG frame.
 * The container's metadata (creation time, location, make, model) is
 * copied. The answer says how the copy was made: method, encoders and
 * their parameters, library versions.
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
#include <libavutil/audio_fifo.h>
#include <libavutil/avutil.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "custos/media.h"
#include "media_av.h"

#define OUT_BUF 65536
#define OUT_NAME "out"

/*
 * The output file (a struct cs__av_reader: its descriptor, position and size
 * so far): written with pwrite, and read back for +faststart's second pass.
 */
/* The errno of a write to the copy that failed (ENOSPC: the store's disk is full). */
static int write_errno;

static int
out_write(void *opaque, uint8_t *buf, int n)
{
	struct cs__av_reader *o = opaque;
	ssize_t k;
	int done = 0;

	while (done < n) {
		k = pwrite(o->fd, buf + done, (size_t)(n - done), (off_t)o->pos);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			write_errno = k < 0 ? errno : EIO;
			return AVERROR(write_errno);
		}
		o->pos += k;
		done += (int)k;
	}
	if (o->pos > o->size)
		o->size = o->pos;
	return n;
}

static AVIOContext *
out_avio(struct cs__av_reader *o, int write)
{
	uint8_t *buf = av_malloc(OUT_BUF);
	AVIOContext *pb = buf != NULL ? avio_alloc_context(buf, OUT_BUF, write, o,
	    write ? NULL : cs__av_read, write ? out_write : NULL, cs__av_seek) : NULL;

	if (pb == NULL)
		av_free(buf);
	return pb;
}

static void
avio_free(AVIOContext **pb)
{
	if (*pb != NULL)
		av_freep(&(*pb)->buffer);
	avio_context_free(pb);
}

/*
 * The muxer's nested opens: only the output itself, for reading (the MP4
 * muxer's second pass that moves the index to the front); anything else
 * is refused.
 */
static int
out_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
    AVDictionary **options)
{
	struct cs__av_reader *o = s->opaque, *r;

	(void)options;
	if (url == NULL || strcmp(url, OUT_NAME) != 0 || (flags & AVIO_FLAG_WRITE))
		return AVERROR(EPERM);
	r = av_malloc(sizeof(*r));
	if (r == NULL)
		return AVERROR(ENOMEM);
	*r = (struct cs__av_reader){o->fd, 0, o->size, 0, {0}};
	*pb = out_avio(r, 0);
	if (*pb == NULL) {
		av_free(r);
		return AVERROR(ENOMEM);
	}
	return 0;
}

static int
out_io_close(struct AVFormatContext *s, AVIOContext *pb)
{
	(void)s;
	if (pb != NULL)
		av_free(pb->opaque);
	avio_free(&pb);
	return 0;
}

/* One stream being transcoded: decoder, converter, encoder, output stream. */
struct xcode {
	int in;               /* input stream index */
	AVCodecContext *dec, *enc;
	AVStream *ost;
	struct SwsContext *sws;
	SwrContext *swr;
	AVAudioFifo *fifo;
	AVFrame *conv;
	int64_t next_pts;     /* audio: samples written */
	int64_t first_pts;    /* the first decoded frame's time, in the input's time base */
};

struct job {
	const char *what;
	int max_height;
	AVFormatContext *ifc, *ofc;
	struct cs__av_reader out;
	struct xcode v, a;
	AVPacket *pkt;
	AVFrame *frame;
	json_t *rec, *streams;
	char why[400];
};

/* Threads for a codec: the CPUs online, at most 16 (each costs memory under RLIMIT_AS). */
static int
threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

static int
fail(struct job *j, int err, const char *what)
{
	char e[AV_ERROR_MAX_STRING_SIZE];

	if (j->why[0] == '\0') {
		av_strerror(err, e, sizeof(e));
		snprintf(j->why, sizeof(j->why), "%s: %s", what, e);
	}
	return err < 0 ? err : AVERROR_BUG;
}

static int
even(int x)
{
	return x & ~1;
}

/* The access copy's frame size: the original's, scaled down to max_height. */
static void
fit(const AVCodecParameters *p, int max_height, int *w, int *h)
{
	*w = p->width;
	*h = p->height;
	if (max_height > 0 && *h > max_height) {
		*w = (int)av_rescale(*w, max_height, *h);
		*h = max_height;
	}
	*w = even(*w) > 0 ? even(*w) : 2;
	*h = even(*h) > 0 ? even(*h) : 2;
}

static int
note_stream(struct job *j, const char *type, const char *codec, const char *encoder,
    const char *params)
{
	json_t *s = json_pack("{s:s, s:s}", "type", type, "codec", codec);

	if (s != NULL && encoder != NULL)
		json_object_set_new(s, "encoder", json_string(encoder));
	if (s != NULL && params != NULL)
		json_object_set_new(s, "parameters", json_string(params));
	return s == NULL || json_array_append_new(j->streams, s) < 0 ? AVERROR(ENOMEM) : 0;
}

/*
 * What matters in court, from the original's tags into the copy's: creation
 * time, location, make, model, timecode and the rest; not the tags that
 * describe the original's own container or encoder (the copy's muxer writes
 * its own).
 */
static int
copy_tags(AVDictionary **to, const AVDictionary *from)
{
	static const char *const own[] = {"major_brand", "minor_version", "compatible_brands",
	    "encoder", "handler_name", "vendor_id"};
	const AVDictionaryEntry *t = NULL;

	while ((t = av_dict_get(from, "", t, AV_DICT_IGNORE_SUFFIX)) != NULL) {
		size_t k = 0;
		while (k < sizeof(own) / sizeof(own[0]) && strcmp(t->key, own[k]) != 0)
			k++;
		if (k == sizeof(own) / sizeof(own[0]) && av_dict_set(to, t->key, t->value, 0) < 0)
			return AVERROR(ENOMEM);
	}
	return 0;
}

static int
open_output(struct job *j, const char *format)
{
	int err = avformat_alloc_output_context2(&j->ofc, NULL, format, OUT_NAME);

	if (err < 0)
		return fail(j, err, "the output container cannot be made");
	j->ofc->pb = out_avio(&j->out, 1);
	if (j->ofc->pb == NULL)
		return AVERROR(ENOMEM);
	j->ofc->flags |= AVFMT_FLAG_CUSTOM_IO;
	j->ofc->opaque = &j->out;
	j->ofc->io_open = out_io_open;
	j->ofc->io_close2 = out_io_close;
	return copy_tags(&j->ofc->metadata, j->ifc->metadata);
}

static int
write_header(struct job *j, int faststart)
{
	AVDictionary *o = NULL;
	int err;

	/* MP4: moov first; make, model and the other tags kept as metadata keys (mdta) */
	if (faststart && av_dict_set(&o, "movflags", "+faststart+use_metadata_tags", 0) < 0)
		return AVERROR(ENOMEM);
	err = avformat_write_header(j->ofc, &o);
	av_dict_free(&o);
	return err < 0 ? fail(j, err, "the output's header cannot be written") : 0;
}

/* The next packet of the original: 1, 0 at its end, or a negative AVERROR. */
static int
read_packet(struct job *j)
{
	int err = av_read_frame(j->ifc, j->pkt);

	if (err == AVERROR_EOF)
		return 0;
	return err < 0 ? fail(j, err, "the original cannot be read to its end") : 1;
}

/* ---- remux: the streams as they are, into MP4 ---- */

static int
remux(struct job *j)
{
	int map[64], err = 0;

	for (unsigned i = 0; i < j->ifc->nb_streams && i < 64; i++)
		map[i] = -1;
	err = open_output(j, "mp4");
	for (int k = 0; err == 0 && k < 2; k++) {
		int in = k == 0 ? j->v.in : j->a.in;
		AVStream *is, *os;

		if (in < 0)
			continue;
		is = j->ifc->streams[in];
		os = avformat_new_stream(j->ofc, NULL);
		if (os == NULL || avcodec_parameters_copy(os->codecpar, is->codecpar) < 0)
			return AVERROR(ENOMEM);
		os->codecpar->codec_tag = 0;
		os->time_base = is->time_base;
		os->avg_frame_rate = is->avg_frame_rate; /* the timecode track needs the rate */
		if (copy_tags(&os->metadata, is->metadata) < 0)
			return AVERROR(ENOMEM);
		map[in] = os->index;
		err = note_stream(j, k == 0 ? "video" : "audio",
		    avcodec_get_name(is->codecpar->codec_id), NULL, "copy");
	}
	if (err == 0)
		err = write_header(j, 1);
	while (err == 0 && (err = read_packet(j)) > 0) {
		AVStream *is;

		err = 0;
		if (j->pkt->stream_index >= 64 || map[j->pkt->stream_index] < 0) {
			av_packet_unref(j->pkt);
			continue;
		}
		is = j->ifc->streams[j->pkt->stream_index];
		j->pkt->stream_index = map[j->pkt->stream_index];
		av_packet_rescale_ts(j->pkt, is->time_base,
		    j->ofc->streams[j->pkt->stream_index]->time_base);
		j->pkt->pos = -1;
		err = av_interleaved_write_frame(j->ofc, j->pkt);
		if (err < 0)
			return fail(j, err, "a packet cannot be written");
	}
	if (err < 0)
		return err;
	err = av_write_trailer(j->ofc);
	return err < 0 ? fail(j, err, "the output cannot be finished") : 0;
}

/* ---- transcode ---- */

static int
open_decoder(struct job *j, struct xcode *x)
{
	const AVStream *s = j->ifc->streams[x->in];
	const AVCodec *c = avcodec_find_decoder(s->codecpar->codec_id);
	int err;

	if (c == NULL)
		return fail(j, AVERROR_DECODER_NOT_FOUND, "no decoder for the original's codec");
	x->dec = avcodec_alloc_context3(c);
	if (x->dec == NULL || avcodec_parameters_to_context(x->dec, s->codecpar) < 0)
		return AVERROR(ENOMEM);
	x->dec->pkt_timebase = s->time_base;
	x->dec->thread_count = threads();
	err = avcodec_open2(x->dec, c, NULL);
	x->first_pts = AV_NOPTS_VALUE;
	return err < 0 ? fail(j, err, "the original's decoder cannot be opened") : 0;
}

/* The encoder's settings, as recorded: "key=value ..." */
static int
open_encoder(struct job *j, struct xcode *x, const char *name, const char *params,
    AVDictionary **opts)
{
	const AVCodec *c = avcodec_find_encoder_by_name(name);
	AVStream *is = j->ifc->streams[x->in];
	int err;

	if (c == NULL)
		return fail(j, AVERROR_ENCODER_NOT_FOUND, "the encoder is not available");
	x->enc = avcodec_alloc_context3(c);
	if (x->enc == NULL)
		return AVERROR(ENOMEM);
	x->enc->thread_count = threads();
	if (c->type == AVMEDIA_TYPE_VIDEO) {
		AVRational fr = av_guess_frame_rate(j->ifc, is, NULL);
		enum AVPixelFormat want = strcmp(name, "ffv1") == 0 ? x->dec->pix_fmt :
		    AV_PIX_FMT_YUV420P;
		if (want == AV_PIX_FMT_YUVJ420P)
			want = AV_PIX_FMT_YUV420P;
		else if (want == AV_PIX_FMT_YUVJ422P)
			want = AV_PIX_FMT_YUV422P;
		else if (want == AV_PIX_FMT_YUVJ444P)
			want = AV_PIX_FMT_YUV444P;
		x->enc->pix_fmt = avcodec_find_best_pix_fmt_of_list(c->pix_fmts, want, 0, NULL);
		if (strcmp(name, "ffv1") == 0)
			x->enc->width = x->dec->width, x->enc->height = x->dec->height;
		else if (strcmp(j->what, "access") == 0)
			fit(is->codecpar, j->max_height, &x->enc->width, &x->enc->height);
		else
			x->enc->width = even(x->dec->width), x->enc->height = even(x->dec->height);
		x->enc->sample_aspect_ratio = x->dec->sample_aspect_ratio;
		x->enc->time_base = is->time_base;
		x->enc->framerate = fr;
		x->enc->color_range = AVCOL_RANGE_MPEG;
		x->sws = sws_getContext(x->dec->width, x->dec->height, x->dec->pix_fmt,
		    x->enc->width, x->enc->height, x->enc->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
		if (x->sws == NULL)
			return fail(j, AVERROR(EINVAL), "the frames cannot be converted");
		x->conv = av_frame_alloc();
		if (x->conv == NULL)
			return AVERROR(ENOMEM);
		x->conv->format = x->enc->pix_fmt;
		x->conv->width = x->enc->width;
		x->conv->height = x->enc->height;
	} else {
		const enum AVSampleFormat *sf = c->sample_fmts;
		enum AVSampleFormat want = av_get_packed_sample_fmt(x->dec->sample_fmt);
		x->enc->sample_fmt = sf[0];
		for (int i = 0; sf[i] != AV_SAMPLE_FMT_NONE; i++)
			if (sf[i] == want || sf[i] == x->dec->sample_fmt)
				x->enc->sample_fmt = sf[i];
		x->enc->sample_rate = x->dec->sample_rate;
		if (av_channel_layout_copy(&x->enc->ch_layout, &x->dec->ch_layout) < 0)
			return AVERROR(ENOMEM);
		if (x->enc->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
			av_channel_layout_default(&x->enc->ch_layout,
			    x->dec->ch_layout.nb_channels);
		x->enc->time_base = (AVRational){1, x->enc->sample_rate};
		if (x->enc->sample_fmt == AV_SAMPLE_FMT_S32)
			x->enc->bits_per_raw_sample = 24 < x->dec->bits_per_raw_sample ? 32 : 24;
	}
	if (j->ofc->oformat->flags & AVFMT_GLOBALHEADER)
		x->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	err = avcodec_open2(x->enc, c, opts);
	if (err < 0)
		return fail(j, err, "the encoder cannot be opened");
	if (c->type == AVMEDIA_TYPE_AUDIO) {
		err = swr_alloc_set_opts2(&x->swr, &x->enc->ch_layout, x->enc->sample_fmt,
		    x->enc->sample_rate, &x->dec->ch_layout, x->dec->sample_fmt,
		    x->dec->sample_rate, 0, NULL);
		if (err == 0)
			err = swr_init(x->swr);
		if (err < 0)
			return fail(j, err, "the audio cannot be converted");
		x->fifo = av_audio_fifo_alloc(x->enc->sample_fmt, x->enc->ch_layout.nb_channels,
		    4096);
		if (x->fifo == NULL)
			return AVERROR(ENOMEM);
	}
	x->ost = avformat_new_stream(j->ofc, NULL);
	if (x->ost == NULL || avcodec_parameters_from_context(x->ost->codecpar, x->enc) < 0 ||
	    copy_tags(&x->ost->metadata, is->metadata) < 0)
		return AVERROR(ENOMEM);
	x->ost->time_base = x->enc->time_base;
	x->ost->avg_frame_rate = is->avg_frame_rate; /* the timecode track needs the rate */
	return note_stream(j, c->type == AVMEDIA_TYPE_VIDEO ? "video" : "audio",
	    avcodec_get_name(c->id), name, params);
}

/* Sends `f` (NULL: the end) to x's encoder and writes what comes out. */
static int
encode(struct job *j, struct xcode *x, AVFrame *f)
{
	int err = avcodec_send_frame(x->enc, f);

	if (err < 0)
		return fail(j, err, "the encoder refused a frame");
	for (;;) {
		err = avcodec_receive_packet(x->enc, j->pkt);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err < 0)
			return fail(j, err, "the encoder failed");
		j->pkt->stream_index = x->ost->index;
		av_packet_rescale_ts(j->pkt, x->enc->time_base, x->ost->time_base);
		err = av_interleaved_write_frame(j->ofc, j->pkt);
		if (err < 0)
			return fail(j, err, "a packet cannot be written");
	}
}

/* Audio from the FIFO in the encoder's frame size (all that is left when `end`). */
static int
drain_fifo(struct job *j, struct xcode *x, int end)
{
	int fs = x->enc->frame_size > 0 ? x->enc->frame_size : 4096, err = 0;

	while (err == 0 && (av_audio_fifo_size(x->fifo) >= fs ||
	    (end && av_audio_fifo_size(x->fifo) > 0))) {
		AVFrame *f = av_frame_alloc();
		int n = FFMIN(fs, av_audio_fifo_size(x->fifo));
		if (f == NULL)
			return AVERROR(ENOMEM);
		f->nb_samples = n;
		f->format = x->enc->sample_fmt;
		f->sample_rate = x->enc->sample_rate;
		err = av_channel_layout_copy(&f->ch_layout, &x->enc->ch_layout);
		if (err == 0)
			err = av_frame_get_buffer(f, 0);
		if (err == 0 && av_audio_fifo_read(x->fifo, (void **)f->data, n) < n)
			err = AVERROR_BUG;
		if (err == 0) {
			f->pts = x->next_pts;
			x->next_pts += n;
			err = encode(j, x, f);
		}
		av_frame_free(&f);
	}
	return err;
}

/* A decoded frame (NULL: the decoder's end): converted and encoded. */
static int
convert(struct job *j, struct xcode *x, AVFrame *f)
{
	AVStream *is = j->ifc->streams[x->in];
	int err;

	if (x->ost->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
		int64_t pts = f->best_effort_timestamp;
		if (pts == AV_NOPTS_VALUE)
			pts = f->pts;
		if (x->first_pts == AV_NOPTS_VALUE)
			x->first_pts = pts;
		av_frame_unref(x->conv);
		x->conv->format = x->enc->pix_fmt;
		x->conv->width = x->enc->width;
		x->conv->height = x->enc->height;
		err = av_frame_get_buffer(x->conv, 0);
		if (err < 0)
			return AVERROR(ENOMEM);
		sws_scale(x->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
		    x->conv->data, x->conv->linesize);
		x->conv->pts = pts == AV_NOPTS_VALUE ? AV_NOPTS_VALUE :
		    av_rescale_q(pts - x->first_pts, is->time_base, x->enc->time_base);
		return encode(j, x, x->conv);
	}
	{
		uint8_t **out = NULL;
		int max = swr_get_out_samples(x->swr, f->nb_samples), n;
		if (max < 0 ||
		    av_samples_alloc_array_and_samples(&out, NULL, x->enc->ch_layout.nb_channels,
		        max > 0 ? max : 1, x->enc->sample_fmt, 0) < 0)
			return AVERROR(ENOMEM);
		n = swr_convert(x->swr, out, max, (const uint8_t **)f->extended_data,
		    f->nb_samples);
		err = n < 0 ? fail(j, n, "the audio cannot be converted") :
		    av_audio_fifo_write(x->fifo, (void **)out, n) < n ? AVERROR(ENOMEM) : 0;
		av_freep(&out[0]);
		av_freep(&out);
		return err == 0 ? drain_fifo(j, x, 0) : err;
	}
}

/* Sends `pkt` (NULL: the end) to x's decoder, and each frame on. */
static int
decode(struct job *j, struct xcode *x, AVPacket *pkt)
{
	int err = avcodec_send_packet(x->dec, pkt);

	if (err < 0 && err != AVERROR_INVALIDDATA)
		return fail(j, err, "the original cannot be decoded");
	for (;;) {
		err = avcodec_receive_frame(x->dec, j->frame);
		if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
			return 0;
		if (err == AVERROR_INVALIDDATA)
			continue; /* a damaged frame: the rest is still worth having */
		if (err < 0)
			return fail(j, err, "the original cannot be decoded");
		err = convert(j, x, j->frame);
		av_frame_unref(j->frame);
		if (err < 0)
			return err;
	}
}

static int
transcode(struct job *j, const char *format, const char *venc, const char *vparams,
    const char *aenc, const char *aparams)
{
	AVDictionary *vo = NULL, *ao = NULL;
	char buf[256];
	int err;

	err = open_output(j, format);
	if (err == 0 && j->v.in >= 0)
		err = open_decoder(j, &j->v);
	if (err == 0 && j->a.in >= 0)
		err = open_decoder(j, &j->a);
	/* the parameters recorded are the ones given: "k=v k=v" as options */
	snprintf(buf, sizeof(buf), "%s", vparams);
	if (err == 0 && av_dict_parse_string(&vo, buf, "=", " ", 0) < 0)
		err = AVERROR(ENOMEM);
	av_dict_set(&vo, "pix_fmt", NULL, 0);
	snprintf(buf, sizeof(buf), "%s", aparams);
	if (err == 0 && av_dict_parse_string(&ao, buf, "=", " ", 0) < 0)
		err = AVERROR(ENOMEM);
	if (err == 0 && j->v.in >= 0)
		err = open_encoder(j, &j->v, venc, vparams, &vo);
	if (err == 0 && j->a.in >= 0)
		err = open_encoder(j, &j->a, aenc, aparams, &ao);
	av_dict_free(&vo);
	av_dict_free(&ao);
	if (err == 0)
		err = write_header(j, strcmp(format, "mp4") == 0);
	while (err == 0 && (err = read_packet(j)) > 0) {
		int s = j->pkt->stream_index;

		err = 0;
		if (s == j->v.in || s == j->a.in) {
			struct xcode *x = s == j->v.in ? &j->v : &j->a;
			AVPacket *p = av_packet_clone(j->pkt);
			av_packet_unref(j->pkt);
			err = p == NULL ? AVERROR(ENOMEM) : decode(j, x, p);
			av_packet_free(&p);
		} else {
			av_packet_unref(j->pkt);
		}
	}
	for (int k = 0; err == 0 && k < 2; k++) {
		struct xcode *x = k == 0 ? &j->v : &j->a;
		if (x->in < 0)
			continue;
		err = decode(j, x, NULL);
		if (err == 0 && x->fifo != NULL)
			err = drain_fifo(j, x, 1);
		if (err == 0)
			err = encode(j, x, NULL);
	}
	if (err == 0 && (err = av_write_trailer(j->ofc)) < 0)
		return fail(j, err, "the output cannot be finished");
	return err;
}

/* ---- poster ---- */

static int
poster(struct job *j)
{
	struct xcode *x = &j->v;
	AVStream *is;
	const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
	int64_t target = 0;
	int err, got = 0;

	if (x->in < 0)
		return fail(j, AVERROR(EINVAL), "the original has no video");
	is = j->ifc->streams[x->in];
	err = open_decoder(j, x);
	if (err < 0)
		return err;
	/* a tenth into the video, at most 5 s: past a black first frame, cheap to reach */
	if (j->ifc->duration > 0)
		target = av_rescale_q(FFMIN(j->ifc->duration / 10, 5 * AV_TIME_BASE),
		    AV_TIME_BASE_Q, is->time_base) +
		    (is->start_time != AV_NOPTS_VALUE ? is->start_time : 0);
	if (target > 0 && av_seek_frame(j->ifc, x->in, target, AVSEEK_FLAG_BACKWARD) < 0)
		target = 0;
	while (!got) {
		err = av_read_frame(j->ifc, j->pkt);
		if (err < 0 && err != AVERROR_EOF)
			return fail(j, err, "the original cannot be read");
		if (err == 0 && j->pkt->stream_index != x->in) {
			av_packet_unref(j->pkt);
			continue;
		}
		err = avcodec_send_packet(x->dec, err == 0 ? j->pkt : NULL);
		av_packet_unref(j->pkt);
		if (err < 0 && err != AVERROR_INVALIDDATA && err != AVERROR_EOF)
			return fail(j, err, "the original cannot be decoded");
		for (;;) {
			err = avcodec_receive_frame(x->dec, j->frame);
			if (err == AVERROR_EOF && !got)
				return fail(j, AVERROR_EOF, "no frame could be decoded");
			if (err < 0)
				break;
			/* the frame at the target, or the last one before the end */
			got = j->frame->best_effort_timestamp >= target;
			if (got)
				break;
			av_frame_unref(j->frame);
		}
		if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_INVALIDDATA)
			return fail(j, err, "the original cannot be decoded");
	}
	if (c == NULL)
		return fail(j, AVERROR_ENCODER_NOT_FOUND, "the JPEG encoder is not available");
	x->enc = avcodec_alloc_context3(c);
	if (x->enc == NULL)
		return AVERROR(ENOMEM);
	fit(is->codecpar, j->max_height, &x->enc->width, &x->enc->height);
	x->enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
	x->enc->time_base = (AVRational){1, 25};
	x->enc->flags |= AV_CODEC_FLAG_QSCALE;
	x->enc->global_quality = FF_QP2LAMBDA * 3;
	err = avcodec_open2(x->enc, c, NULL);
	if (err < 0)
		return fail(j, err, "the JPEG encoder cannot be opened");
	x->sws = sws_getContext(x->dec->width, x->dec->height, j->frame->format, x->enc->width,
	    x->enc->height, x->enc->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
	x->conv = av_frame_alloc();
	if (x->sws == NULL || x->conv == NULL)
		return AVERROR(ENOMEM);
	x->conv->format = x->enc->pix_fmt;
	x->conv->width = x->enc->width;
	x->conv->height = x->enc->height;
	if (av_frame_get_buffer(x->conv, 0) < 0)
		return AVERROR(ENOMEM);
	sws_scale(x->sws, (const uint8_t *const *)j->frame->data, j->frame->linesize, 0,
	    j->frame->height, x->conv->data, x->conv->linesize);
	x->conv->pts = 0;
	err = avcodec_send_frame(x->enc, x->conv);
	if (err == 0)
		err = avcodec_receive_packet(x->enc, j->pkt);
	if (err < 0)
		return fail(j, err, "the frame cannot be encoded as JPEG");
	err = out_write(&j->out, j->pkt->data, j->pkt->size);
	av_packet_unref(j->pkt);
	if (err < 0)
		return fail(j, err, "the poster cannot be written");
	if (json_object_set_new(j->rec, "frame_time_us",
	        json_integer(av_rescale_q(j->frame->best_effort_timestamp, is->time_base,
	            AV_TIME_BASE_Q))) < 0)
		return AVERROR(ENOMEM);
	return note_stream(j, "video", "mjpeg", "mjpeg", "q=3 pix_fmt=yuvj420p");
}

/* ---- the choice ---- */

/* The original's streams already fit an access copy: H.264 4:2:0 8 bit, AAC or no audio. */
static int
fits_access(const struct job *j)
{
	const AVCodecParameters *v = j->ifc->streams[j->v.in]->codecpar;
	const AVCodecParameters *a = j->a.in >= 0 ? j->ifc->streams[j->a.in]->codecpar : NULL;

	return v->codec_id == AV_CODEC_ID_H264 && v->format == AV_PIX_FMT_YUV420P &&
	    (j->max_height <= 0 || v->height <= j->max_height) &&
	    (a == NULL || a->codec_id == AV_CODEC_ID_AAC);
}

static void
version(char *buf, size_t n, unsigned v)
{
	snprintf(buf, n, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
}

int
cs__av_tool(json_t *rec)
{
	char f[32], c[32], u[32], s[32], r[32];

	version(f, sizeof(f), avformat_version());
	version(c, sizeof(c), avcodec_version());
	version(u, sizeof(u), avutil_version());
	version(s, sizeof(s), swscale_version());
	version(r, sizeof(r), swresample_version());
	return json_object_set_new(rec, "tool",
	           json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "custos-probe",
	               "libavformat", f, "libavcodec", c, "libavutil", u, "libswscale", s,
	               "libswresample", r)) < 0 ? -ENOMEM : 0;
}

static void
xcode_free(struct xcode *x)
{
	avcodec_free_context(&x->dec);
	avcodec_free_context(&x->enc);
	sws_freeContext(x->sws);
	swr_free(&x->swr);
	if (x->fifo != NULL)
		av_audio_fifo_free(x->fifo);
	av_frame_free(&x->conv);
}

int
cs_media_derive_fd(int in, int out, const char *what, int max_height, json_t **res)
{
	struct job j;
	struct cs__av_reader r;
	struct stat sb;
	const char *method = NULL;
	int err, rc = 0;

	memset(&j, 0, sizeof(j));
	j.what = what;
	j.max_height = max_height;
	j.out.fd = out;
	j.v.in = j.a.in = -1;
	j.rec = json_object();
	j.streams = json_array();
	j.pkt = av_packet_alloc();
	j.frame = av_frame_alloc();
	if (j.rec == NULL || j.streams == NULL || j.pkt == NULL || j.frame == NULL ||
	    cs__av_tool(j.rec) < 0) {
		rc = -ENOMEM;
		goto out;
	}
#ifdef CS_FAILPOINTS
	/* Test-only: a transcoder that crashes (what == the variable's value, or any). */
	if (getenv("CUSTOS_DERIVE_CRASH") != NULL &&
	    (strcmp(getenv("CUSTOS_DERIVE_CRASH"), "any") == 0 ||
	        strcmp(getenv("CUSTOS_DERIVE_CRASH"), what) == 0))
		raise(SIGSEGV);
	/* ... or one that never ends */
	if (getenv("CUSTOS_DERIVE_HANG") != NULL && strcmp(getenv("CUSTOS_DERIVE_HANG"), what) == 0)
		for (;;)
			pause();
#endif
	if (fstat(in, &sb) < 0) {
		snprintf(j.why, sizeof(j.why), "the blob cannot be read: %s", strerror(errno));
		goto done;
	}
	err = cs__av_open(in, (int64_t)sb.st_size, &r, &j.ifc);
	if (err < 0) {
		cs__av_reason(err, &r, j.why, sizeof(j.why));
		goto done;
	}
	j.v.in = av_find_best_stream(j.ifc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	j.a.in = av_find_best_stream(j.ifc, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
	if (j.v.in >= 0 && (j.ifc->streams[j.v.in]->disposition & AV_DISPOSITION_ATTACHED_PIC))
		j.v.in = -1; /* cover art is not the video */
	j.a.in = j.a.in >= 0 ? j.a.in : -1;
	if (strcmp(what, "poster") == 0) {
		method = "frame";
		err = poster(&j);
	} else if (j.v.in < 0 && j.a.in < 0) {
		err = fail(&j, AVERROR(EINVAL), "the original has no audio or video stream");
	} else if (strcmp(what, "access") == 0 && j.v.in >= 0 && fits_access(&j)) {
		method = "remux";
		err = remux(&j);
	} else if (strcmp(what, "access") == 0) {
		method = "transcode";
		err = transcode(&j, "mp4", "libx264",
		    "crf=23 preset=veryfast profile=high pix_fmt=yuv420p", "aac", "b=128000");
	} else if (strcmp(what, "preservation-ffv1") == 0) {
		method = "transcode";
		err = transcode(&j, "matroska", "ffv1", "level=3 g=1 slicecrc=1 coder=1 context=1",
		    "flac", "compression_level=8");
	} else if (strcmp(what, "preservation-h264") == 0) {
		method = "transcode";
		err = transcode(&j, "mp4", "libx264",
		    "crf=16 preset=slow profile=high pix_fmt=yuv420p", "aac", "b=256000");
	} else {
		err = fail(&j, AVERROR(EINVAL), "no such derivative");
	}
	if (err == AVERROR(ENOMEM) && j.why[0] == '\0') {
		rc = -ENOMEM;
		goto out;
	}
	if (err < 0 && (write_errno == ENOSPC || write_errno == EDQUOT)) {
		rc = -ENOSPC; /* not the original's fault: made again once there is room */
		goto out;
	}
	if (err < 0 && j.why[0] == '\0')
		fail(&j, err, "the derivative cannot be made");
done:
	if (method != NULL && json_object_set_new(j.rec, "method", json_string(method)) < 0)
		rc = -ENOMEM;
	if (rc == 0 && (json_object_set_new(j.rec, "status",
	                    json_string(j.why[0] != '\0' ? "failed" : "ok")) < 0 ||
	                   json_object_set(j.rec, "streams", j.streams) < 0 ||
	                   (j.why[0] != '\0' &&
	                       json_object_set_new(j.rec, "reason", json_string(j.why)) < 0)))
		rc = -ENOMEM;
out:
	if (j.ofc != NULL) {
		avio_free(&j.ofc->pb);
		avformat_free_context(j.ofc);
	}
	xcode_free(&j.v);
	xcode_free(&j.a);
	cs__av_close(&j.ifc);
	av_packet_free(&j.pkt);
	av_frame_free(&j.frame);
	json_decref(j.streams);
	if (rc < 0) {
		json_decref(j.rec);
		return rc;
	}
	*res = j.rec;
	return 0;
}
