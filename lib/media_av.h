/*
 * lib-internal, the media worker's side: opening a blob with libavformat
 * through an AVIOContext on its descriptor, with the demuxer and decoder
 * whitelists, nested opens refused and bounded probing (lib/media_probe.c),
 * shared by the probe and the derivatives (lib/media_derive.c).
 */
#ifndef CS_MEDIA_AV_H
#define CS_MEDIA_AV_H

#include <stdint.h>

#include <jansson.h>
#include <libavformat/avformat.h>

struct cs__av_reader {
	int fd;
	int64_t pos, size;
	int nested; /* a nested open was asked for, and refused */
	char nested_url[128];
};

/* AVIOContext callbacks reading `opaque`, a struct cs__av_reader, with pread. */
int cs__av_read(void *opaque, uint8_t *buf, int n);
int64_t cs__av_seek(void *opaque, int64_t off, int whence);

/*
 * Opens the file on `fd` (`size` bytes; read with pread only) into *fc,
 * streams found; `r` must outlive *fc. Returns 0, or a negative AVERROR
 * (*fc NULL). Close with cs__av_close.
 */
int cs__av_open(int fd, int64_t size, struct cs__av_reader *r, AVFormatContext **fc);
void cs__av_close(AVFormatContext **fc);
/*
 * Sets rec's "tool": {"name": "custos-probe", and the versions of
 * libavformat, libavcodec, libavutil, libswscale and libswresample}. 0 or
 * -ENOMEM. lib/media_derive.c.
 */
int cs__av_tool(json_t *rec);
/* What libavformat's error `err` means to an operator, into buf. */
void cs__av_reason(int err, const struct cs__av_reader *r, char *buf, size_t n);

#endif
