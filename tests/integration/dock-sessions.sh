#!/bin/bash
# Recorder dock sessions and receipts against outside input (issue 15):
#   1. Two folders with one device id and a file of the same name, size and
#      time but other bytes (one after the other, then two clones at once):
#      each receipt lists its own folder's digest, and `custos docks` and
#      `custos status` show two sessions. The clones are docked while
#      custosd's wall clock is stopped (libfaketime), so both sessions open in
#      the same millisecond: two ids all the same (the second with "-2"), each
#      receipt and each file's sighting in its own folder's session, each
#      file secured once.
#   2. A restart (SIGTERM, then SIGKILL) with a complete session still
#      docked: the receipt stays (never absent, unchanged), no second session,
#      the offset and the docking time are those of the docking. A file whose
#      bytes were changed (size and time kept) while custosd was stopped is
#      not listed from the earlier digest: when a new file asks for a new
#      receipt, its bytes are read again, it is secured again and the old
#      receipt goes.
#   3. What the receipt walk cannot see blocks the receipt and is named:
#      folders more than 32 deep (a readable file, a FIFO), an unreadable
#      folder.
#   4. A recorder clock decades off is a warning and flags the session and
#      the receipt; a 23-digit sequence number is kept as written, named, and
#      left out of the gaps; check-receipt prints the gaps.
#   5. A receipt that cannot be written for want of permission says which
#      permission and what to run.
#   6. The receipt writer's own check (custosd-failpoint): a file whose job
#      is lost just before the walk, counted pending by nothing, gets no
#      receipt without it; the log names it, and it is secured again first.
# As root, custosd runs without CAP_DAC_OVERRIDE (setpriv), so that folder
# permissions apply to it.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"
asan_allow_preload
need_python3

DOCKS="$WORK/docks"
STAGE="$WORK/stage"
mkdir -p "$DOCKS" "$STAGE"
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" DS1 docks "$DOCKS" settle_seconds=0 rescan_seconds=1 concurrency=2
LOG="$WORK/daemon.log"
VKEY=

# PRELOAD: the variable start_daemon passes a library to preload into custosd
# in. The wrapper passes REAL_PRELOAD on to custosd alone: a library preloaded
# into the wrapper too would stay with the one pid through both execs
# (libfaketime then leaves its shared memory in /dev/shm).
PRELOAD=LD_PRELOAD
if [ "$(id -u)" = 0 ]; then
	if command -v setpriv >/dev/null 2>&1; then
		cat >"$WORK/nocap" <<'EOF'
#!/bin/sh
set -- "$REAL_BIN" "$@"
[ -z "${REAL_PRELOAD:-}" ] || set -- env "LD_PRELOAD=$REAL_PRELOAD" "$@"
exec setpriv --bounding-set -dac_override,-dac_read_search "$@"
EOF
		chmod +x "$WORK/nocap"
		NOCAP=1
		PRELOAD=REAL_PRELOAD
	else
		NOCAP=0
	fi
else
	NOCAP=1 # permissions apply anyway
fi
# start_daemon BIN [NAME=VALUE...]: custosd (or BIN) on $CONF, without DAC override as root.
start_daemon() {
	local bin=$1
	shift
	if [ "$(id -u)" = 0 ] && [ "$NOCAP" = 1 ]; then
		DAEMON_BIN="$WORK/nocap" daemon_start "$CONF" "$LOG" REAL_BIN="$bin" "$@"
	else
		DAEMON_BIN="$bin" daemon_start "$CONF" "$LOG" "$@"
	fi
}

# device_json DIR DEVICE CLOCK
device_json() {
	printf '{"device_id": "%s", "model": "BWC-X2", "officer_id": "OF007", "clock": "%s"}\n' \
		"$2" "$3" >"$1/DEVICE.json"
}
clock_ago() { date -u -d "-$1 sec" +%Y-%m-%dT%H:%M:%SZ; }
# rec_file PATH SIZE: random bytes with a fixed mtime (FAT-like, as a reset recorder clock)
rec_file() {
	mkdir -p "$(dirname "$1")"
	head -c "$2" /dev/urandom >"$1"
	touch -d '2026-11-28 08:30:01' "$1"
}
receipt_json() {
	python3 -c '
import sys
print(open(sys.argv[1], encoding="utf-8").read().partition("\n\n")[0])' "$1"
}
# rfield RECEIPT EXPR: a Python expression on the receipt r.
rfield() {
	receipt_json "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"
}
# listed RECEIPT NAME: the sha256 the receipt lists for NAME.
listed() { rfield "$1" "{f['name']: f['sha256'] for f in r['files']}.get('$2', 'none')"; }
docks_json() { "$CUSTOS" docks "$@" --json 2>/dev/null; }
# sessions_of DEVICE [--all]: "folder session state offset docked_at" lines, sorted.
sessions_of() {
	local dev=$1
	shift
	docks_json "$@" | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["device"] == sys.argv[1]:
        print(s.get("folder"), s["session"], s["state"], s["clock_offset_ms"], s["docked_at"])' "$dev" | sort
}
has_receipt() { [ -e "$DOCKS/$1/CUSTOS-RECEIPT.json" ]; }
# settle: custosd is idle, and two rescans and receipt rounds have passed.
settle() { wait_until 60 daemon_idle; sleep 2.5; }

start_daemon "$CUSTOSD"
t_ok $? "custosd starts on an empty dock root"
VKEY=$("$CUSTOS" pubkey)

# ------------------------------------------------- 1. one device id, two folders
F=DCIM/BWC-J_OF007_20261128083001_0001.mp4
mkdir -p "$STAGE/recJ1"
device_json "$STAGE/recJ1" BWC-J "$(clock_ago 15)"
rec_file "$STAGE/recJ1/$F" 3000
D1=$(digest "$STAGE/recJ1/$F")
mv "$STAGE/recJ1" "$DOCKS/"
wait_until 60 has_receipt recJ1
t_ok $? "recJ1: the receipt is written"
mkdir -p "$STAGE/recJ2"
device_json "$STAGE/recJ2" BWC-J "$(clock_ago 3)"
rec_file "$STAGE/recJ2/$F" 3000
D2=$(digest "$STAGE/recJ2/$F")
[ "$D1" != "$D2" ] && [ "$(stat -c %s.%Y "$DOCKS/recJ1/$F")" = "$(stat -c %s.%Y "$STAGE/recJ2/$F")" ]
t_ok $? "recJ2: the same device id, file name, size and time, other bytes"
mv "$STAGE/recJ2" "$DOCKS/"
wait_until 60 has_receipt recJ2
t_ok $? "recJ2: a receipt is written"
[ "$(listed "$DOCKS/recJ2/CUSTOS-RECEIPT.json" "$F")" = "$D2" ]
t_ok $? "recJ2's receipt lists recJ2's own bytes, not recJ1's ($(listed "$DOCKS/recJ2/CUSTOS-RECEIPT.json" "$F" | cut -c1-12))"
[ "$(listed "$DOCKS/recJ1/CUSTOS-RECEIPT.json" "$F")" = "$D1" ]
t_ok $? "recJ1's receipt lists recJ1's bytes"
"$CUSTOS" find --sha256 "$D2" --json | grep -q '"size": 3000'
t_ok $? "recJ2's bytes are in the store"
n=$(sessions_of BWC-J | awk '{print $1, $2}' | sort -u | wc -l)
s1=$(sessions_of BWC-J | awk '$1 == "recJ1" {print $2}')
s2=$(sessions_of BWC-J | awk '$1 == "recJ2" {print $2}')
[ "$n" = 2 ] && [ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ]
t_ok $? "custos docks: two sessions of BWC-J, one per folder ($s1, $s2)"
"$CUSTOS" status >"$WORK/status.out" 2>&1
grep -q "dock recJ1: recorder BWC-J, session $s1" "$WORK/status.out" &&
	grep -q "dock recJ2: recorder BWC-J, session $s2" "$WORK/status.out"
t_ok $? "custos status: both folders, each with its own session"

# Two clones at once, docked in one millisecond: identical DEVICE.json, same
# name/size/time, other bytes. custosd runs with its wall clock stopped
# (libfaketime, FAKETIME="YYYY-MM-DD hh:mm:ss"; the monotonic clock of its
# timers still runs), so both folders' sessions open at the same millisecond
# however fast the machine is: the second's id gets "-2".
FTLIB=
for d in /usr/lib/*/faketime /usr/lib/faketime /usr/local/lib/faketime; do
	[ -r "$d/libfaketimeMT.so.1" ] && FTLIB="$d/libfaketimeMT.so.1" && break
done
daemon_stop
if [ -n "$FTLIB" ]; then
	start_daemon "$CUSTOSD" FAKETIME="$(date '+%F %T')" FAKETIME_DONT_FAKE_MONOTONIC=1 \
		"$PRELOAD=$FTLIB${LD_PRELOAD:+:$LD_PRELOAD}"
	t_ok $? "custosd starts with its wall clock stopped (libfaketime)"
else
	start_daemon "$CUSTOSD"
	t_ok $? "custosd starts (libfaketime, Debian package faketime, is missing: the clock runs)"
fi
mkdir -p "$STAGE/recK1"
device_json "$STAGE/recK1" BWC-K "$(clock_ago 30)"
rec_file "$STAGE/recK1/$F" 5000
cp -a "$STAGE/recK1" "$STAGE/recK2"
rec_file "$STAGE/recK2/$F" 5000 # (names saying BWC-J: names are not compared with device_id)
K1=$(digest "$STAGE/recK1/$F")
K2=$(digest "$STAGE/recK2/$F")
mv "$STAGE/recK1" "$STAGE/recK2" "$DOCKS/"
wait_until 60 has_receipt recK1 && wait_until 60 has_receipt recK2
t_ok $? "two clone folders docked at once: both get a receipt"
settle
[ "$(listed "$DOCKS/recK1/CUSTOS-RECEIPT.json" "$F")" = "$K1" ] &&
	[ "$(listed "$DOCKS/recK2/CUSTOS-RECEIPT.json" "$F")" = "$K2" ] &&
	[ "$(rfield "$DOCKS/recK1/CUSTOS-RECEIPT.json" "len(r['files'])")" = 1 ] &&
	[ "$(rfield "$DOCKS/recK2/CUSTOS-RECEIPT.json" "len(r['files'])")" = 1 ]
t_ok $? "... each listing its own folder's bytes, and only them"
ks1=$(rfield "$DOCKS/recK1/CUSTOS-RECEIPT.json" "r['session']")
ks2=$(rfield "$DOCKS/recK2/CUSTOS-RECEIPT.json" "r['session']")
[ "$ks1" != "$ks2" ] && [ "$(sessions_of BWC-K | wc -l)" = 2 ] &&
	[ "$(sessions_of BWC-K | awk '$1 == "recK1" {print $2}')" = "$ks1" ] &&
	[ "$(sessions_of BWC-K | awk '$1 == "recK2" {print $2}')" = "$ks2" ]
t_ok $? "... in two sessions, each receipt naming its folder's ($ks1, $ks2)"
dk1=$(rfield "$DOCKS/recK1/CUSTOS-RECEIPT.json" "r['docked_at']")
dk2=$(rfield "$DOCKS/recK2/CUSTOS-RECEIPT.json" "r['docked_at']")
if [ -n "$FTLIB" ]; then
	[ "$dk1" = "$dk2" ] && { [ "$ks2" = "$ks1-2" ] || [ "$ks1" = "$ks2-2" ]; }
	t_ok $? "... docked in the same millisecond ($dk1, $dk2): the second id is the first's -2"
else
	echo "ok $((T_N += 1)) - ... docked in the same millisecond # SKIP libfaketime is not installed"
fi
# sightings_of SHA: "ITEMS SIGHTINGS SESSIONS" of the bytes SHA in the store
# (SESSIONS: the dock sessions of its sightings, comma-separated).
sightings_of() {
	"$CUSTOS" find --sha256 "$1" --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
s = [x.get("extra", {}).get("dock_session", "") for i in j for x in i.get("seen", [])]
print(len(j), sum(i.get("sightings", 0) for i in j), ",".join(s))'
}
[ "$(sightings_of "$K1")" = "1 1 $ks1" ] && [ "$(sightings_of "$K2")" = "1 1 $ks2" ]
t_ok $? "... each file secured once, in its own folder's session"
daemon_stop
start_daemon "$CUSTOSD"
t_ok $? "custosd starts again with the clock running"

# ------------------------------------------------- 2. restarts
# A recorder alone under its device id, complete, with a clock 15 s behind.
FR=DCIM/BWC-R_OF007_20261128083001_0001.mp4
mkdir -p "$STAGE/recR"
device_json "$STAGE/recR" BWC-R "$(clock_ago 15)"
rec_file "$STAGE/recR/$FR" 3000
mv "$STAGE/recR" "$DOCKS/"
wait_until 60 has_receipt recR
t_ok $? "recR: the receipt is written"
sR=$(sessions_of BWC-R | awk '$1 == "recR" {print $2}')
sleep 1 # docked a while: an offset measured again would differ
RJ="$DOCKS/recR/CUSTOS-RECEIPT.json"
cp "$RJ" "$WORK/recR.receipt"
before=$(sessions_of BWC-R | grep '^recR ')
ndone_before=$(sessions_of BWC-R --all | grep -c '^recR ')
# A watcher: any moment without the receipt is recorded.
(
	while [ ! -e "$WORK/stop-watch" ]; do
		[ -e "$RJ" ] || echo "absent $(date +%s.%N)" >>"$WORK/absent"
		sleep 0.01
	done
) &
WATCH=$!
# since N: the log after its first N lines (into $WORK/since).
since() { tail -n +$(($1 + 1)) "$LOG" >"$WORK/since"; }
daemon_stop
n0=$(wc -l <"$LOG")
start_daemon "$CUSTOSD"
settle
since "$n0"
grep -q "recorder BWC-R at recR: session $sR .* is complete and its receipt stays" "$WORK/since"
t_ok $? "SIGTERM and start: the log says the complete session and its receipt stay"
cmp -s "$RJ" "$WORK/recR.receipt"
t_ok $? "SIGTERM and start: recR's receipt is the same file as before"
[ "$(sessions_of BWC-R | grep '^recR ')" = "$before" ]
t_ok $? "SIGTERM and start: the same session, offset and docking time ($before)"
[ "$(sessions_of BWC-R --all | grep -c '^recR ')" = "$ndone_before" ]
t_ok $? "SIGTERM and start: no second session for the docking (custos docks --all)"
! grep -q "secured $DOCKS/recR/" "$WORK/since"
t_ok $? "SIGTERM and start: nothing of recR is taken again"
daemon_kill
start_daemon "$CUSTOSD"
settle
cmp -s "$RJ" "$WORK/recR.receipt" && [ "$(sessions_of BWC-R | grep '^recR ')" = "$before" ] &&
	[ "$(sessions_of BWC-R --all | grep -c '^recR ')" = "$ndone_before" ]
t_ok $? "SIGKILL and start: the same receipt, session, offset and docking time"
touch "$WORK/stop-watch"
wait $WATCH
[ ! -s "$WORK/absent" ]
t_ok $? "recR's receipt was never absent across both restarts ($(wc -l <"$WORK/absent" 2>/dev/null || echo 0) polls without)"

# Changed bytes while stopped (size and time kept), then a new file.
daemon_stop
head -c 3000 /dev/urandom >"$DOCKS/recR/$FR"
touch -d '2026-11-28 08:30:01' "$DOCKS/recR/$FR"
DRb=$(digest "$DOCKS/recR/$FR")
G=DCIM/BWC-R_OF007_20261128083101_0002.mp4
start_daemon "$CUSTOSD"
settle
rec_file "$STAGE/g" 4000
DG=$(digest "$STAGE/g")
mv "$STAGE/g" "$DOCKS/recR/$G"
newreceipt() { [ "$(listed "$RJ" "$G" 2>/dev/null)" = "$DG" ]; }
wait_until 60 newreceipt
t_ok $? "a new file in the complete session's folder gets a new receipt"
[ "$(listed "$RJ" "$FR")" = "$DRb" ]
t_ok $? "... listing the changed file with its bytes now, not the digest secured before"
grep -q "recR/$FR holds other bytes than were secured from it in session $sR" "$LOG"
t_ok $? "... the log names the changed file"
grep -q "the receipt in the folder, which listed the other bytes, was removed" "$LOG"
t_ok $? "... and says the receipt that listed the old bytes was removed"
[ "$(rfield "$RJ" "r['session']")" = "$sR" ] &&
	[ "$(rfield "$RJ" "r['clock_offset_ms']")" = "$(echo "$before" | awk '{print $4}')" ]
t_ok $? "... in the same session, with the offset of the docking"

# ------------------------------------------------- 3. what the walk cannot see
deep() { # DIR N: a path of N nested folders under DIR
	local p=$1 i
	for ((i = 1; i <= $2; i++)); do p="$p/d$i"; done
	echo "$p"
}
mkdir -p "$STAGE/recD"
device_json "$STAGE/recD" BWC-D "$(clock_ago 5)"
rec_file "$STAGE/recD/BWC-D_OF007_20261128083001_0001.mp4" 2000
P34=$(deep "$STAGE/recD" 34)
rec_file "$P34/BWC-D_OF007_20261128083201_0002.mp4" 1000
P40=$(deep "$STAGE/recD" 40)
mkdir -p "$P40"
mkfifo "$P40/fifo"
mv "$STAGE/recD" "$DOCKS/"
deep_logged() { grep -q "recorder BWC-D: $DOCKS/recD/$(deep "" 33 | cut -c2-) is more than 32 folders deep" "$LOG"; }
wait_until 60 deep_logged
t_ok $? "a folder 33 deep is named in the log as not looked into"
grep -q "no receipt is written while it is so" "$LOG"
t_ok $? "... which says no receipt is written"
settle
! has_receipt recD
t_ok $? "no receipt for the recorder with files more than 32 folders deep"
grep -q "secured $DOCKS/recD/BWC-D_OF007_20261128083001_0001.mp4" "$LOG"
t_ok $? "... its top file is secured all the same"
if [ "$NOCAP" = 1 ]; then
	mkdir -p "$STAGE/recU/DCIM/private"
	device_json "$STAGE/recU" BWC-U "$(clock_ago 5)"
	rec_file "$STAGE/recU/DCIM/BWC-U_OF007_20261128083001_0001.mp4" 2000
	rec_file "$STAGE/recU/DCIM/private/BWC-U_OF007_20261128083101_0002.mp4" 2000
	chmod 000 "$STAGE/recU/DCIM/private"
	mv "$STAGE/recU" "$DOCKS/"
	wait_until 60 grep -q "recorder BWC-U: $DOCKS/recU/DCIM/private is a folder that cannot be read (Permission denied)" "$LOG"
	t_ok $? "an unreadable folder on a recorder is named, with why"
	settle
	! has_receipt recU
	t_ok $? "... and keeps the receipt back"
	chmod 755 "$DOCKS/recU/DCIM/private"
	wait_until 60 has_receipt recU
	t_ok $? "... made readable, its file is secured and the receipt follows"
else
	echo "# skipped: root without setpriv (permissions do not apply)"
fi

# ------------------------------------------------- 4. clock decades off, long sequence numbers
LONG=12345678901234567890123
mkdir -p "$STAGE/recC"
device_json "$STAGE/recC" BWC-C "1970-01-01T00:00:05Z"
rec_file "$STAGE/recC/BWC-C_OF007_20261128083001_0001.mp4" 1000
rec_file "$STAGE/recC/BWC-C_OF007_20261128083101_0003.mp4" 1000
rec_file "$STAGE/recC/BWC-C_OF007_20261128083201_$LONG.mp4" 1000
mv "$STAGE/recC" "$DOCKS/"
wait_until 60 has_receipt recC
t_ok $? "recC (clock 1970) gets its receipt"
RC="$DOCKS/recC/CUSTOS-RECEIPT.json"
grep -q "warning: recorder BWC-C: its clock read 1970-01-01T00:00:05Z at docking, [0-9.]* days behind" "$LOG"
t_ok $? "the clock decades off is logged as a warning"
[ "$(rfield "$RC" "r['clock_suspect']")" = True ]
t_ok $? "the receipt flags the clock"
docks_json | python3 -c '
import json, sys
s = [s for s in json.load(sys.stdin) if s["device"] == "BWC-C"]
sys.exit(not (len(s) == 1 and s[0]["clock_suspect"] is True))'
t_ok $? "the session record flags the clock"
"$CUSTOS" docks >"$WORK/docks.out" 2>&1
t_grep "custos docks shows it" "^BWC-C	.*	CLOCK SUSPECT" "$WORK/docks.out"
[ "$(rfield "$RC" "r['sequence_gaps']")" = "[[2, 2]]" ]
t_ok $? "the 23-digit sequence number is left out of the gaps ($(rfield "$RC" "r['sequence_gaps']"))"
t_grep "... and named in the log" "recorder BWC-C: BWC-C_OF007_20261128083201_$LONG.mp4: sequence number $LONG has more than 18 digits" "$LOG"
"$CUSTOS" find --device BWC-C --json | python3 -c '
import json, sys
seqs = sorted(str(i["extra"]["seq"]) for i in json.load(sys.stdin))
sys.exit(not ("'"$LONG"'" in seqs and "9223372036854775807" not in seqs))'
t_ok $? "its record keeps the number exactly as written, not clamped"
t_run "check-receipt accepts recC's receipt" "$CUSTOS" check-receipt "$RC" --key "$VKEY"
t_grep "... and prints its sequence gaps" "^sequence gaps: 2 \(" "$WORK/last.out"
t_grep "... and warns about the clock" "^WARNING: the recorder's clock was more than a year off" "$WORK/last.out"
mkdir -p "$STAGE/recF"
device_json "$STAGE/recF" BWC-F "2099-06-01T00:00:00Z"
rec_file "$STAGE/recF/BWC-F_OF007_20261128083001_0001.mp4" 1000
mv "$STAGE/recF" "$DOCKS/"
wait_until 60 has_receipt recF
[ "$(rfield "$DOCKS/recF/CUSTOS-RECEIPT.json" "r['clock_suspect']")" = True ] &&
	grep -q "recorder BWC-F: its clock read 2099-06-01T00:00:00Z at docking, [0-9.]* days ahead of" "$LOG"
t_ok $? "a clock in 2099 is flagged and warned about too"
[ "$(rfield "$DOCKS/recJ2/CUSTOS-RECEIPT.json" "r['clock_suspect']")" = False ]
t_ok $? "a clock seconds off is not flagged"

# ------------------------------------------------- 5. receipt write refused
if [ "$NOCAP" = 1 ]; then
	mkdir -p "$STAGE/recP"
	device_json "$STAGE/recP" BWC-P "$(clock_ago 5)"
	rec_file "$STAGE/recP/BWC-P_OF007_20261128083001_0001.mp4" 1000
	chmod 555 "$STAGE/recP"
	mv "$STAGE/recP" "$DOCKS/"
	wait_until 60 grep -q "recorder BWC-P: the receipt cannot be written into $DOCKS/recP (Permission denied)" "$LOG"
	t_ok $? "a receipt refused for permission is logged"
	t_grep "... saying which permission is missing" "recorder BWC-P: .* gives it, as 'owner', no write permission" "$LOG"
	t_grep "... and what to run" "recorder BWC-P: .*chmod g\+rwx '$DOCKS/recP'" "$LOG"
	chmod 755 "$DOCKS/recP"
else
	echo "# skipped: root without setpriv (permissions do not apply)"
fi

daemon_stop
t_ok $DRC "SIGTERM stops custosd cleanly (exit 0)"

# ------------------------------------------------- 6. the receipt writer's own check
H=BWC-H_OF007_20261128083101_0002.mp4
mkdir -p "$STAGE/recH"
device_json "$STAGE/recH" BWC-H "$(clock_ago 5)"
rec_file "$STAGE/recH/BWC-H_OF007_20261128083001_0001.mp4" 1500
rec_file "$STAGE/recH/$H" 2500
rec_file "$STAGE/recH/BWC-H_OF007_20261128083201_0003.mp4" 3500
start_daemon "$CUSTOSD_FP" CUSTOSD_TEST_DROP_JOB="$H"
mv "$STAGE/recH" "$DOCKS/"
wait_until 60 has_receipt recH
t_ok $? "recH: with one job lost before the walk, a receipt still comes"
RH="$DOCKS/recH/CUSTOS-RECEIPT.json"
grep -n "recorder BWC-H: no receipt yet: $DOCKS/recH/$H is not recorded as secured" "$LOG" >"$WORK/h.nr"
t_ok $? "the walk found the file without its job, and the log names it"
# (a failure here once, on a loaded machine, could not be reproduced: show what custosd said)
[ -s "$WORK/h.nr" ] || grep -n "BWC-H\|recH\|test: dropped" "$LOG" | sed 's/^/#   /' | tail -20
[ "$(grep -c "secured $DOCKS/recH/$H " "$LOG")" -ge 2 ]
t_ok $? "the file was secured again before the receipt"
[ "$(rfield "$RH" "len(r['files'])")" = 3 ] && [ "$(listed "$RH" "$H")" = "$(digest "$DOCKS/recH/$H")" ]
t_ok $? "the receipt lists all three files, the one whose job was lost included"
daemon_stop
t_ok $DRC "custosd-failpoint stops cleanly"

t_run "custos verify passes" "$CUSTOS" verify
t_no_sanitizer "no sanitizer report" "$LOG"
chmod -R u+rwx "$DOCKS" 2>/dev/null
t_done
