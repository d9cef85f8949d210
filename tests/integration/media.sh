#!/bin/bash
# Media records (custos/media.h), media made here by the ffmpeg CLI from
# lavfi sources:
#   (a) `custos media process` (no daemon) identifies an H.264/AAC MP4, an
#       MJPEG/PCM AVI, an MPEG-TS, a WAV, a JPEG photo and a hand-written PDF
#       (container, codecs, resolution, frame rate, sample rate, channels,
#       duration; type from libmagic for the photo and the PDF); a truncated
#       MP4, random bytes named .mp4 and an empty file are secured and
#       recorded "unreadable" with a reason; a MOV with a location tag,
#       make/model, creation time and a timecode data track keeps the GPS
#       position and the data track's presence; every record names the tool
#       and the libavformat/libavcodec/libmagic versions, in a "media" ledger
#       event; verify passes, rebuild gives the same records;
#   (b) nested opens: an HLS playlist naming another local file is only a
#       text document to the normal worker, and a worker that lets the hls
#       demuxer at it (custos-probe-failpoint with CUSTOS_PROBE_FORMATS) is
#       refused the other file: the record says so and has no stream of it;
#   (c) custosd catches up items secured by `custos ingest` with no daemon;
#       a worker that hangs (test trigger of the failpoint build) holds no
#       intake back: a file dropped meanwhile is secured and released while
#       the worker still runs; it is killed at [media] timeout and the item
#       is "unreadable" with that reason; a worker that crashes, and one
#       that exceeds its memory limit (not under ASan: no RLIMIT_AS there),
#       likewise; custosd still runs, reports the stage in its status, and
#       stops cleanly.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_PROBE_BIN:?CUSTOS_PROBE_BIN must point at custos-probe}"
: "${CUSTOS_PROBE_FP:?CUSTOS_PROBE_FP must point at custos-probe-failpoint}"
# The worker custos and custosd run (the other tests' daemons have none: no media events).
export CUSTOS_PROBE=$CUSTOS_PROBE_BIN
need_python3
asan_allow_preload
command -v ffmpeg >/dev/null || { echo "1..0 # SKIP no ffmpeg"; exit 77; }

M="$WORK/media"
mkdir -p "$M"
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
ff -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -f lavfi -i sine=frequency=440:duration=2 \
	-c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$M/clip.mp4"
ff -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -f lavfi -i sine=duration=2:sample_rate=22050 \
	-c:v mjpeg -c:a pcm_s16le -shortest "$M/rec.avi"
ff -f lavfi -i testsrc=size=352x288:rate=25:duration=2 -f lavfi -i sine=duration=2 \
	-c:v libx264 -pix_fmt yuv420p -c:a aac -shortest -f mpegts "$M/stream.ts"
ff -f lavfi -i sine=frequency=1000:duration=1:sample_rate=48000 -ac 2 -c:a pcm_s16le "$M/talk.wav"
ff -f lavfi -i testsrc=size=640x480 -frames:v 1 "$M/photo.jpg"
ff -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -c:v libx264 -pix_fmt yuv420p \
	-metadata location=+31.2304+121.4737+004.000/ -metadata make=Acme -metadata model=BWC-7 \
	-metadata creation_time=2026-03-01T08:30:00Z -timecode 08:30:00:00 "$M/gps.mov"
t_ok $? "media made with ffmpeg"
# A small valid PDF, offsets computed.
python3 - "$M/form.pdf" <<'PY'
import sys
objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"]
out = b"%PDF-1.4\n"
offs = []
for i, o in enumerate(objs, 1):
    offs.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
x = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
out += b"".join(b"%010d 00000 n \n" % o for o in offs)
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
open(sys.argv[1], "wb").write(out)
PY
head -c 6000 "$M/clip.mp4" >"$M/cut.mp4"
head -c 200000 /dev/urandom >"$M/noise.mp4"
: >"$M/empty.mp4"

"$CUSTOS" init --station md >/dev/null 2>&1
t_ok $? "custos init"
"$CUSTOS" ingest "$M"/* >/dev/null 2>"$WORK/ingest.err"
t_ok $? "every file secured by custos ingest"

pending() { "$CUSTOS" media --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"])'; }
[ "$(pending)" = 10 ]
t_ok $? "custos media: 10 items without a media record ($(pending))"

"$CUSTOS" media process --json >"$WORK/process.json" 2>"$WORK/process.err"
t_ok $? "custos media process makes them"
[ "$(pending)" = 0 ]
t_ok $? "custos media: none left without a record"

# check NAME PYTHON-EXPR...: every expression holds for the item's record r (its "media" m).
check() {
	local name=$1 id
	shift
	id=$(id_of "$name")
	"$CUSTOS" show "$id" --json >"$WORK/show.json" 2>/dev/null
	python3 - "$WORK/show.json" "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["record"]
m = r.get("media", {})
s = m.get("streams", [])
v = [x for x in s if x["type"] == "video"]
a = [x for x in s if x["type"] == "audio"]
bad = [e for e in sys.argv[2:] if not eval(e)]
for e in bad:
    print("#   fails: " + e)
if bad:
    print("#   record: " + json.dumps(m)[:600])
sys.exit(1 if bad else 0)
PY
	t_ok $? "$name: ${DESC:-identified}"
}
DESC="H.264/AAC in MP4, 320x240 at 25 fps, 44.1 kHz mono, 2 s" check clip.mp4 \
	'm["status"] == "ok"' 'm["kind"] == "video"' 'm["mime"] == "video/mp4"' \
	'"mp4" in m["container"]' 'v[0]["codec"] == "h264" and v[0]["codec_tag"] == "avc1"' \
	'(v[0]["width"], v[0]["height"], v[0]["frame_rate"]) == (320, 240, "25/1")' \
	'a[0]["codec"] == "aac" and a[0]["sample_rate"] == 44100 and a[0]["channels"] == 1' \
	'abs(m["duration_us"] - 2000000) <= 40000' 'm["data_tracks"] == []'
DESC="MJPEG/PCM in AVI" check rec.avi 'm["status"] == "ok"' 'm["container"] == "avi"' \
	'v[0]["codec"] == "mjpeg" and v[0]["width"] == 320' \
	'a[0]["codec"] == "pcm_s16le" and a[0]["sample_rate"] == 22050'
DESC="H.264/AAC in MPEG-TS, 352x288" check stream.ts 'm["status"] == "ok"' \
	'm["container"] == "mpegts"' 'v[0]["codec"] == "h264" and v[0]["height"] == 288' \
	'a[0]["codec"] == "aac"'
DESC="WAV, PCM 48 kHz stereo, audio" check talk.wav 'm["status"] == "ok"' 'm["kind"] == "audio"' \
	'm["container"] == "wav"' 'a[0]["codec"] == "pcm_s16le"' \
	'a[0]["sample_rate"] == 48000 and a[0]["channels"] == 2' 'v == []'
DESC="JPEG photo: an image, by its type, not demuxed" check photo.jpg 'm["status"] == "ok"' \
	'm["kind"] == "image"' 'm["mime"] == "image/jpeg"' '"JPEG" in m["type"]' \
	'"container" not in m'
DESC="PDF: a document, by its type" check form.pdf 'm["status"] == "ok"' \
	'm["kind"] == "document"' 'm["mime"] == "application/pdf"' '"PDF" in m["type"]'
for f in cut.mp4 noise.mp4 empty.mp4; do
	DESC="secured, unreadable with a reason" check "$f" 'm["status"] == "unreadable"' \
		'len(m["reason"]) > 10' 'r["sha256"] and r["size"] >= 0'
done
DESC="the empty file's reason says so" check empty.mp4 '"empty" in m["reason"]'
DESC="GPS location, make/model, creation time, the timecode data track" check gps.mov \
	'm["location"]["iso6709"] == "+31.2304+121.4737+004.000/"' \
	'(m["location"]["lat"], m["location"]["lon"]) == ("+31.2304", "+121.4737")' \
	'(m["make"], m["model"]) == ("Acme", "BWC-7")' \
	'm["creation_time"].startswith("2026-03-01T08:30:00")' \
	'[d["codec_tag"] for d in m["data_tracks"]] == ["tmcd"]' \
	'[x["type"] for x in s] == ["video", "data"]'
DESC="the record names the tool and library versions, and its ledger event" check clip.mp4 \
	'm["tool"]["name"] == "custos-probe" and m["tool"]["version"]' \
	'all(m["tool"][k].count(".") == 2 for k in ("libavformat", "libavcodec"))' \
	'm["tool"]["libmagic"].count(".") == 1' 'm["seq"] > 0'
"$CUSTOS" log --json | python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["event"] == "media"]
assert len(ev) == 10, len(ev)
assert all(e["agent"]["name"] == "custos" and e["media"]["tool"]["libavformat"] for e in ev)
assert all(len(e["sha256"]) == 64 for e in ev)'
t_ok $? "10 media events in the ledger, agent custos, with the tool's versions"
"$CUSTOS" show "$(id_of gps.mov)" >"$WORK/show.txt" 2>&1
t_grep "custos show prints the media record" '^  location: +\+31\.2304\+121\.4737' "$WORK/show.txt"
"$CUSTOS" verify >"$WORK/verify.out" 2>&1
t_ok $? "custos verify passes (the catalog is the replay of the media events)"
"$CUSTOS" show "$(id_of gps.mov)" --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["record"]["media"], sort_keys=True))' >"$WORK/before.json"
"$CUSTOS" rebuild >/dev/null 2>&1 && [ "$(pending)" = 0 ] &&
	"$CUSTOS" show "$(id_of gps.mov)" --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["record"]["media"], sort_keys=True))' | cmp -s - "$WORK/before.json"
t_ok $? "custos rebuild: the same media records, none pending"

# (b) nested opens
ff -f lavfi -i sine=duration=1 -f mpegts "$WORK/other.ts"
printf '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n%s\n#EXT-X-ENDLIST\n' "$WORK/other.ts" \
	>"$M/list.m3u8"
"$CUSTOS" ingest "$M/list.m3u8" >/dev/null 2>&1
"$CUSTOS" media process >/dev/null 2>&1
DESC="an HLS playlist is a text document to the worker, never demuxed" check list.m3u8 \
	'm["status"] == "ok"' 'm["kind"] == "document"' '"streams" not in m'
CUSTOS_PROBE=$CUSTOS_PROBE_FP CUSTOS_PROBE_FORMATS=hls,mpegts \
	"$CUSTOS" media process "$(id_of list.m3u8)" >/dev/null 2>&1
DESC="let at it, the hls demuxer is refused the file it names" check list.m3u8 \
	'm["status"] == "unreadable"' '"refers to another file" in m["reason"]' \
	'"other.ts" in m["reason"]' '"streams" not in m'

# (c) custosd
IN="$WORK/inbox"
mkdir -p "$IN"
ff -f lavfi -i sine=frequency=523:duration=1 "$WORK/late.wav"
"$CUSTOS" ingest "$WORK/late.wav" >/dev/null 2>&1
[ "$(pending)" = 1 ]
t_ok $? "an item secured by custos ingest with no daemon has no media record"
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" md inbox "$IN" settle_seconds=1 release=delete
# The hanging worker's time limit must outlast securing new.mp4 below (a
# settle second and a small file), also on a machine busy with other tests.
printf '[media]\ntimeout = 90s\n' >>"$CONF"
printf '[fixity]\nenabled = no\n' >>"$CONF"
LOG="$WORK/daemon.log"
daemon_start "$CONF" "$LOG" CUSTOS_PROBE="$CUSTOS_PROBE_FP"
t_ok $? "custosd starts with the failpoint worker"
has_media() { "$CUSTOS" show "$(id_of "$1")" --json 2>/dev/null | grep -q '"media"'; }
# worker_running: custosd runs a worker on hang.bin's blob (its stdin). Other
# items' workers (late.wav's copies) may run first and do not count.
worker_running() {
	local p
	for p in $(pgrep -P "$DPID" -f custos-probe); do
		case $(readlink "/proc/$p/fd/0" 2>/dev/null) in *"/$HANG_SHA") return 0 ;; esac
	done
	return 1
}
wait_until 120 has_media late.wav
t_ok $? "custosd catches up the item secured with no daemon"
printf 'CUSTOS-PROBE-HANG %s' "$RANDOM$RANDOM" >"$WORK/hang.bin"
HANG_SHA=$(sha256sum <"$WORK/hang.bin" | cut -c1-64)
mv "$WORK/hang.bin" "$IN/hang.bin"
wait_until 120 worker_running
t_ok $? "the worker on a hanging item runs"
ff -f lavfi -i testsrc=size=160x120:rate=10:duration=1 -c:v libx264 -pix_fmt yuv420p "$WORK/new.mp4"
mv "$WORK/new.mp4" "$IN/new.mp4"
wait_until 120 inbox_empty "$IN"
t_ok $? "a file dropped meanwhile is secured and released"
! has_media hang.bin && worker_running
t_ok $? "... while the hanging worker still runs (it holds no intake back)"
wait_until 180 has_media hang.bin
DESC="killed at its time limit, unreadable with that reason" check hang.bin \
	'm["status"] == "unreadable"' '"time limit of 90 s" in m["reason"]'
wait_until 120 has_media new.mp4
DESC="the dropped file gets its record" check new.mp4 'm["status"] == "ok"' \
	'v[0]["width"] == 160'
printf 'CUSTOS-PROBE-CRASH %s' "$RANDOM$RANDOM" >"$IN/crash.bin"
if [ "${CUSTOS_ASAN:-0}" != 1 ]; then printf 'CUSTOS-PROBE-HOG %s' "$RANDOM" >"$IN/hog.bin"; fi
wait_until 120 inbox_empty "$IN"
wait_until 180 has_media crash.bin
# (ASan catches the SIGSEGV itself and exits with its exitcode: 1, or what
# ASAN_OPTIONS sets, 86 in scripts/test.sh.)
if [ "${CUSTOS_ASAN:-0}" = 1 ]; then CRASHED='the probe failed \(exit status (1|86)\)'; else
	CRASHED='the probe crashed \(signal 11, SIGSEGV\)'; fi
DESC="a crashing worker: unreadable, the signal named" check crash.bin \
	'm["status"] == "unreadable"' "__import__('re').search('$CRASHED', m['reason'])"
if [ "${CUSTOS_ASAN:-0}" != 1 ]; then
	wait_until 180 has_media hog.bin
	DESC="a worker past its memory limit: unreadable, the limit named" check hog.bin \
		'm["status"] == "unreadable"' '"memory limit" in m["reason"]'
fi
daemon_running
t_ok $? "custosd still runs"
daemon_status >"$WORK/status.json"
python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["media"]
assert m["enabled"] is True and m["processed"] >= 4 and m["unreadable"] >= 2, m' "$WORK/status.json"
t_ok $? "custos status: the media stage's counts"
t_grep "the unreadable item is logged with its reason" "unreadable as media: $CRASHED" "$LOG"
t_clean_stop
"$CUSTOS" verify >"$WORK/verify.out" 2>&1
t_ok $? "custos verify passes"
t_no_sanitizer "no sanitizer report from custosd" "$LOG"
t_done
