#!/bin/bash
# Wall-clock jumps of years, forward and back (libfaketime, Debian package
# faketime): files are ingested with the clock 5 years ahead, then 5 years
# behind, then right, both by `custos ingest` and by custosd from its inbox,
# each in its own process (so the clamp must come from the store, not from
# process memory). Then:
#   - the events' "time" fields never go backwards in ledger order (custos
#     stamps an event with the later of the wall clock and the last event's
#     time), and an item's "ingested_at" is its ingest event's time;
#   - custos verify passes, the checkpoints are consistent (custos checkpoint
#     signs on top of them, verify re-checks every signed root), and an
#     inclusion proof made after the jumps checks out with the verifier key;
#   - nothing is purged early: retention (purge) does not exist yet, so there
#     is nothing to purge and every blob is still there. When it comes, it must
#     not take the wall clock's word alone: this test is where to check that a
#     clock 5 years ahead purges nothing.
# Only the wall clock is faked (FAKETIME_DONT_FAKE_MONOTONIC=1): custosd's
# settle timers run on the monotonic clock, which does not jump.
. "$(dirname "$0")/../integration/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"

# libfaketime itself is preloaded (not the faketime wrapper, which would stand
# between this script and custosd's pid); the MT build, for custosd's threads.
FTLIB=
for d in /usr/lib/*/faketime /usr/lib/faketime /usr/local/lib/faketime; do
	[ -r "$d/libfaketimeMT.so.1" ] && FTLIB="$d/libfaketimeMT.so.1" && break
done
if [ -z "$FTLIB" ]; then
	echo "1..0 # SKIP libfaketime is not installed (Debian package faketime)"
	exit 77
fi
export FAKETIME_DONT_FAKE_MONOTONIC=1
# libfaketime is preloaded ahead of libasan in the sanitizer build.
asan_allow_preload
T0=$(date +%s)
RUNS=0

IN="$WORK/in"
INBOX="$WORK/inbox"
mkdir -p "$IN" "$INBOX"
for f in cli-ahead daemon-ahead cli-behind daemon-behind cli-now daemon-now live-ahead live-behind live-now; do
	head -c $((1000 + RANDOM)) /dev/urandom >"$IN/$f.bin"
done
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" CLK inbox "$INBOX" settle_seconds=1 rescan_seconds=1

# under OFFSET CMD...: runs CMD with the wall clock moved by OFFSET ('' = real time).
under() {
	local off=$1
	shift
	if [ -n "$off" ]; then
		FAKETIME="$off" LD_PRELOAD="$FTLIB${LD_PRELOAD:+:$LD_PRELOAD}" "$@"
	else
		"$@"
	fi
}
# daemon_round OFFSET FILE: custosd under OFFSET takes FILE from its inbox, then stops.
daemon_round() {
	local off=$1 f=$2 before env=()
	before=$(n_events)
	# not through under(): DPID must be custosd's own pid
	[ -z "$off" ] || env=(FAKETIME="$off" LD_PRELOAD="$FTLIB${LD_PRELOAD:+:$LD_PRELOAD}")
	daemon_start "$CONF" "$WORK/daemon.log" "${env[@]}"
	cp "$IN/$f" "$INBOX/$f"
	wait_until 30 events_at_least $((before + 1))
	daemon_stop
	return $DRC
}

clock_cleanup() {
	local s=$?
	daemon_running && kill -TERM "$DPID"
	(exit $s)
	t_cleanup
}
trap clock_cleanup EXIT

"$CUSTOS" init --station CLK >/dev/null
t_ok $? "a new store (real time)"

under '+5y' "$CUSTOS" ingest "$IN/cli-ahead.bin" --case C-1 >/dev/null
t_ok $? "custos ingest with the clock 5 years ahead"
daemon_round '+5y' daemon-ahead.bin
t_ok $? "custosd with the clock 5 years ahead takes a file and stops cleanly"
under '-5y' "$CUSTOS" ingest "$IN/cli-behind.bin" --case C-1 >/dev/null
t_ok $? "custos ingest with the clock 5 years behind"
daemon_round '-5y' daemon-behind.bin
t_ok $? "custosd with the clock 5 years behind takes a file and stops cleanly"
"$CUSTOS" ingest "$IN/cli-now.bin" --case C-1 >/dev/null
t_ok $? "custos ingest with the clock right"
daemon_round '' daemon-now.bin
t_ok $? "custosd with the clock right takes a file and stops cleanly"
# One custosd run whose clock jumps while it runs: libfaketime re-reads its
# offset from a file (FAKETIME_TIMESTAMP_FILE, no caching).
FTFILE="$WORK/faketime"
echo '+5y' >"$FTFILE"
daemon_start "$CONF" "$WORK/daemon.log" FAKETIME_TIMESTAMP_FILE="$FTFILE" FAKETIME_NO_CACHE=1 \
	LD_PRELOAD="$FTLIB${LD_PRELOAD:+:$LD_PRELOAD}"
live_ok=0
for step in "+5y live-ahead.bin" "-5y live-behind.bin" "+0 live-now.bin"; do
	set -- $step
	before=$(n_events)
	echo "$1" >"$FTFILE"
	sleep 0.3
	cp "$IN/$2" "$INBOX/$2"
	wait_until 30 events_at_least $((before + 1)) || live_ok=1
done
daemon_stop && [ "$DRC" -eq 0 ] || live_ok=1
t_ok $live_ok "one custosd run, its clock jumping +5y, -5y, back while it runs: 3 files taken, clean stop"
RUNS=9

"$CUSTOS" log --json >"$WORK/log.json"
python3 - "$WORK/log.json" <<'EOF'
import datetime, json, sys
evs = json.load(open(sys.argv[1]))
bad = []
if len(evs) != 9:
    bad.append('%d events, not 9' % len(evs))
last = ''
for i, e in enumerate(evs):
    t = e.get('time', '')
    print('#   event %d %-8s %s %s' % (i, e.get('event'), t, (e.get('item') or {}).get('name', '')))
    if t < last:
        bad.append('event %d at %s is before event %d at %s' % (i, t, i - 1, last))
    last = max(last, t)
    it = e.get('item') or {}
    if e.get('event') == 'ingest' and it.get('ingested_at') != t:
        bad.append('event %d: ingested_at %s is not the event time %s' % (i, it.get('ingested_at'), t))
# the first event was stamped ~5 years ahead; every later one keeps that time or a later one
year = datetime.datetime.now(datetime.timezone.utc).year
if evs and not evs[0].get('time', '').startswith(str(year + 5)):
    bad.append('the first event (clock 5 years ahead) is stamped %s' % evs[0].get('time'))
for b in bad:
    print('#   ' + b)
sys.exit(1 if bad else 0)
EOF
t_ok $? "ledger times never go backwards across processes, CLI and custosd, clock ahead and behind"

python3 -c 'import json,sys; evs=json.load(open(sys.argv[1])); sys.exit(not all(e.get("seq")==i for i,e in enumerate(evs)))' "$WORK/log.json"
t_ok $? "ledger positions are in order (seq 0..8)"
t_run "custos verify passes (every signed root re-checked)" "$CUSTOS" verify
under '-5y' "$CUSTOS" checkpoint >"$WORK/cp.txt" 2>"$WORK/cp.err"
t_ok $? "custos checkpoint with the clock 5 years behind signs on top of the earlier ones"
t_grep "... a checkpoint of all 9 events" '^9$' "$WORK/cp.txt"
python3 "$CUSTOS_SRC/tests/cpj.py" list "$CUSTOS_STORE/checkpoints/journal" | tail -1 | cut -d' ' -f4 >"$WORK/cps.txt"
t_grep "the checkpoint journal's newest is for size 9" '^9$' "$WORK/cps.txt"
ID=$("$CUSTOS" find --case C-1 --json | python3 -c 'import json,sys; print(sorted(r["id"] for r in json.load(sys.stdin))[0])')
"$CUSTOS" prove "$ID" >"$WORK/proof.txt" && "$CUSTOS" pubkey >"$WORK/vkey.txt"
t_ok $? "an inclusion proof after the jumps"
under '+5y' "$CUSTOS" check-proof "$WORK/proof.txt" --key "$(cat "$WORK/vkey.txt")" >/dev/null
t_ok $? "... checks out with the verifier key (clock 5 years ahead)"
# Retention does not exist yet: nothing can be purged, early or not.
n=$(find "$CUSTOS_STORE/objects/sha256" -type f | wc -l)
[ "$n" = 9 ] && [ ! -d "$CUSTOS_STORE/orphans" ]
t_ok $? "nothing purged: all 9 blobs in place (retention does not exist yet)"
[ -s "$WORK/daemon.log" ] && grep -Eiq 'error|fail' "$WORK/daemon.log" && sed 's/^/#   daemon: /' "$WORK/daemon.log" | head -20

echo "# clock: runs $RUNS, failures $T_FAILED ($(($(date +%s) - T0)) s)"
t_done
