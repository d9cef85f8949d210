#!/bin/bash
# Names are bytes: file names, paths and folder names that are not UTF-8 (or
# hold control characters), and sidecars that are not what they should be,
# with a real custosd watching an upload directory and a dock root:
#   1. in the upload directory: a Latin-1 name (caf\xe9.mp4), a name with a
#      newline and ESC, a non-UTF-8 name with a sidecar, a sidecar with fields
#      of the wrong type and an unknown key, a sidecar that is not UTF-8, and
#      names of 251 and 255 bytes (no "<name>.json" can exist beside them);
#   2. on a recorder: a folder named rec\xff holding BWC-K_\xe9t\xe9_0002.mp4
#      and a default-pattern name whose {device} field is \xe9.
# Every file is secured and custosd keeps running (never "out of memory",
# never exit 4); the records keep each name as readable text with its exact
# bytes in hex (`custos find/show --json`), and so do the receipt, the dock
# session and `custos status`; each wrong sidecar field is named in a warning
# and the good fields are kept; no sidecar warning for the long names; every
# log line is valid UTF-8 without control characters. A restart takes
# nothing again, and `custos ingest` keeps a non-UTF-8 path's name exactly.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"
asan_allow_preload
need_python3

IN="$WORK/inbox"
DOCKS="$WORK/docks"
STAGE="$WORK/stage"
mkdir -p "$IN" "$DOCKS" "$STAGE"
CONF="$WORK/custosd.conf"
LOG="$WORK/daemon.log"
{
	printf '[store]\nroot = %s\nstation = NAMES\n' "$CUSTOS_STORE"
	printf '[inbox]\ndir = %s\n[docks]\nroot = %s\n' "$IN" "$DOCKS"
	printf '[ingest]\nsettle_seconds = 1\nrescan_seconds = 1\n'
} >"$CONF"

# put DIR NAME: a file of random bytes (its digest in SHA[NAME]), complete at once.
declare -A SHA=()
put() {
	head -c 3000 /dev/urandom >"$WORK/.put"
	SHA[$2]=$(digest "$WORK/.put")
	mv "$WORK/.put" "$1/$2"
}

# jq_py EXPR: evaluates EXPR on the JSON of stdin (j), prints the result.
jq_py() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r))' "$1"
}
# exact NAME READABLE HEX: the readable form and the bytes are those of NAME.
exact() {
	python3 -c '
import os, sys
name, readable, hx = os.fsencode(sys.argv[1]), sys.argv[2], sys.argv[3]
want = "".join(chr(b) if 0x20 <= b < 0x7f else "\\x%02x" % b for b in name)
sys.exit(0 if bytes.fromhex(hx) == name and readable == want else 1)' "$@"
}
# record_of SHA: the record of the item with those bytes, as JSON.
record_of() { "$CUSTOS" find --sha256 "$1" --json | jq_py 'j[0]'; }

LATIN=$(printf 'caf\xe9.mp4')
CTL=$'ctl\nline\e[0m.bin'
BADSIDE=$(printf '\xe9t\xe9.mp4')
LONG251=$(printf 'x%.0s' $(seq 247)).bin
LONG255=$(printf 'y%.0s' $(seq 251)).bin
put "$IN" "$LATIN"
put "$IN" "$CTL"
put "$IN" "$BADSIDE"
printf '{"case": "NAMES-1", "stage": "取证"}' >"$IN/$BADSIDE.json"
put "$IN" typed.bin
printf '{"case": 123, "officers": "OF1", "device": {"id": "X"}, "category": "行政处罚",
 "stage": "取证", "recorded_start": "2026-11-28T08:30:00+08:00", "cse": "NAMES-2"}' \
	>"$IN/typed.bin.json"
put "$IN" badutf.bin
printf '{"case": "caf\xe9"}' >"$IN/badutf.bin.json"
put "$IN" "$LONG251"
put "$IN" "$LONG255"
N_IN=7

FOLDER=$(printf 'rec\xff')
REC1=$(printf 'BWC-K_\xe9t\xe9_0002.mp4')
REC2=$(printf '\xe9_OF1_20261128083001_0003.mp4')
mkdir -p "$STAGE/$FOLDER/DCIM"
printf '{"device_id": "BWC-K", "officer_id": "OF1", "clock": "%s"}\n' \
	"$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAGE/$FOLDER/DEVICE.json"
put "$STAGE/$FOLDER/DCIM" "$REC1"
put "$STAGE/$FOLDER/DCIM" "$REC2"
N=$((N_IN + 2))

daemon_start "$CONF" "$LOG"
t_ok $? "custosd starts with hostile names waiting in its upload directory"
mv "$STAGE/$FOLDER" "$DOCKS/"
# (a custosd that stopped is not waited for)
wait_until 120 eval 'events_at_least $N || ! daemon_running'
events_at_least $N
t_ok $? "all $N files are secured ($(n_events) ledger events)"
wait_until 60 eval 'test -e "$DOCKS/$FOLDER/CUSTOS-RECEIPT.json" || ! daemon_running'
test -e "$DOCKS/$FOLDER/CUSTOS-RECEIPT.json"
t_ok $? "the recorder in folder rec\\xff gets its receipt"
wait_until 30 daemon_idle
daemon_running
t_ok $? "custosd is still running"
if grep -q "out of memory" "$LOG"; then
	t_ok 1 "no 'out of memory' in the log"
	grep "out of memory" "$LOG" | head -5 | sed 's/^/#   /'
else
	t_ok 0 "no 'out of memory' in the log"
fi

# ---- the records keep every name exactly ----
for name in "$LATIN" "$CTL" "$BADSIDE"; do
	rec=$(record_of "${SHA[$name]}")
	exact "$name" "$(jq_py 'j["name"]' <<<"$rec")" "$(jq_py 'j.get("name_hex", "")' <<<"$rec")"
	t_ok $? "record of $(printf %q "$name"): readable name and exact bytes (name_hex)"
done
"$CUSTOS" find --sha256 "${SHA[$LATIN]}" >"$WORK/find.out"
[ "$(cut -f6 "$WORK/find.out")" = 'caf\xe9.mp4' ]
t_ok $? "custos find shows the name as caf\\xe9.mp4"
ID=$(cut -f1 "$WORK/find.out")
"$CUSTOS" show "$ID" >"$WORK/show.out"
t_grep "custos show shows the readable name" '^name +caf\\xe9\.mp4$' "$WORK/show.out"
t_grep "... and its bytes" '^name_hex +636166e92e6d7034$' "$WORK/show.out"
"$CUSTOS" show "$ID" --json >"$WORK/show.json"
[ "$(jq_py 'j["events"][0]["event"]["job"]["key_hex"]' <"$WORK/show.json")" = \
	"$(printf '%s' "inbox/$IN/$LATIN" | od -An -tx1 -v | tr -d ' \n')" ]
t_ok $? "the ingest event's job key keeps the exact path (key_hex)"

# ---- sidecars ----
[ "$(jq_py 'j.get("case")' <<<"$(record_of "${SHA[$BADSIDE]}")")" = NAMES-1 ]
t_ok $? "a non-UTF-8 file name still gets its sidecar's case"
grep -F "typed.bin.json: sidecar problem" "$LOG" >"$WORK/typed.warn"
t_grep "a wrong-type case is named with its type" "field 'case' is a number, not a string" "$WORK/typed.warn"
t_grep "a string for officers is named" "field 'officers' is a string, not an array of strings" "$WORK/typed.warn"
t_grep "an object for device is named" "field 'device' is an object, not a string" "$WORK/typed.warn"
t_grep "the unknown key is named" "unknown field 'cse' was ignored" "$WORK/typed.warn"
rec=$(record_of "${SHA[typed.bin]}")
[ "$(jq_py '[j.get(k) for k in ("case", "device", "officers", "category", "stage", "recorded_start")]' <<<"$rec")" = \
	'[null, null, null, "\u884c\u653f\u5904\u7f5a", "\u53d6\u8bc1", "2026-11-28T00:30:00.000Z"]' ]
t_ok $? "the good fields of that sidecar are kept, the bad ones left out"
t_grep "a sidecar that is not UTF-8 is a named sidecar problem" \
	'badutf\.bin\.json: sidecar problem \(line 1: ' "$LOG"
[ -n "$(record_of "${SHA[badutf.bin]}")" ]
t_ok $? "... and its file is secured"
n=$(grep "sidecar problem" "$LOG" | grep -c "xxxxxxxx\|yyyyyyyy")
t_ok "$n" "no sidecar problem for the names of 251 and 255 bytes ($n)"
for name in "$LONG251" "$LONG255"; do
	[ "$(jq_py 'j["name"]' <<<"$(record_of "${SHA[$name]}")")" = "$name" ]
	t_ok $? "the ${#name}-byte name is secured under its name"
done

# ---- the recorder ----
for name in "$REC1" "$REC2"; do
	rec=$(record_of "${SHA[$name]}")
	exact "$name" "$(jq_py 'j["name"]' <<<"$rec")" "$(jq_py 'j.get("name_hex", "")' <<<"$rec")"
	t_ok $? "recorder file $(printf %q "$name"): readable name and exact bytes"
done
rec=$(record_of "${SHA[$REC2]}")
exact "$(printf '\xe9')" "$(jq_py 'j["extra"]["name_device"]' <<<"$rec")" \
	"$(jq_py 'j["extra"].get("name_device_hex", "")' <<<"$rec")"
t_ok $? "the {device} field parsed from the name keeps its bytes (name_device_hex)"
"$CUSTOS" check-receipt "$DOCKS/$FOLDER/CUSTOS-RECEIPT.json" --key "$("$CUSTOS" pubkey)" --json \
	>"$WORK/receipt.json"
t_ok $? "check-receipt says OK"
python3 - "$WORK/receipt.json" "DCIM/$REC1" "DCIM/$REC2" <<'EOF'
import json, os, sys
r = json.load(open(sys.argv[1]))
got = sorted(bytes.fromhex(f["name_hex"]) for f in r["files"] if "name_hex" in f)
sys.exit(0 if got == sorted(os.fsencode(a) for a in sys.argv[2:]) else 1)
EOF
t_ok $? "the receipt lists both files with their exact paths"
daemon_status >"$WORK/status.json"
t_ok $? "custos status answers over the control socket"
[ "$(jq_py '[(d["folder"], d["folder_hex"]) for d in j["docks"]]' <"$WORK/status.json")" = \
	'[["rec\\xff", "726563ff"]]' ]
t_ok $? "status names the folder rec\\xff with its bytes"
"$CUSTOS" status >"$WORK/status.out"
t_grep "custos status shows the folder" '^  dock rec\\xff: recorder BWC-K' "$WORK/status.out"
[ "$("$CUSTOS" docks --json | jq_py '[s.get("folder_hex") for s in j]')" = '["726563ff"]' ]
t_ok $? "the dock session keeps the folder's bytes"

# ---- the log: text, one line per event ----
python3 - "$LOG" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    print("#   not UTF-8:", e)
    sys.exit(1)
bad = [l for l in text.split("\n") if any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in l)]
for l in bad[:3]:
    print("#   control character in:", repr(l))
sys.exit(1 if bad else 0)
EOF
t_ok $? "every log line is valid UTF-8 without control characters"
t_grep "the log names the Latin-1 file readably" 'secured .*/caf\\xe9\.mp4 as ' "$LOG"

# ---- a restart takes nothing again and does not stop ----
t_clean_stop "restart" "$CONF" "$LOG"
if grep -q "out of memory" "$LOG"; then t_ok 1 "no 'out of memory' after the restart"; else t_ok 0 "no 'out of memory' after the restart"; fi

# ---- custos ingest of a non-UTF-8 path ----
CLI=$(printf 'cli\xe9\x01.bin')
put "$WORK" "$CLI"
t_run "custos ingest takes a non-UTF-8 path" "$CUSTOS" ingest --case NAMES-3 "$WORK/$CLI"
t_grep "... and prints its readable form" 'cli\\xe9\\x01\.bin$' "$WORK/last.out"
rec=$(record_of "${SHA[$CLI]}")
exact "$CLI" "$(jq_py 'j["name"]' <<<"$rec")" "$(jq_py 'j.get("name_hex", "")' <<<"$rec")"
t_ok $? "its record keeps the name's exact bytes"
t_run "verify passes" "$CUSTOS" verify
t_no_sanitizer "no sanitizer report from custosd" "$LOG"
t_done
