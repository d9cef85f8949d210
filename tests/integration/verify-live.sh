#!/bin/bash
# custos verify while custosd is securing files (DESIGN: verify is what an
# archivist runs to prove the store; a false alarm on a healthy store is as
# bad as a miss). custosd takes 400 files of 0-96 KB while `custos verify`
# runs again and again on the same store; every run must exit 0 and say the
# store is intact (the catalog it reads and the ledger it replays are one
# snapshot; entries the writer appends meanwhile are not damage). At the end,
# with custosd stopped, verify passes and holds every file.
# Environment: CUSTOS, CUSTOSD.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at custosd}"
S="$CUSTOS_STORE"
IN="$WORK/inbox"
mkdir -p "$IN"
daemon_conf "$WORK/custosd.conf" LIVE inbox "$IN" settle_seconds=0 rescan_seconds=1 \
	concurrency=2 release=delete
daemon_start "$WORK/custosd.conf" "$WORK/custosd.log"
t_ok $? "custosd starts"
trap 'daemon_kill; t_cleanup' EXIT

N=400
(
	for i in $(seq 1 $N); do
		head -c $((RANDOM * 3)) /dev/urandom >"$IN/.f$i"
		mv "$IN/.f$i" "$IN/f$i"
	done
	touch "$WORK/all-dropped"
) &
WRITER=$!
runs=0 bad=0
while [ ! -e "$WORK/all-dropped" ] || [ -n "$(ls -A "$IN")" ]; do
	runs=$((runs + 1))
	if ! "$CUSTOS" verify --store "$S" >"$WORK/verify.out" 2>&1 ||
		! grep -q '^all intact' "$WORK/verify.out"; then
		bad=$((bad + 1))
		[ $bad -le 3 ] && sed 's/^/#   /' "$WORK/verify.out" | head -5
	fi
	[ $runs -ge 2000 ] && break
done
wait $WRITER
events=$("$CUSTOS" log --store "$S" | wc -l)
echo "# $runs verify runs while custosd secured $events files"
t_ok $([ $runs -ge 5 ] && echo 0 || echo 1) "verify ran at least 5 times during the ingest ($runs)"
t_ok $bad "every verify during the ingest says the store is intact ($bad of $runs did not)"
daemon_stop
t_ok $DRC "custosd stops cleanly"
t_run "verify passes with custosd stopped" "$CUSTOS" verify --store "$S"
events=$("$CUSTOS" log --store "$S" | wc -l)
t_ok $([ "$events" -eq $N ] && echo 0 || echo 1) "the ledger holds all $N files ($events)"
t_done
