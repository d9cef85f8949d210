#!/bin/bash
# custosd on a recorder dock, with a real daemon process and real folders:
#   1. a recorder folder with DEVICE.json (clock 90 s behind the station) and
#      20 files (sequence numbers 1..21 without 13; mixed sizes, a few MB, a
#      real MP4, some in a subdirectory) is moved into the dock root at once.
#      All 20 are secured; CUSTOS-RECEIPT.json appears only after the last one
#      (it is never seen while the catalog lacks a file, and the checkpoint it
#      carries covers all 20 ingests); it lists the 20 files with their
#      sha256sum; the gap [13,13] is in the receipt and in `custos docks`; the
#      clock offset (~90 s) is in the receipt, the session and every record,
#      whose recorded_start is the file name's time corrected by the offset;
#      the receipt's signature checks with the store's verifier key (custos
#      check-receipt, which prints the gaps, and openssl without custos) and
#      fails when altered; the ledger holds exactly 20 ingest events.
#   2. a recorder with 20 larger files is moved out of the dock root after
#      some but not all are secured: no receipt, the session is interrupted.
#      Moved back, the same session resumes and completes: each file secured
#      exactly once (20 items, no sightings, 20 ingest events), the receipt
#      lists all 20, and the clock offset and docking time are still those of
#      the docking.
#   3. folders without a usable DEVICE.json (missing, not JSON, no device_id)
#      open no session and take no file; the daemon keeps running and the log
#      names the problem; fixed, the folder is taken. A symlink in a recorder
#      folder is refused; the other files are secured but no receipt is
#      written, and the recorder keeps every file.
# Finally SIGTERM exits 0 and `custos verify` passes. CUSTOS_ASAN=1 uses
# smaller files in scenario 2.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"
asan_allow_preload
need_python3

DOCKS="$WORK/docks"
STAGE="$WORK/stage" # recorders are built here, then moved in at once
AWAY="$WORK/away"   # where an undocked recorder waits
mkdir -p "$DOCKS" "$STAGE" "$AWAY" "$WORK/outside"
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" DOCK1 docks "$DOCKS" settle_seconds=0 rescan_seconds=1 concurrency=1
LOG="$WORK/daemon.log"

# count_device DEV: number of catalog items of a device.
count_device() {
	"$CUSTOS" find --device "$1" --json 2>/dev/null |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo -1
}

# session_field DEV FIELD: a field of the latest dock session of DEV (JSON).
session_field() {
	"$CUSTOS" docks --json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s.get("device") == sys.argv[1]:
        print(json.dumps(s.get(sys.argv[2])))' "$1" "$2"
}

# state_is DEV STATE: the latest session of DEV is in STATE (JSON-quoted).
state_is() { [ "$(session_field "$1" state)" = "$2" ]; }

# device_json DIR DEVICE OFFICER: DEVICE.json with a clock 90 s behind ours.
device_json() {
	printf '{"device_id": "%s", "model": "BWC-X2", "officer_id": "%s", "clock": "%s"}\n' \
		"$2" "$3" "$(date -u -d '-90 sec' +%Y-%m-%dT%H:%M:%SZ)" >"$1/DEVICE.json"
}

# seq_name DEVICE OFFICER SEQ: a default-pattern name; the recorder's time
# (+08:00) is 08:30:01 plus SEQ minutes on 2026-11-28.
seq_name() {
	printf '%s_%s_20261128%02d%02d01_%04d.mp4' "$1" "$2" $((8 + (30 + $3) / 60)) \
		$(((30 + $3) % 60)) "$3"
}

# The receipt's signed text as JSON, without checking anything.
receipt_json() {
	python3 -c '
import sys
t = open(sys.argv[1], encoding="utf-8").read()
print(t.partition("\n\n")[0])' "$1"
}

daemon_start "$CONF" "$LOG"
t_ok $? "custosd starts on an empty dock root"
VKEY=$("$CUSTOS" pubkey)

# ---------------------------------------------------------------- scenario 1
R1="$STAGE/BWC0001"
mkdir -p "$R1/DCIM/100BWC"
GAP=13
i=0
for s in $(seq 1 21); do
	[ $s -eq $GAP ] && continue
	i=$((i + 1))
	dir="$R1"
	[ $s -gt 10 ] && dir="$R1/DCIM/100BWC"
	f="$dir/$(seq_name BWC0001 OF007 $s)"
	case $((i % 5)) in
	0) size=$(((2 << 20) + i * 4099)) ;; # a few MB
	1) size=$((i * 37)) ;;
	2) size=$((100000 + i * 511)) ;;
	3) size=1 ;;
	4) size=$((700000 + i)) ;;
	esac
	if [ "$size" -eq 1 ]; then
		# one byte, a different one per file: four random single bytes
		# would be the same bytes (one item, two sightings) in 2% of runs
		printf "\\$(printf '%03o' $((64 + i)))" >"$f"
	else
		head -c "$size" /dev/urandom >"$f"
	fi
done
if command -v ffmpeg >/dev/null 2>&1; then
	# one real MP4 in place of the random bytes of sequence number 2
	ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=duration=1:size=160x120:rate=10 \
		-pix_fmt yuv420p -f mp4 "$R1/$(seq_name BWC0001 OF007 2)" 2>"$WORK/ffmpeg.err" ||
		echo "# ffmpeg failed; random bytes kept"
fi
nfiles=$(find "$R1" -type f | wc -l)
[ "$nfiles" -eq 20 ]
t_ok $? "the recorder holds 20 files, sequence numbers 1..21 without $GAP"
(cd "$R1" && find . -type f -printf '%P\n' | sort | xargs sha256sum) >"$WORK/r1.sha256"
device_json "$R1" BWC0001 OF007

mv "$R1" "$DOCKS/BWC0001"
# Poll: whenever the receipt exists, the catalog must already hold all 20.
early=0 polls=0 seen_partial=0
t0=$(date +%s)
while [ $(($(date +%s) - t0)) -lt 60 ]; do
	polls=$((polls + 1))
	if [ -e "$DOCKS/BWC0001/CUSTOS-RECEIPT.json" ]; then
		n=$(count_device BWC0001)
		[ "$n" -ne 20 ] && early=1
		break
	fi
	# (the log, not the catalog: a cheap look, to see the state before the receipt)
	n=$(grep -c "secured $DOCKS/BWC0001/" "$LOG")
	[ "$n" -lt 20 ] && [ ! -e "$DOCKS/BWC0001/CUSTOS-RECEIPT.json" ] &&
		seen_partial=$((seen_partial + 1))
	sleep 0.02
done
echo "# $polls polls, $seen_partial saw the recorder partly secured and no receipt"
RC1="$DOCKS/BWC0001/CUSTOS-RECEIPT.json"
[ -e "$RC1" ]
t_ok $? "the receipt is written into the recorder folder"
[ $early -eq 0 ]
t_ok $? "when the receipt appeared, all 20 files were already in the catalog"
[ $seen_partial -gt 0 ]
t_ok $? "the recorder was seen partly secured, without a receipt ($seen_partial times)"
"$CUSTOS" find --device BWC0001 --json >"$WORK/r1-items.json"
"$CUSTOS" log --json >"$WORK/log1.json"
receipt_json "$RC1" >"$WORK/r1-receipt.json"

python3 - "$WORK/r1-receipt.json" "$WORK/r1.sha256" "$WORK/log1.json" >"$WORK/last.out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
want = {}
for l in open(sys.argv[2]):
    h, name = l.rstrip('\n').split('  ', 1)
    want[name] = h
got = {f['name']: f['sha256'] for f in r['files']}
ok = len(r['files']) == 20 and got == want and all(f.get('custody') == 'local' for f in r['files'])
if not ok:
    sys.stderr.write('#   receipt names/digests differ: %r\n' % sorted(set(got.items()) ^ set(want.items())))
cp_size = int(r['checkpoint'].split('\n')[1])
print(int(ok), cp_size, len(json.load(open(sys.argv[3]))))
EOF
read -r rok cpsize lsize <"$WORK/last.out"
[ "$rok" = 1 ]
t_ok $? "the receipt lists exactly the 20 files, each with its sha256sum"
[ "$cpsize" = 20 ]
t_ok $? "the checkpoint signed into the receipt covers all 20 ingests (tree of $cpsize)"
python3 -c '
import json, sys
log = json.load(open(sys.argv[1]))
sys.exit(not (len(log) == 20 and all(e["event"] == "ingest" and e["item"]["device"] == "BWC0001" for e in log)))' \
	"$WORK/log1.json"
t_ok $? "the ledger holds exactly 20 events, all ingests of BWC0001 ($lsize)"
python3 -c '
import json, sys
r, items = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ids = {f["id"] for f in r["files"]}
sys.exit(not (len(items) == 20 and ids == {i["id"] for i in items} and all(i["sightings"] == 1 for i in items)))' \
	"$WORK/r1-receipt.json" "$WORK/r1-items.json"
t_ok $? "the receipt's ids are the catalog's 20 items of the recorder, each seen once"

python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(not (r["sequence_gaps"] == [[13, 13]] and r["device"] == "BWC0001" and r["officer"] == "OF007"))' \
	"$WORK/r1-receipt.json"
t_ok $? "the receipt reports the sequence gap [13,13]"
"$CUSTOS" docks --json >"$WORK/docks1.json"
python3 -c '
import json, sys
s = [s for s in json.load(open(sys.argv[1])) if s["device"] == "BWC0001"]
r = json.load(open(sys.argv[2]))
sys.exit(not (len(s) == 1 and s[0]["state"] == "complete" and s[0]["files"] == 20 and
    s[0]["sequence_gaps"] == [[13, 13]] and s[0]["session"] == r["session"] and
    s[0]["clock_offset_ms"] == r["clock_offset_ms"]))' "$WORK/docks1.json" "$WORK/r1-receipt.json"
t_ok $? "custos docks --json: the session is complete, 20 files, gap [13,13], same offset"
t_run "custos docks lists the session" "$CUSTOS" docks
t_grep "... with the gap and the clock offset" "^BWC0001	.*complete	files 20	gaps 13	clock offset \+9[0-2]\.[0-9] s" "$WORK/last.out"
OFF1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clock_offset_ms"])' "$WORK/r1-receipt.json")
[ "$OFF1" -ge 89000 ] && [ "$OFF1" -le 93000 ]
t_ok $? "the recorded clock offset is the recorder's 90 s lag ($OFF1 ms)"
python3 - "$WORK/r1-items.json" "$OFF1" >"$WORK/times.out" 2>&1 <<'EOF'
import json, sys
from datetime import datetime, timedelta, timezone
items, off = json.load(open(sys.argv[1])), int(sys.argv[2])
def t(s):
    return datetime.strptime(s.replace('Z', '+0000'), '%Y-%m-%dT%H:%M:%S.%f%z')
bad = 0
for i in items:
    e = i['extra']
    seq = int(i['name'].rsplit('_', 1)[1].split('.')[0])
    hh, mm = 8 + (30 + seq) // 60, (30 + seq) % 60
    named = datetime(2026, 11, 28, hh, mm, 1, tzinfo=timezone(timedelta(hours=8)))
    rep, cor = t(e['recorded_start_reported']), t(i['recorded_start'])
    good = (rep == named and cor - rep == timedelta(milliseconds=off) and
            e['clock_offset_ms'] == off and e['seq'] == seq and i['device'] == 'BWC0001' and
            i['source'] == 'dock' and 'OF007' in i['officers'])
    if not good:
        bad += 1
        print('# bad times/metadata: %s %s' % (i['name'], json.dumps(e)))
sys.exit(bad != 0)
EOF
t_ok $? "every record: recorded_start_reported is the name's +08:00 time, recorded_start = reported + offset"
[ -s "$WORK/times.out" ] && head -5 "$WORK/times.out"

t_run "custos check-receipt accepts the receipt with the store's key" \
	"$CUSTOS" check-receipt "$RC1" --key "$VKEY"
t_grep "... and counts the 20 files" "^20 file\(s\) secured" "$WORK/last.out"
t_grep "... and prints the sequence gap to be explained" "^sequence gaps: 13 \(" "$WORK/last.out"
"$CUSTOS" check-receipt "$RC1" --key "$VKEY" --json |
	python3 -c 'import json,sys; r=json.load(sys.stdin); sys.exit(not (r["ok"] and r["sequence_gaps"] == [[13, 13]]))'
t_ok $? "check-receipt --json carries the sequence gaps"
# The same check without custos: openssl on the note's text and signature.
if command -v openssl >/dev/null 2>&1; then
	python3 - "$RC1" "$VKEY" "$WORK/sig" <<'EOF'
import base64, hashlib, os, sys
text = open(sys.argv[1], 'rb').read().decode('utf-8')
name, khex, kb64 = sys.argv[2].strip().split('+', 2)
kraw = base64.b64decode(kb64)
assert len(kraw) == 33 and kraw[0] == 1
keyhash = hashlib.sha256(name.encode() + b'\n' + kraw).digest()[:4]
assert keyhash.hex() == khex
body, _, sigs = text.partition('\n\n')
sig = None
for l in sigs.split('\n'):
    if l.startswith('\u2014 '):
        sname, b = l[2:].rsplit(' ', 1)
        raw = base64.b64decode(b)
        if sname == name and raw[:4] == keyhash:
            sig = raw[4:]
assert sig is not None, 'no signature line by this key'
os.makedirs(sys.argv[3], exist_ok=True)
open(os.path.join(sys.argv[3], 'msg'), 'wb').write((body + '\n').encode())
open(os.path.join(sys.argv[3], 'sig'), 'wb').write(sig)
open(os.path.join(sys.argv[3], 'pub.der'), 'wb').write(bytes.fromhex('302a300506032b6570032100') + kraw[1:])
EOF
	openssl pkey -pubin -inform DER -in "$WORK/sig/pub.der" -out "$WORK/sig/pub.pem" 2>/dev/null &&
		openssl pkeyutl -verify -pubin -inkey "$WORK/sig/pub.pem" -rawin -in "$WORK/sig/msg" \
			-sigfile "$WORK/sig/sig" >/dev/null 2>&1
	t_ok $? "outside custos, openssl verifies the receipt's Ed25519 signature"
fi
python3 -c '
import sys
t = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w", encoding="utf-8").write(t.replace("\"size\":1}", "\"size\":2}", 1))' \
	"$RC1" "$WORK/altered-receipt.json"
cmp -s "$RC1" "$WORK/altered-receipt.json"
[ $? -eq 1 ]
t_ok $? "an altered copy of the receipt differs in one size"
t_status 1 "custos check-receipt rejects the altered receipt" \
	"$CUSTOS" check-receipt "$WORK/altered-receipt.json" --key "$VKEY"
t_grep "... saying not to wipe the recorder" "do not wipe" "$WORK/last.err"
# The checkpoint inside a receipt is checked too: a receipt signed by the
# store's own key whose checkpoint was altered (its tree size) is refused.
python3 - "$RC1" "$CUSTOS_STORE/keys/ledger.key" "$WORK/doctored-receipt.json" <<'EOF2'
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
text = open(sys.argv[1], encoding='utf-8').read()
body = json.loads(text.split('\n', 1)[0])
cp = body['checkpoint'].split('\n')
cp[1] = str(int(cp[1]) + 1)
body['checkpoint'] = '\n'.join(cp)
_, _, name, khex, kb64 = open(sys.argv[2]).read().strip().split('+', 4)
key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(kb64)[1:])
msg = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(',', ':')) + '\n'
sig = key.sign(msg.encode('utf-8'))
line = '\u2014 %s %s\n' % (name, base64.b64encode(bytes.fromhex(khex) + sig).decode())
open(sys.argv[3], 'w', encoding='utf-8').write(msg + '\n' + line)
EOF2
t_ok $? "a copy of the receipt with its checkpoint's size changed, re-signed by the store's key"
t_status 1 "custos check-receipt rejects the receipt whose checkpoint was doctored" \
	"$CUSTOS" check-receipt "$WORK/doctored-receipt.json" --key "$VKEY"
t_grep "... naming the checkpoint inside" "checkpoint inside the receipt .*do not wipe" \
	"$WORK/last.err"
t_grep "the log reports the gap" "BWC0001: sequence numbers never secured .*: 13-13" "$LOG"

# ---------------------------------------------------------------- scenario 2
if [ "${CUSTOS_ASAN:-0}" = 1 ]; then BIG=$((16 << 20)); else BIG=$((24 << 20)); fi
R2="$STAGE/BWC0002"
mkdir -p "$R2"
head -c "$BIG" /dev/urandom >"$WORK/big.base"
for s in $(seq 1 20); do
	# unique bytes per file: a header, then a shared random body
	{
		printf 'BWC0002 file %04d\n' "$s"
		cat "$WORK/big.base"
	} >"$R2/$(seq_name BWC0002 OF008 "$s")"
done
rm -f "$WORK/big.base"
(cd "$R2" && sha256sum -- *.mp4) >"$WORK/r2.sha256"
device_json "$R2" BWC0002 OF008
mv "$R2" "$DOCKS/rec2"
secured2() { grep -c "secured $DOCKS/rec2/BWC0002_" "$LOG"; }
at_least_secured2() { [ "$(secured2)" -ge "$1" ]; }
wait_until 60 at_least_secured2 2
mv "$DOCKS/rec2" "$AWAY/rec2"
at_move=$(secured2)
echo "# moved out after $at_move of 20 were secured"
[ "$at_move" -ge 2 ] && [ "$at_move" -lt 20 ]
t_ok $? "the recorder was undocked mid-session ($at_move of 20 secured)"
wait_until 10 state_is BWC0002 '"interrupted"'
t_ok $? "custos docks shows the session interrupted"
t_grep "the log says the session is interrupted and not to wipe" \
	"recorder BWC0002 was removed before all its files were secured: session .* is interrupted.*Do not wipe" "$LOG"
sleep 1.5 # the file in progress finishes; the recorder stays away a moment
n_away=$(count_device BWC0002)
[ ! -e "$AWAY/rec2/CUSTOS-RECEIPT.json" ]
t_ok $? "no receipt was written into the undocked recorder"
[ "$n_away" -gt 0 ] && [ "$n_away" -lt 20 ]
t_ok $? "while undocked, the catalog holds part of the recorder ($n_away of 20)"
sleep 1
[ "$(count_device BWC0002)" = "$n_away" ]
t_ok $? "nothing more is taken while the recorder is away"
SESS2=$(session_field BWC0002 session)
DOCKED2=$(session_field BWC0002 docked_at)

mv "$AWAY/rec2" "$DOCKS/rec2"
wait_until 60 test -e "$DOCKS/rec2/CUSTOS-RECEIPT.json"
t_ok $? "docked again, the session completes with a receipt"
t_grep "the log says the session resumed" "recorder BWC0002 docked again at rec2: resuming session" "$LOG"
[ "$(session_field BWC0002 docked_at)" = "$DOCKED2" ]
t_ok $? "the resumed session keeps its docking time ($DOCKED2)"
sleep 1.5 # anything taken twice would show up now
receipt_json "$DOCKS/rec2/CUSTOS-RECEIPT.json" >"$WORK/r2-receipt.json"
"$CUSTOS" find --device BWC0002 --json >"$WORK/r2-items.json"
"$CUSTOS" log --json >"$WORK/log2.json"
python3 - "$WORK/r2-receipt.json" "$WORK/r2.sha256" "$WORK/r2-items.json" "$WORK/log2.json" "$SESS2" <<'EOF' >"$WORK/r2.out" 2>&1
import json, sys
r, items, log = json.load(open(sys.argv[1])), json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
want = {}
for l in open(sys.argv[2]):
    h, name = l.rstrip('\n').split('  ', 1)
    want[name] = h
got = {f['name']: f['sha256'] for f in r['files']}
ev = [e for e in log if e['event'] != 'ingest' or e['item']['device'] == 'BWC0002']
checks = {
    'receipt lists the 20 files with their sha256sum': len(r['files']) == 20 and got == want,
    'receipt of the resumed session': r['session'] == json.loads(sys.argv[5]),
    'no gaps': r['sequence_gaps'] == [],
    '20 items, each seen once': len(items) == 20 and all(i['sightings'] == 1 for i in items),
    'items are the receipt ids': {i['id'] for i in items} == {f['id'] for f in r['files']},
    'ledger: 20 ingests of BWC0002, no sighting': len(ev) == 20 and all(e['event'] == 'ingest' for e in ev),
    'ledger: 40 events in all': len(log) == 40,
}
for k, v in checks.items():
    print('%s %s' % ('ok' if v else 'FAIL', k))
sys.exit(not all(checks.values()))
EOF
t_ok $? "every file secured exactly once: 20 items, 20 ingests, no sighting; the receipt lists all 20"
grep FAIL "$WORK/r2.out" | sed 's/^/#   /'
python3 - "$WORK/r2-receipt.json" "$WORK/r2-items.json" <<'EOF' >"$WORK/r2off.out" 2>&1
import json, sys
r, items = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
offs = sorted({i['extra']['clock_offset_ms'] for i in items})
print('# offsets in records %s, in the receipt %d' % (offs, r['clock_offset_ms']))
sys.exit(not (len(offs) == 1 and offs[0] == r['clock_offset_ms'] and 89000 <= offs[0] <= 93000))
EOF
t_ok $? "the clock offset of the docking holds for every file and the receipt, across the undocking"
cat "$WORK/r2off.out"
python3 -c '
import json, sys
s = [s for s in json.load(sys.stdin) if s["device"] == "BWC0002"]
sys.exit(not (len(s) == 1 and s[0]["state"] == "complete" and s[0]["files"] == 20))' \
	< <("$CUSTOS" docks --json)
t_ok $? "custos docks: the resumed session is complete with 20 files"
t_run "custos check-receipt accepts the resumed session's receipt" \
	"$CUSTOS" check-receipt "$DOCKS/rec2/CUSTOS-RECEIPT.json" --key "$VKEY"

# ---------------------------------------------------------------- scenario 3
events_before=$(n_events)
for d in nodevice notjson noid; do
	mkdir -p "$STAGE/$d"
	head -c 5000 /dev/urandom >"$STAGE/$d/$(seq_name BWC0009 OF001 1)"
done
printf '{"device_id": "BWC0009", "model": ' >"$STAGE/notjson/DEVICE.json"
printf '{"model": "BWC-X2", "officer_id": "OF001", "clock": "2026-11-28T08:00:00+08:00"}\n' \
	>"$STAGE/noid/DEVICE.json"
R3="$STAGE/BWC0003"
mkdir -p "$R3"
for s in 1 2 3; do head -c $((s * 3000)) /dev/urandom >"$R3/$(seq_name BWC0003 OF009 "$s")"; done
echo "outside secret" >"$WORK/outside/secret"
ln -s "$WORK/outside/secret" "$R3/$(seq_name BWC0003 OF009 4)"
device_json "$R3" BWC0003 OF009
(cd "$R3" && ls -l) >"$WORK/r3-before.ls"
for d in nodevice notjson noid BWC0003; do mv "$STAGE/$d" "$DOCKS/$d"; done

wait_until 20 grep -q "recorder BWC0003: 1 file(s) were refused" "$LOG"
t_ok $? "the symlink in the recorder is refused and the log asks for an operator"
t_grep "... naming the link" "refused $DOCKS/BWC0003/$(seq_name BWC0003 OF009 4)" "$LOG"
t_grep "... and saying the recorder must not be wiped" "no receipt is written, so the recorder must not be wiped" "$LOG"
sleep 2 # more finalize attempts; none may write a receipt
[ ! -e "$DOCKS/BWC0003/CUSTOS-RECEIPT.json" ]
t_ok $? "no receipt is written for the recorder with the refused symlink"
[ "$(count_device BWC0003)" = 3 ]
t_ok $? "its three regular files are secured"
secret=$(sha256sum <"$WORK/outside/secret" | cut -d' ' -f1)
"$CUSTOS" find --sha256 "$secret" --json >"$WORK/leak.json"
t_grep "the symlink's target was not taken" '^\[\]$' "$WORK/leak.json"
(cd "$DOCKS/BWC0003" && ls -l) | diff "$WORK/r3-before.ls" - >/dev/null
t_ok $? "the recorder still holds every file, the link included"
[ "$(session_field BWC0003 state)" = '"open"' ]
t_ok $? "custos docks shows its session still open"

t_grep "a missing DEVICE.json is named" "dock nodevice: no session yet: DEVICE.json" "$LOG"
t_grep "a DEVICE.json that is not JSON is named, with its line" "dock notjson: no session yet: DEVICE.json line 1" "$LOG"
t_grep "a DEVICE.json without device_id is named" 'dock noid: no session yet: DEVICE.json: "device_id" is missing' "$LOG"
n9=$(count_device BWC0009)
nsess=$("$CUSTOS" docks --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n9" = 0 ] && [ "$nsess" = 3 ]
t_ok $? "no session and no file from the folders without identity ($n9 items, $nsess sessions)"
events_now=$(n_events)
[ "$events_now" = $((events_before + 3)) ]
t_ok $? "the ledger grew by the three files of BWC0003 only ($events_before -> $events_now)"
daemon_running
t_ok $? "custosd is still running"
[ ! -e "$DOCKS/nodevice/CUSTOS-RECEIPT.json" ] && [ ! -e "$DOCKS/notjson/CUSTOS-RECEIPT.json" ] &&
	[ ! -e "$DOCKS/noid/CUSTOS-RECEIPT.json" ]
t_ok $? "no receipt in a folder without identity"
# Fixed, a folder is taken at the next rescan.
device_json "$STAGE" BWC0009 OF001
mv "$STAGE/DEVICE.json" "$DOCKS/notjson/DEVICE.json"
wait_until 20 test -e "$DOCKS/notjson/CUSTOS-RECEIPT.json"
t_ok $? "with DEVICE.json fixed, the folder is taken and gets its receipt"
[ "$(count_device BWC0009)" = 1 ]
t_ok $? "... with its one file"

daemon_stop
t_ok $DRC "SIGTERM stops custosd cleanly (exit 0)"
t_run "custos verify passes afterwards" "$CUSTOS" verify
t_done
