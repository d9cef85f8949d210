#!/bin/bash
# Scheduled fixity in custosd ([fixity] rate = 64K, period = 10s; 12 items of
# 64 KiB ingested before custosd starts, so all are due at once):
#   (a) custosd checks the items at the configured rate: each check is a
#       "fixity" event (agent custosd, outcome ok), and the events of a run
#       are spread over at least the time the bytes take at 64 KiB/s (the
#       machine being slow only spreads them more);
#   (b) after a SIGKILL mid-pass, custosd resumes where it stopped: the
#       first 12 fixity events (over both runs) name 12 different items, so
#       no item is checked a second time while another still waits for its
#       first (starting over would check the first ones again);
#   (d) intake has priority: a burst of 30 files dropped into the upload
#       directory while the pass runs is all secured (every source released
#       and in the store), and the pass goes on after it; and while a file is
#       in flight (held between its copy and its re-read by the test gate of
#       custosd-failpoint) no fixity check is made (at most the one step
#       already running ends), then the schedule resumes;
#   (c) a byte flipped in one blob is found on the schedule (within a period
#       of the flip, waited for with a generous bound): an error line in the
#       log names the item and what to do, `custos status --json` lists it
#       under fixity.damaged, the event says "damaged" with the SHA-256 found;
#   and the catalog's projection of the events (custos fixity --json) is the
#   same after `custos rebuild`, verify finds only the damaged blob.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"
need_python3
asan_allow_preload

NITEMS=12
SIZE=65536
RATE=65536
IN="$WORK/inbox"
mkdir -p "$IN" "$WORK/src"
"$CUSTOS" init --station fx >/dev/null 2>&1
t_ok $? "custos init"
for i in $(seq 1 $NITEMS); do head -c $SIZE /dev/urandom >"$WORK/src/f$i.bin"; done
"$CUSTOS" ingest "$WORK/src"/f*.bin >/dev/null 2>&1
t_ok $? "$NITEMS items of $SIZE bytes ingested before custosd starts"
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" fx inbox "$IN" settle_seconds=1 release=delete
printf '[fixity]\nrate = 64K\nperiod = 10s\nenabled = yes\n' >>"$CONF"
LOG="$WORK/daemon.log"

# fixity_events: "seq time id outcome agent" of every fixity event, in ledger order.
fixity_events() {
	"$CUSTOS" log --json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["event"] == "fixity":
        print(e["seq"], e["time"], e["id"], e["outcome"], e["agent"]["name"])'
}
n_fixity() { fixity_events | grep -c .; }
fixity_at_least() { [ "$(n_fixity)" -ge "$1" ]; }

# items_checked N: N of the original items have a fixity event.
ORIG="$WORK/orig.ids"
"$CUSTOS" log --json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["event"] == "ingest": print(e["item"]["id"], e["item"]["sha256"])' >"$WORK/orig.sha"
cut -d' ' -f1 "$WORK/orig.sha" >"$ORIG"
items_checked() {
	[ "$(fixity_events | awk '{print $3}' | grep -Fxf "$ORIG" | sort -u | grep -c .)" -ge "$1" ]
}

# spread_ok FILE: the events listed in FILE (as fixity_events gives) are at
# least (count - 1) * SIZE / RATE seconds apart from first to last (ms
# rounding and a 10% margin for a step that ends early).
spread_ok() {
	python3 - "$1" "$SIZE" "$RATE" <<'EOF'
import sys, datetime
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
size, rate = int(sys.argv[2]), int(sys.argv[3])
t = [datetime.datetime.strptime(r[1], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for r in rows]
need = (len(t) - 1) * size / rate * 0.9
print("%d events over %.2f s, at the rate at least %.2f s" % (len(t), t[-1] - t[0], need))
sys.exit(0 if len(t) >= 2 and t[-1] - t[0] >= need else 1)
EOF
}

# ---- (a) the first run checks at the rate; (b) SIGKILL mid-pass ----
daemon_start "$CONF" "$LOG"
t_ok $? "custosd starts with [fixity] rate = 64K, period = 10s"
wait_until 300 fixity_at_least 5
t_ok $? "custosd checks the items that are due (5 fixity events)"
daemon_kill
fixity_events >"$WORK/run1.events"
K=$(grep -c . "$WORK/run1.events")
spread_ok "$WORK/run1.events" >"$WORK/spread1.out"
t_ok $? "(a) the checks of the first run keep to the rate: $(cat "$WORK/spread1.out")"
bad=$(awk '$4 != "ok" || $5 != "custosd"' "$WORK/run1.events" | grep -c .)
t_ok "$bad" "(a) each check is an event with outcome ok and agent custosd ($bad not)"
[ "$K" -lt $NITEMS ]
t_ok $? "(b) custosd was killed mid-pass ($K of $NITEMS items checked)"

# ---- (b) restart; (d) an inbox burst while the pass goes on ----
daemon_start "$CONF" "$LOG"
t_ok $? "custosd starts again after the SIGKILL"
: >"$WORK/sums"
for i in $(seq 1 30); do drop_file "$IN" "burst$i.bin" $((RANDOM * 4 + 1)) "$WORK/sums"; done
wait_until 300 inbox_empty "$IN"
t_ok $? "(d) a burst of 30 files dropped while fixity runs is all released"
missing=0
while read -r sha name; do
	"$CUSTOS" find --sha256 "$sha" 2>/dev/null | grep -q . || missing=$((missing + 1))
done <"$WORK/sums"
t_ok $missing "(d) ... and every one of them is in the store ($missing missing)"
wait_until 300 items_checked $NITEMS
t_ok $? "(b) every item is checked after the restart"
fixity_events | awk '{print $3}' | grep -Fxf "$ORIG" | head -n $NITEMS | sort -u >"$WORK/first.ids"
n=$(grep -c . "$WORK/first.ids")
[ "$n" -eq $NITEMS ]
t_ok $? "(b) the restart resumes: the first $NITEMS checks name $n different items"
fixity_events | tail -n +$((K + 1)) | head -n $((NITEMS - K)) >"$WORK/run2.events"
spread_ok "$WORK/run2.events" >"$WORK/spread2.out"
t_ok $? "(a) the checks after the restart keep to the rate: $(cat "$WORK/spread2.out")"
daemon_status >"$WORK/status.json"
python3 -c '
import json, sys
f = json.load(open(sys.argv[1]))["fixity"]
sys.exit(0 if f["enabled"] and f["checked"] >= 1 and f["damaged"] == [] and f["last_pass"] else 1)
' "$WORK/status.json"
t_ok $? "status shows fixity: enabled, checked, no damage, the latest check"

# ---- (c) a flipped byte is found within a period, and alerted ----
read -r VICTIM SHA < <(sed -n 5p "$WORK/orig.sha")
BLOB="$CUSTOS_STORE/objects/sha256/${SHA:0:2}/${SHA:2:2}/$SHA"
chmod u+w "$BLOB"
python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 0x01]))' "$BLOB"
chmod a-w "$BLOB"
wait_until 300 grep -q "fixity: item $VICTIM is DAMAGED: .*restore the blob" "$LOG"
t_ok $? "(c) the flipped byte is found on the schedule: an error in the log names the item and what to do"
damaged_in_status() {
	daemon_status | python3 -c '
import json, sys
sys.exit(0 if json.load(sys.stdin)["fixity"]["damaged"] == [sys.argv[1]] else 1)' "$VICTIM"
}
wait_until 60 damaged_in_status
t_ok $? "(c) custosd's status lists the item (and only it) under fixity.damaged"
"$CUSTOS" status >"$WORK/status.txt" 2>&1
t_grep "(c) custos status names the damaged item" "DAMAGED: item $VICTIM" "$WORK/status.txt"
wait_until 120 fixity_at_least $((NITEMS + 3))
t_ok $? "the schedule goes on after the damage"
daemon_stop
t_ok $DRC "SIGTERM stops custosd cleanly (exit 0)"
"$CUSTOS" log --json | python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["event"] == "fixity" and e["id"] == sys.argv[1]
      and e["outcome"] == "damaged"]
sys.exit(0 if ev and ev[0]["sha256"] == sys.argv[2] and ev[0]["found"]["sha256"] != sys.argv[2]
         else 1)' "$VICTIM" "$SHA"
t_ok $? "(c) the fixity event says damaged, with the recorded and the found SHA-256"

# ---- (d) no check while a file is in flight ----
# The window below only bounds how long a violation is looked for: custosd
# that pauses passes at any speed (a slow machine can only hide a violation).
GATE="$WORK/gate"
mkdir -p "$GATE"
DAEMON_BIN="$CUSTOSD_FP" daemon_start "$CONF" "$LOG" CUSTOS_REREAD_GATE="$GATE"
t_ok $? "custosd-failpoint starts with the re-read gate"
f0=$(n_fixity)
wait_until 120 fixity_at_least $((f0 + 1))
t_ok $? "the schedule runs again after the restart"
drop_file "$IN" held.bin 5000 "$WORK/sums"
wait_until 60 test -e "$GATE/1.at"
t_ok $? "(d) a file is in flight, held before its re-read"
f1=$(n_fixity)
wait_until 8 fixity_at_least $((f1 + 2))
f2=$(n_fixity)
[ $((f2 - f1)) -le 1 ]
t_ok $? "(d) no fixity check starts while a file is in flight ($((f2 - f1)) made)"
touch "$GATE/1.go"
wait_until 60 inbox_empty "$IN"
t_ok $? "(d) the held file is secured once let go"
wait_until 120 fixity_at_least $((f2 + 2))
t_ok $? "(d) and the schedule resumes"
daemon_stop
t_ok $DRC "SIGTERM stops custosd-failpoint cleanly (exit 0)"

# ---- the projection: custos fixity, rebuild, verify ----
"$CUSTOS" fixity --json --period 10s >"$WORK/fixity.before"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
it = {i["id"]: i for i in d["items"]}
sys.exit(0 if d["summary"]["damaged"] == [sys.argv[2]] and it[sys.argv[2]]["outcome"] == "damaged"
         and all(it[i]["last_checked"] for i in it if i in open(sys.argv[3]).read().split()) else 1)
' "$WORK/fixity.before" "$VICTIM" "$ORIG"
t_ok $? "custos fixity reports every item's last check and the damaged one"
"$CUSTOS" fixity --overdue --period 3650d >"$WORK/overdue.out"
t_grep "custos fixity --overdue lists nothing overdue with a long period" "^[0-9]+ item\(s\), .* 0 overdue" "$WORK/overdue.out"
"$CUSTOS" rebuild >/dev/null 2>&1
t_ok $? "custos rebuild"
"$CUSTOS" fixity --json --period 10s >"$WORK/fixity.after"
python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for d in (a, b):
    for i in d["items"]: i.pop("overdue")
    d["summary"].pop("overdue")
sys.exit(0 if a == b else 1)' "$WORK/fixity.before" "$WORK/fixity.after"
t_ok $? "the rebuilt catalog has the same fixity record of every item"
"$CUSTOS" verify >"$WORK/verify.out" 2>&1
t_grep "verify finds the damaged blob" "PROBLEM blob-damaged: .*$VICTIM" "$WORK/verify.out"
n=$(grep -c '^PROBLEM' "$WORK/verify.out")
[ "$n" -eq 1 ]
t_ok $? "... and nothing else: the catalog is the ledger's projection ($n problems)"
t_no_sanitizer "no sanitizer report in custosd's log" "$LOG"
t_done
