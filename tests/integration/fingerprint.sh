#!/bin/bash
# Fingerprints and matching (custos/media.h, issue 10), media made here by the
# ffmpeg CLI from lavfi sources: a 20 s 720p clip whose picture changes every
# second (keyframe every second) with a melody of a note every quarter
# second, and a different clip (mandelbrot, another melody):
#   (a) `custos media process` fingerprints both: a "fingerprint" ledger
#       event per item naming the tool, its versions, the algorithms and the
#       counts; custos show prints it;
#   (b) `custos match` on a copy re-encoded at a third of the bitrate and
#       scaled to 480 lines finds its source (score above the threshold,
#       offset 0) and not the other clip; on 8 s cut from 6 s on, re-encoded,
#       the source at offset 6, by its video and by its sound each; a cut
#       with no sound by its video, and its sound alone as MP3 by Chromaprint;
#       the other clip finds only itself; a file with
#       no audio or video, and one that does not exist, are refused with a
#       reason; FILE is never stored;
#   (c) `custos similar` lists the re-encoded copy, once secured, for its
#       source (not the source itself), and the source for it;
#   (d) verify passes; rebuild restores matching (the index is the
#       projection of the events); custosd fingerprints what it secures.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_PROBE_BIN:?CUSTOS_PROBE_BIN must point at custos-probe}"
export CUSTOS_PROBE=$CUSTOS_PROBE_BIN
need_python3
asan_allow_preload
command -v ffmpeg >/dev/null || { echo "1..0 # SKIP no ffmpeg"; exit 77; }

M="$WORK/media"
mkdir -p "$M"
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }
# A picture that is constant within each second and different from one second to the next.
pic="geq=lum='128+100*sin(6.28*(X/W*(2+2*sin(floor(T)*1.7))+Y/H*(1+2*cos(floor(T)*2.3))))'"
pic="$pic:cb='128+60*sin(floor(T))':cr=128"
# A note every quarter second from a pseudo-random scale (seed k).
tune() { echo "aevalsrc='0.5*sin(2*PI*220*pow(2,floor(12*abs(sin(floor(t*4)*$1)))/12)*t)':s=44100:d=20"; }
ff -f lavfi -i "nullsrc=s=160x90:r=25:d=20,$pic,scale=1280:720,format=yuv420p" \
	-f lavfi -i "$(tune 12.9898)" -c:v libx264 -g 25 -b:v 3M -c:a aac -b:a 128k -shortest \
	"$M/source.mp4" &&
ff -i "$M/source.mp4" -vf scale=-2:480 -c:v libx264 -b:v 1M -c:a aac -b:a 64k "$WORK/low.mp4" &&
ff -ss 6 -i "$M/source.mp4" -t 8 -c:v libx264 -c:a aac "$WORK/cut.mp4" &&
ff -ss 4 -i "$M/source.mp4" -t 10 -an -c:v libx264 "$WORK/mute.mp4" &&
ff -ss 3 -i "$M/source.mp4" -t 10 -vn -c:a libmp3lame -b:a 96k "$WORK/sound.mp3" &&
ff -f lavfi -i "mandelbrot=s=640x360:r=25" -f lavfi -i "$(tune 78.233)" -t 20 \
	-c:v libx264 -g 50 -pix_fmt yuv420p -c:a aac -shortest "$M/other.mp4"
t_ok $? "media made with ffmpeg"
echo "not media" >"$WORK/note.txt"

"$CUSTOS" init --station fp >/dev/null 2>&1
t_ok $? "custos init"
"$CUSTOS" ingest "$M"/* >/dev/null 2>&1
t_ok $? "two clips secured"
SRC=$(id_of source.mp4)
OTHER=$(id_of other.mp4)
"$CUSTOS" media process >/dev/null 2>"$WORK/process.err"
t_ok $? "custos media process"

# (a) the events
"$CUSTOS" log --json >"$WORK/log.json" 2>/dev/null
python3 - "$WORK/log.json" "$SRC" "$OTHER" >"$WORK/ev.out" 2>&1 <<'PY'
import json, sys
evs = json.load(open(sys.argv[1]))
evs = evs if isinstance(evs, list) else evs.get("events", [])
fps = {e["id"]: e["fingerprint"] for e in evs if e.get("event") == "fingerprint"}
for id in sys.argv[2:]:
    f = fps[id]
    assert f["status"] == "ok", f
    v, a, t = f["video"], f["audio"], f["tool"]
    assert v["algorithm"] == "dhash64-keyframe" and v["count"] >= 10, v["count"]
    assert len(v["hashes"]) == 24 * v["count"]
    assert a["algorithm"] == "chromaprint" and a["count"] > 100 and a["item_us"] > 0
    assert t["name"] == "custos-probe" and t["version"] and t["libavcodec"] and t["chromaprint"]
print("ok")
PY
t_ok $? "a fingerprint event per clip: tool, versions, algorithms, counts $(tail -1 "$WORK/ev.out")"
"$CUSTOS" show "$SRC" >"$WORK/show.out" 2>&1
t_grep "custos show prints the fingerprint" "^fingerprint: .*keyframe hashes" "$WORK/show.out"
"$CUSTOS" media --json 2>/dev/null | grep -q '"pending": 0'
t_ok $? "nothing pending"

# match_field JSON INDEX FIELD: a field ("video.score": a member's) of the INDEXth match
# ("" when none)
match_field() {
	python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["matches"]
i=int(sys.argv[2]); v=m[i] if i < len(m) else {}
for k in sys.argv[3].split("."): v=v.get(k, {}) if isinstance(v, dict) else {}
print("" if v == {} else v)' "$@"
}
# near X Y TOLERANCE
near() { python3 -c 'import sys; a,b,t=map(float,sys.argv[1:]); sys.exit(abs(a-b)>t)' "$@"; }

# by_each_kind JSON OFFSET: the first match scores above 0.6 at OFFSET by its video
# alone, and by its audio alone
by_each_kind() {
	local k
	for k in video audio; do
		near "$(match_field "$1" 0 $k.score)" 1 0.4 &&
			near "$(match_field "$1" 0 $k.offset_s)" "$2" 0.6
		t_ok $? "... by its $k alone: score $(match_field "$1" 0 $k.score), offset \
$(match_field "$1" 0 $k.offset_s) s ($2)"
	done
}

# (b) custos match
before=$(ledger_size)
"$CUSTOS" match "$WORK/low.mp4" --json >"$WORK/low.json" 2>"$WORK/low.err"
t_ok $? "match: the re-encoded, scaled copy matches ($(cat "$WORK/low.err"))"
[ "$(match_field "$WORK/low.json" 0 id)" = "$SRC" ]
t_ok $? "... its source first"
near "$(match_field "$WORK/low.json" 0 score)" 1 0.4
t_ok $? "... score $(match_field "$WORK/low.json" 0 score), above the threshold 0.5"
near "$(match_field "$WORK/low.json" 0 offset_s)" 0 0.6
t_ok $? "... offset $(match_field "$WORK/low.json" 0 offset_s) s (0)"
by_each_kind "$WORK/low.json" 0
! grep -q "$OTHER" "$WORK/low.json"
t_ok $? "... the other clip does not match"
"$CUSTOS" match "$WORK/cut.mp4" --json >"$WORK/cut.json" 2>/dev/null
[ "$(match_field "$WORK/cut.json" 0 id)" = "$SRC" ] &&
	near "$(match_field "$WORK/cut.json" 0 offset_s)" 6 0.6
t_ok $? "match: 8 s cut from 6 s on: its source at offset $(match_field "$WORK/cut.json" 0 offset_s) s (6)"
by_each_kind "$WORK/cut.json" 6
"$CUSTOS" match "$WORK/mute.mp4" --json >"$WORK/mute.json" 2>/dev/null
[ "$(match_field "$WORK/mute.json" 0 id)" = "$SRC" ] &&
	near "$(match_field "$WORK/mute.json" 0 video.offset_s)" 4 0.6 &&
	[ -z "$(match_field "$WORK/mute.json" 0 audio)" ]
t_ok $? "match: a clip with no sound, by its video: offset \
$(match_field "$WORK/mute.json" 0 video.offset_s) s (4)"
"$CUSTOS" match "$WORK/sound.mp3" --json >"$WORK/sound.json" 2>"$WORK/sound.err"
[ "$(match_field "$WORK/sound.json" 0 id)" = "$SRC" ] &&
	near "$(match_field "$WORK/sound.json" 0 audio.offset_s)" 3 0.6 &&
	[ -z "$(match_field "$WORK/sound.json" 0 video)" ]
rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$WORK/sound.err" # what custos said, for the record
t_ok $rc "match: its sound alone (MP3), by Chromaprint: score \
$(match_field "$WORK/sound.json" 0 audio.score), offset $(match_field "$WORK/sound.json" 0 audio.offset_s) s (3)"
"$CUSTOS" match "$M/other.mp4" --threshold 0 --json >"$WORK/other.json" 2>/dev/null
[ "$(match_field "$WORK/other.json" 0 id)" = "$OTHER" ] && ! grep -q "$SRC" "$WORK/other.json"
t_ok $? "match: the other clip finds itself only, even at threshold 0"
"$CUSTOS" match "$WORK/low.mp4" >"$WORK/low.txt" 2>&1
t_grep "match: text output names the item, score and offset" \
	"^$SRC	score [01]\.[0-9]*	offset " "$WORK/low.txt"
t_status 1 "match: a file with no audio or video: exit 1" \
	"$CUSTOS" match "$WORK/note.txt"
t_grep "... with the reason" "note.txt has no usable fingerprint: .+" "$WORK/last.err"
t_status 2 "match: a file that does not exist: exit 2" "$CUSTOS" match "$WORK/nothing.mp4"
t_grep "... named" "cannot read .*nothing.mp4" "$WORK/last.err"
t_status 2 "match: a threshold out of range: exit 2" \
	"$CUSTOS" match "$WORK/low.mp4" --threshold 2
t_grep "... said so" "threshold must be a number from 0 to 1" "$WORK/last.err"
[ "$(ledger_size)" = "$before" ] && [ -z "$(id_of low.mp4)" ]
t_ok $? "match stores nothing and writes no event"

# (c) custos similar
"$CUSTOS" ingest "$WORK/low.mp4" >/dev/null 2>&1 && "$CUSTOS" media process >/dev/null 2>&1
LOW=$(id_of low.mp4)
"$CUSTOS" similar "$SRC" --json >"$WORK/sim.json" 2>/dev/null
[ "$(match_field "$WORK/sim.json" 0 id)" = "$LOW" ] && ! grep -q "\"$SRC\"" "$WORK/sim.json" &&
	near "$(match_field "$WORK/sim.json" 0 offset_s)" 0 0.6
t_ok $? "similar: the source's secured copy, not the source itself"
"$CUSTOS" similar "$LOW" --json >"$WORK/sim2.json" 2>/dev/null
[ "$(match_field "$WORK/sim2.json" 0 id)" = "$SRC" ]
t_ok $? "similar: the copy's source"
t_status 2 "similar: an unknown id: exit 2" "$CUSTOS" similar fp-nosuchitem
t_grep "... with what to do" "has no fingerprint .*custos media process" "$WORK/last.err"

# (d) verify, rebuild
t_run "verify passes" "$CUSTOS" verify
"$CUSTOS" match "$WORK/cut.mp4" --json >"$WORK/cut-before.json" 2>/dev/null
t_run "rebuild" "$CUSTOS" rebuild
"$CUSTOS" match "$WORK/cut.mp4" --json >"$WORK/cut-after.json" 2>/dev/null
cmp -s "$WORK/cut-before.json" "$WORK/cut-after.json" &&
	[ "$(match_field "$WORK/cut-after.json" 0 id)" = "$SRC" ]
t_ok $? "rebuild restores matching: the same answer"
t_run "verify passes after rebuild" "$CUSTOS" verify

# custosd's media stage fingerprints what it secures
IN="$WORK/inbox"
mkdir -p "$IN"
daemon_conf "$WORK/custosd.conf" fp inbox "$IN" settle_seconds=1 release=delete
n_fp() { "$CUSTOS" log 2>/dev/null | grep -c "fingerprint"; }
fp_before=$(n_fp)
daemon_start "$WORK/custosd.conf" "$WORK/custosd.log"
t_ok $? "custosd starts"
cp "$WORK/cut.mp4" "$IN/"
fp_more() { [ "$(n_fp)" -gt "$fp_before" ]; }
wait_until 600 fp_more
t_ok $? "custosd fingerprints a clip it secured"
wait_until 600 daemon_idle
daemon_stop
t_ok $? "custosd stops"
CUT=$(id_of cut.mp4)
"$CUSTOS" similar "$CUT" --json >"$WORK/sim3.json" 2>/dev/null
[ "$(match_field "$WORK/sim3.json" 0 id)" = "$SRC" ] &&
	near "$(match_field "$WORK/sim3.json" 0 offset_s)" 6 0.6
t_ok $? "... and similar finds it in its source at offset 6"
t_done
