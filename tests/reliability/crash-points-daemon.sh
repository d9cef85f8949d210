#!/bin/bash
# Crash points of the daemon and of a checkpoint (DESIGN invariants 1, 3, 4):
# a crash-point build ends itself with _exit(99) at its k-th durable step
# (CUSTOS_CRASH_AT=k); each scenario is traced once (CUSTOS_CRASH_TRACE=1)
# to count its K steps, then crashed at each k, every time on a fresh copy.
#
# (a) A dock session. custosd-failpoint watches a dock root; a recorder
#     folder (DEVICE.json and 6 files with sequence numbers 1..7 without 4:
#     an empty one, small ones, a 3 MB one in a subdirectory) is moved in.
#     K counts the steps up to the receipt (its directory fsync); the few
#     after it, on the clean-stop path, are crashed too (SIGTERM once the
#     session is complete): the restart then opens a new session, which
#     replaces the receipt. For each k custosd-failpoint runs until it exits
#     99; then:
#       - right after the crash, before anything recovers: `custos verify`
#         passes read-only; the catalog holds no record that is not one of
#         the recorder's files and no file twice; the ledger holds only
#         ingests; if CUSTOS-RECEIPT.json exists, `custos check-receipt`
#         accepts it, every file it lists is in the catalog with those
#         bytes, and its signed checkpoint covers their ingests; every file
#         the crashed custosd logged as secured (released) is in the catalog
#         with those bytes: custosd copies the files into group commits
#         (custos/batch.h), and a crash between a batch's first blob fsync
#         and its catalog commit must not lose a file it already released;
#       - the normal custosd is started and left to finish (a receipt
#         appearing meanwhile is checked the same way each time it changes);
#         then SIGTERM exits 0 with tmp/ empty, and: the receipt lists the 6
#         files with their sha256sum and its checkpoint covers all 6 ingests;
#         every file is exactly one item, seen once; the ledger holds exactly
#         6 events, all ingests (a sighting would mean a file taken twice);
#         the gap [4,4] is in the receipt and in `custos docks`; the
#         recorder's files are unchanged; `custos verify` exits 0.
# (b) A checkpoint. Two base stores with ledger events no checkpoint
#     covers: an ingest of 5 files crashed at its closing checkpoint, and
#     one crashed at the catalog commit of its last file (4 events indexed,
#     the 5th durable in the ledger only). `custos-failpoint checkpoint`
#     is crashed at every k; after each crash read-only verify passes, no
#     checkpoint file is torn, then `custos checkpoint` signs the whole
#     ledger (no event lost), `custos verify` passes (it checks the root at
#     every checkpoint, so all are consistent with one ledger), and a
#     further ingest and checkpoint work.
# CUSTOS_ASAN=1 samples the dock's points (every one up to 20, then every
# 3rd and the last 12); CRASH_POINTS_ALL=1 tries every point.
# Prints "# crash-points-daemon: runs N, failures M" (runs: crashes tried).
. "$(dirname "$0")/../integration/lib.sh"
: "${CUSTOS_FP:?CUSTOS_FP must point at custos-failpoint}"
: "${CUSTOSD:?CUSTOSD must point at custosd}"
: "${CUSTOSD_FP:?CUSTOSD_FP must point at custosd-failpoint}"
asan_allow_preload
need_python3

WORK=$(realpath "$WORK")
S="$WORK/store"
export CUSTOS_STORE="$S"
t_start=$(now_ms)

# The k to try (crash_points): all, or (CUSTOS_ASAN=1) all up to DENSE, then
# every STRIDE-th and the last TAIL.
if [ "${CUSTOS_ASAN:-0}" = 1 ]; then DENSE=20 STRIDE=3 TAIL=12; else DENSE=100000 STRIDE=1 TAIL=0; fi
# last_point FILE: "N name" of the last crash point a traced run reached.
last_point() { grep '^failpoint ' "$1" | tail -1 | cut -d' ' -f2,3; }

# =============================================================== (a) dock
DOCKS="$WORK/docks"
STAGE="$WORK/stage"
RTPL="$WORK/recorder" # the recorder as it comes off the officer
DEV=BWC0001
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" DOCK1 docks "$DOCKS" settle_seconds=0 rescan_seconds=1 concurrency=1

seq_name() {
	printf '%s_OF007_20261128%02d%02d01_%04d.mp4' "$DEV" $((8 + (30 + $1) / 60)) $(((30 + $1) % 60)) "$1"
}
mkdir -p "$RTPL/$DEV/DCIM/100BWC"
for s in 1 2 3 5 6 7; do
	case $s in
	1) size=0 ;;
	2) size=1 ;;
	3) size=65536 ;;
	5) size=$((3 << 20)) ;;
	6) size=70001 ;;
	7) size=4099 ;;
	esac
	dir="$RTPL/$DEV"
	[ $s -ge 5 ] && dir="$RTPL/$DEV/DCIM/100BWC"
	head -c $size /dev/urandom >"$dir/$(seq_name $s)"
done
printf '{"device_id": "%s", "model": "BWC-X2", "officer_id": "OF007", "clock": "%s"}\n' \
	"$DEV" "$(date -u -d '-90 sec' +%Y-%m-%dT%H:%M:%SZ)" >"$RTPL/$DEV/DEVICE.json"
(cd "$RTPL/$DEV" && find . -type f ! -name DEVICE.json -printf '%P\n' | sort | xargs sha256sum) >"$WORK/recorder.sha256"
NFILES=$(grep -c . "$WORK/recorder.sha256")

# The prepared store: made by custosd itself (created on its first start), empty.
daemon_start "$CONF" "$WORK/init.log"
daemon_stop
t_ok $DRC "custosd creates the prepared store and stops cleanly"
TPL="$WORK/store.tpl"
rm -f "$S/custosd.sock"
mv "$S" "$TPL"
VKEY=$(CUSTOS_STORE="$TPL" "$CUSTOS" pubkey)

# dock_done: custosd says the recorder's session is complete, nothing pending or queued.
dock_done() {
	daemon_status | python3 -c '
import json, sys
st = json.loads(sys.stdin.read() or "{}")
d = [k for k in st.get("docks", []) if k.get("device") == sys.argv[1]]
ok = (len(d) == 1 and d[0]["complete"] and d[0]["pending"] == 0 and
      st.get("queued") == 0 and st.get("in_progress") == 0)
sys.exit(0 if ok else 1)' "$DEV" 2>/dev/null
}

# fresh: a copy of the prepared store, an empty dock root, the recorder staged.
fresh() {
	rm -rf "$S" "$DOCKS" "$STAGE"
	cp -a "$TPL" "$S"
	mkdir -p "$DOCKS" "$STAGE"
	cp -a "$RTPL/$DEV" "$STAGE/$DEV"
}

# dock_in BIN LOG: starts BIN (custosd or custosd-failpoint), waits for its
# socket (or its end), then moves the recorder into the dock root.
dock_in() {
	: >"$2"
	DAEMON_BIN=$1 daemon_start "$CONF" "$2"
	mv "$STAGE/$DEV" "$DOCKS/$DEV"
}

# receipt_check WHEN: if the recorder has a receipt now, it is signed by the
# store's key, every file it lists is in the catalog with those bytes, and
# its checkpoint covers their ingests. Safe while custosd runs (readers).
RC="$DOCKS/$DEV/CUSTOS-RECEIPT.json"
receipt_check() {
	local out
	[ -e "$RC" ] || return 0
	cp "$RC" "$WORK/receipt.now" 2>/dev/null || return 0
	if ! "$CUSTOS" check-receipt "$WORK/receipt.now" --key "$VKEY" >/dev/null 2>"$WORK/cr.err"; then
		fail "$1: a receipt exists that custos check-receipt rejects: $(head -2 "$WORK/cr.err" | tr '\n' ' ')"
		return
	fi
	"$CUSTOS" find --device "$DEV" --json >"$WORK/items.now" 2>/dev/null
	"$CUSTOS" log --json >"$WORK/log.now" 2>/dev/null
	out=$(python3 - "$WORK/receipt.now" "$WORK/items.now" "$WORK/log.now" <<'EOF'
import json, sys
t = open(sys.argv[1], encoding="utf-8").read()
r = json.loads(t.partition("\n\n")[0])
items = {i["id"]: i for i in json.load(open(sys.argv[2]))}
log = json.load(open(sys.argv[3]))
seq = {e["item"]["id"]: e["seq"] for e in log if e["event"] == "ingest"}
cp = int(r["checkpoint"].split("\n")[1])
for f in r["files"]:
    i = items.get(f["id"])
    if i is None:
        print("the receipt lists %s (%s) but the catalog has no such item" % (f["name"], f["id"]))
    elif i["sha256"] != f["sha256"] or i["size"] != f["size"]:
        print("the receipt's %s differs from its catalog item" % f["name"])
    elif seq.get(f["id"], 1 << 62) >= cp:
        print("the receipt's checkpoint (tree of %d) does not cover the ingest of %s" % (cp, f["name"]))
if cp > len(log):
    print("the receipt's checkpoint covers %d events, the ledger has %d" % (cp, len(log)))
EOF
)
	[ -z "$out" ] || fail "$1: $(echo $out)"
	RECEIPTS_SEEN=$((RECEIPTS_SEEN + 1))
}

# after_crash: the store and recorder just as the crash left them.
after_crash() {
	local out
	run_verify "read-only verify after the crash"
	"$CUSTOS" find --device "$DEV" --json >"$WORK/items.now" 2>/dev/null
	"$CUSTOS" log --json >"$WORK/log.now" 2>/dev/null
	out=$(python3 - "$WORK/recorder.sha256" "$WORK/items.now" "$WORK/log.now" "$WORK/crash.log" <<'EOF'
import json, re, sys
want = {l.split()[0] for l in open(sys.argv[1])}
items = json.load(open(sys.argv[2]))
log = json.load(open(sys.argv[3]))
shas = [i["sha256"] for i in items]
for l in open(sys.argv[4], encoding="utf-8", errors="replace"):
    m = re.search(r": info: secured (\S+) as \S+ \(\d+ bytes, sha256 ([0-9a-f]{64})\)", l)
    if m and m.group(2) not in shas:
        print("custosd logged %s as secured and released, but the catalog lost it" % m.group(1))
for s in set(shas):
    if s not in want:
        print("an item has bytes that are no file of the recorder (%s)" % s[:16])
    if shas.count(s) > 1:
        print("two items with the bytes %s" % s[:16])
kinds = sorted({e["event"] for e in log})
if kinds not in ([], ["ingest"]):
    print("ledger events other than ingests: %s" % kinds)
if len(log) > len(want):
    print("%d ledger events for %d files" % (len(log), len(want)))
EOF
)
	[ -z "$out" ] || fail "after the crash: $(echo $out)"
	receipt_check "right after the crash"
}

# finish LABEL: the normal custosd takes over and is left to finish; then
# every final check. Sets OUTCOME.
finish() {
	local end changed="" now out n
	: >"$WORK/restart.log"
	daemon_spawn "$CONF" "$WORK/restart.log"
	end=$(($(now_ms) + ${FINISH_MS:-30000}))
	while [ "$(now_ms)" -lt $end ]; do
		if ! daemon_running; then
			fail "the restarted custosd exited: $(tail -3 "$WORK/restart.log" | tr '\n' ' ')"
			break
		fi
		now=$(stat -c '%i %Y %s' "$RC" 2>/dev/null)
		if [ -n "$now" ] && [ "$now" != "$changed" ]; then
			receipt_check "while the restarted custosd works"
			changed=$now
		fi
		if [ -e "$RC" ] && dock_done; then
			break
		fi
		sleep 0.05
	done
	[ "$(now_ms)" -lt $end ] || fail "no receipt and a complete session within $((${FINISH_MS:-30000} / 1000)) s of the restart"
	daemon_stop
	[ $DRC -eq 0 ] || fail "SIGTERM: the restarted custosd exited $DRC"
	[ -z "$(ls -A "$S/tmp")" ] || fail "tmp/ not empty after the clean stop: $(ls -A "$S/tmp" | head -3 | tr '\n' ' ')"
	if grep -Eq "$SANITIZER_RE" "$WORK/crash.log" "$WORK/restart.log"; then
		fail "sanitizer report: $(grep -Eh -A3 "$SANITIZER_RE" "$WORK/crash.log" "$WORK/restart.log" | head -4 | tr '\n' ' ')"
	fi
	if [ ! -e "$RC" ]; then
		fail "no receipt in the recorder after the restart"
	elif ! "$CUSTOS" check-receipt "$RC" --key "$VKEY" >/dev/null 2>"$WORK/cr.err"; then
		fail "custos check-receipt rejects the final receipt: $(head -2 "$WORK/cr.err" | tr '\n' ' ')"
	fi
	"$CUSTOS" find --device "$DEV" --json >"$WORK/items.json" 2>/dev/null
	"$CUSTOS" log --json >"$WORK/log.json" 2>/dev/null
	"$CUSTOS" docks --json >"$WORK/docks.json" 2>/dev/null
	out=$(python3 - "$RC" "$WORK/recorder.sha256" "$WORK/items.json" "$WORK/log.json" "$WORK/docks.json" <<'EOF' 2>&1
import json, sys
want = {}
for l in open(sys.argv[2]):
    h, name = l.rstrip("\n").split("  ", 1)
    want[name] = h
try:
    r = json.loads(open(sys.argv[1], encoding="utf-8").read().partition("\n\n")[0])
except (OSError, ValueError):
    r = None
items, log, docks = (json.load(open(p)) for p in sys.argv[3:6])
if r is not None:
    got = {f["name"]: f["sha256"] for f in r["files"]}
    if len(r["files"]) != len(want) or got != want:
        print("the receipt does not list the %d files with their sha256sum: %r" %
              (len(want), sorted(set(got.items()) ^ set(want.items()))))
    cp = int(r["checkpoint"].split("\n")[1])
    if cp != len(want):
        print("the receipt's checkpoint covers %d events, not the %d ingests" % (cp, len(want)))
    if r["sequence_gaps"] != [[4, 4]]:
        print("the receipt's gaps are %r, not [[4, 4]]" % (r["sequence_gaps"],))
by = {}
for i in items:
    by.setdefault(i["sha256"], []).append(i)
for name, h in want.items():
    n = len(by.get(h, []))
    if n != 1:
        print("%s is %d items" % (name, n))
    elif by[h][0]["sightings"] != 1:
        print("%s was seen %d times" % (name, by[h][0]["sightings"]))
if len(items) != len(want):
    print("%d items of the recorder for %d files" % (len(items), len(want)))
if len(log) != len(want) or any(e["event"] != "ingest" for e in log):
    print("the ledger holds %d events (%s), not %d ingests" %
          (len(log), ",".join(sorted({e["event"] for e in log})), len(want)))
s = [s for s in docks if s["device"] == "BWC0001"]
if not s or s[0]["state"] != "complete" or s[0]["files"] != len(want) or s[0]["sequence_gaps"] != [[4, 4]]:
    print("custos docks: %s" % json.dumps(s[:1]))
EOF
)
	[ -z "$out" ] || fail "$(echo $out)"
	(cd "$DOCKS/$DEV" && sha256sum -c --quiet "$WORK/recorder.sha256" >/dev/null 2>&1) ||
		fail "the recorder's files changed"
	run_verify "verify after the restart"
	n=$(find "$DOCKS/$DEV" -name '.CUSTOS-RECEIPT.json.tmp-*' | grep -c .)
	[ "$n" -eq 0 ] || STRAY_RECEIPT=$((STRAY_RECEIPT + 1))
	OUTCOME="$(grep -c ': info: secured ' "$WORK/restart.log") secured after the restart"
	grep -q 'finishing an ingest whose release was not recorded' "$WORK/restart.log" && OUTCOME="$OUTCOME, one finished from its ledger event"
	grep -q 'removed the receipt of its earlier session' "$WORK/restart.log" && OUTCOME="$OUTCOME, a new session"
	grep -q 'docked again at .*: resuming session' "$WORK/restart.log" && OUTCOME="$OUTCOME, the session resumed"
}

# ---- the trace: points up to the receipt's directory fsync ----
fresh
CUSTOS_CRASH_TRACE=1 dock_in "$CUSTOSD_FP" "$WORK/trace.log"
end=$(($(now_ms) + 30000))
while ! { [ -e "$RC" ] && dock_done; } && [ "$(now_ms)" -lt $end ]; do sleep 0.05; done
sleep 0.3
daemon_stop
t_ok $DRC "dock: an uncrashed custosd-failpoint run writes the receipt and stops with exit 0"
grep '^failpoint ' "$WORK/trace.log" | awk '
	$3 == "receipt" { r = 1 }
	r == 1 && $3 == "rename" { r = 2 }
	r == 2 && $3 == "fsync-dir" { print $2; r = 3 }' >"$WORK/K"
K=$(cat "$WORK/K")
[ -n "$K" ] && [ "$K" -gt 0 ]
t_ok $? "dock: ${K:-0} crash points up to the receipt ($(grep '^failpoint' "$WORK/trace.log" | head -n "${K:-0}" | cut -d' ' -f3 | sort | uniq -c | awk '{printf "%s%s x%s", s, $2, $1; s=", "}'))"
[ -n "$K" ] || K=0
# KT: every point of the run; those after K are on the clean-stop path (SIGTERM).
KT=$(grep -c '^failpoint ' "$WORK/trace.log")

STRAY_RECEIPT=0
RECEIPTS_SEEN=0
NOT_REACHED=0
t0=$(now_ms)
tried=0
KEEP_PATHS=("$S" "$DOCKS" "$WORK/init.log" "$WORK/trace.log" "$WORK/crash.log" "$WORK/restart.log")
for k in $(crash_points "$K" $DENSE $STRIDE $TAIL) $(seq $((K + 1)) "$KT"); do
	fresh
	CUSTOS_CRASH_AT=$k CUSTOS_CRASH_TRACE=1 dock_in "$CUSTOSD_FP" "$WORK/crash.log"
	end=$(($(now_ms) + 30000))
	while daemon_running && [ "$(now_ms)" -lt $end ]; do
		# (a point not reached: the run completes; it is stopped below)
		[ -e "$RC" ] && dock_done && sleep 0.5 && break
		sleep 0.02
	done
	# Past the receipt: the point is on the clean-stop path.
	daemon_stop
	rc=$DRC
	what=$(last_point "$WORK/crash.log")
	if [ $rc -ne 99 ]; then
		NOT_REACHED=$((NOT_REACHED + 1))
		echo "# crash point $k not reached: custosd-failpoint exited $rc after point ${what:-none}"
		[ $rc -eq 0 ] || fail "custosd-failpoint exited $rc (last point reached: $what)"
	fi
	rm -f "$S/custosd.sock"
	after_crash
	if [ -e "$RC" ]; then RC_AFTER="a receipt"; else RC_AFTER="no receipt"; fi
	OUTCOME=""
	finish
	tried=$((tried + 1))
	report "dock: crash at $k/$KT (${what#* }): $RC_AFTER after the crash; $OUTCOME"
done
echo "# dock: $tried of $KT crash points tried in $(($(now_ms) - t0)) ms; receipts checked at $RECEIPTS_SEEN moments"
[ "$NOT_REACHED" -eq 0 ] || echo "# dock: $NOT_REACHED runs completed without reaching their crash point (the daemon's order of steps varies)"
[ "$STRAY_RECEIPT" -eq 0 ] ||
	echo "# note: after $STRAY_RECEIPT crashes the recorder kept a stray .CUSTOS-RECEIPT.json.tmp-PID (nothing removes it)"

# ========================================================= (b) checkpoint
CASE='平司罚〔2020〕1号'
IN="$WORK/in"
mkdir -p "$IN"
CTPL="$WORK/cp-template"
export CUSTOS_STORE="$CTPL"
"$CUSTOS" init --station CP >/dev/null
for i in 1 2; do head -c $((i * 3000)) /dev/urandom >"$IN/prior$i"; done
t_run "checkpoint: template with two items and a checkpoint" "$CUSTOS" ingest "$IN/prior1" "$IN/prior2" --case "$CASE"
BATCH=()
for i in 1 2 3 4 5; do
	head -c $((i * 7001)) /dev/urandom >"$IN/b$i"
	BATCH+=("$IN/b$i")
done
export CUSTOS_STORE="$S"
rm -rf "$S"
cp -a "$CTPL" "$S"
CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" ingest "${BATCH[@]}" --case "$CASE" >/dev/null 2>"$WORK/itrace.err"
t_ok $? "checkpoint: the batch's uncrashed ingest succeeds under the trace"
k_cp=$(grep '^failpoint [0-9]* checkpoint$' "$WORK/itrace.err" | tail -1 | cut -d' ' -f2)
k_commit=$(grep '^failpoint [0-9]* lmdb-commit$' "$WORK/itrace.err" | tail -1 | cut -d' ' -f2)

# cp_files: the checkpoint journal's entries as "size size" (each entry
# whole, its checksum right); then checkpoints/latest, which must be the
# journal's newest or, after a crash between the two writes, the one before.
cp_files() {
	local n
	python3 "$CUSTOS_SRC/tests/cpj.py" list "$S/checkpoints/journal" | awk '{ print $4, $4 }'
	n=$(python3 "$CUSTOS_SRC/tests/cpj.py" list "$S/checkpoints/journal" | tail -2 | cut -d' ' -f4 | tr '\n' ' ')
	case " $n" in
	*" $(sed -n 2p "$S/checkpoints/latest") "*) ;;
	*) echo "latest $(sed -n 2p "$S/checkpoints/latest")" ;;
	esac
}

for st in uncovered:$k_cp unindexed:$k_commit; do
	base="$WORK/base-${st%%:*}"
	rm -rf "$base"
	cp -a "$CTPL" "$base"
	CUSTOS_STORE="$base" CUSTOS_CRASH_AT=${st#*:} "$CUSTOS_FP" ingest "${BATCH[@]}" --case "$CASE" >/dev/null 2>&1
	[ $? -eq 99 ]
	t_ok $? "checkpoint base '${st%%:*}': the batch's ingest crashed at point ${st#*:}"
	rm -rf "$S"
	cp -a "$base" "$S"
	want=$((2 + 5))
	n_before=$(ledger_size)
	latest=$(sed -n 2p "$base/checkpoints/latest")
	[ "$latest" -eq 2 ] && { [ "${st%%:*}" = unindexed ] || [ "$n_before" -eq $want ]; }
	t_ok $? "checkpoint base '${st%%:*}': $n_before events readable, the latest checkpoint covers $latest"
	CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" checkpoint >/dev/null 2>"$WORK/ctrace.err"
	t_ok $? "checkpoint base '${st%%:*}': an uncrashed custos-failpoint checkpoint succeeds"
	PNAME=()
	while read -r _ n p; do PNAME[$n]=$p; done < <(grep '^failpoint [0-9]* ' "$WORK/ctrace.err")
	KC=${#PNAME[@]}
	echo "# checkpoint '${st%%:*}': $KC crash points ($(grep '^failpoint' "$WORK/ctrace.err" | cut -d' ' -f3 | tr '\n' ' '))"
	for ((k = 1; k <= KC + 1; k++)); do
		rm -rf "$S"
		cp -a "$base" "$S"
		CUSTOS_CRASH_AT=$k "$CUSTOS_FP" checkpoint >"$WORK/cp.out" 2>"$WORK/crash.err"
		rc=$?
		wantrc=99
		[ $k -le "$KC" ] || wantrc=0
		[ $rc -eq $wantrc ] || fail "custos-failpoint checkpoint exited $rc, expected $wantrc"
		run_verify "read-only verify after the crash"
		while read -r a b; do
			[ "$a" = "$b" ] || fail "checkpoints/latest ($b events) is neither of the journal's last two"
		done < <(cp_files)
		cps_crash=$(cp_files | cut -d' ' -f1 | tr '\n' ' ')
		"$CUSTOS" checkpoint >"$WORK/cp.out" 2>"$WORK/cp.err" ||
			fail "custos checkpoint after the crash failed: $(head -3 "$WORK/cp.err" | tr '\n' ' ')"
		n=$(ledger_size)
		[ "$n" -eq $want ] || fail "the ledger holds $n events after recovery, expected $want (an event was lost)"
		[ "$(sed -n 2p "$WORK/cp.out")" = "$n" ] || fail "the checkpoint covers '$(sed -n 2p "$WORK/cp.out")' events, the ledger has $n"
		run_verify "verify after recovery"
		[ -z "$(ls -A "$S/tmp")" ] || fail "tmp/ not empty after recovery"
		stray=$(find "$S" -name '.*.tmp-*' | head -3 | tr '\n' ' ')
		[ -z "$stray" ] || fail "temp files left after recovery: $stray"
		[ "$(cp_files | cut -d' ' -f1 | tr '\n' ' ')" = "0 2 $want " ] ||
			fail "checkpoints after recovery: $(cp_files | cut -d' ' -f1 | tr '\n' ' '), expected 0 2 $want"
		"$CUSTOS" ingest "$IN/b1" --case "$CASE" >/dev/null 2>&1 ||
			fail "an ingest after recovery failed"
		"$CUSTOS" checkpoint >"$WORK/cp.out" 2>&1 && [ "$(sed -n 2p "$WORK/cp.out")" = $((want + 1)) ] ||
			fail "no checkpoint of $((want + 1)) events after a further ingest"
		run_verify "verify after a further ingest"
		report "checkpoint '${st%%:*}': crash at $k/$KC (${PNAME[$k]:-none: completes}); checkpoints after the crash: ${cps_crash:-none}"
	done
done

echo "# crash-points-daemon: runs $RUNS, failures $FAILURES ($(($(now_ms) - t_start)) ms)"
t_done
