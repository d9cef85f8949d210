#!/bin/bash
# The re-read before release (DESIGN invariant 3), held by a test: a source
# whose bytes change between its copy and its re-read, keeping its size and
# its mtime (so that nothing but the bytes tells), is never released on the
# copy that no longer matches it. custosd's failpoint build holds each file
# between the copy and the re-read (CUSTOS_REREAD_GATE) while the test
# changes the source in place and puts its mtime back.
#   1. an upload directory with release = delete: the log says the file
#      changed; while it is taken again the source is still in the inbox
#      with its new bytes and no job of it is released; then the new bytes
#      are secured (their ingest, and the release, name the new digest), the
#      source is deleted only then, and no release names the first copy.
#   2. a docked recorder: the same, and no CUSTOS-RECEIPT.json is written
#      while the file is changed; the receipt written after lists the new
#      digest only, and custos check-receipt accepts it.
#   3. custos ingest: a file changed before its re-read is refused.
#   4. re-reads overlap the copies: with concurrency = 2, four files of a
#      recorder are all held before their re-reads at once (the next files
#      are copied while earlier ones wait to be re-read); one of them is
#      then changed in place. Every file still passes its re-read, the
#      changed one is caught, not released, and taken again; the receipt
#      lists the other three as copied and the changed one's new bytes.
# The first copy stays stored as an item of its own (its ingest is durable).
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD_FP:?CUSTOSD_FP must point at the failpoint build of custosd}"
asan_allow_preload
need_python3
DAEMON_BIN=$CUSTOSD_FP
WORK=$(realpath "$WORK")
on_exit() {
	local st=$?
	daemon_kill
	(exit $st)
	t_cleanup
}
trap on_exit EXIT

# jobs_state STATE: the number of custosd's jobs in STATE (status "jobs").
jobs_state() {
	daemon_status | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"].get(sys.argv[1], 0))' "$1"
}

# change_in_place FILE: other bytes in FILE (the same size), its mtime put
# back to the nanosecond; NEW_SHA is the new digest.
change_in_place() {
	local before after
	NEW_SHA=none
	[ -f "$1" ] || { fail "$1 was gone before its re-read"; return; }
	touch -r "$1" "$WORK/mtime.ref"
	before=$(stat -c '%s %y %i' "$1")
	head -c 4096 /dev/urandom | dd of="$1" bs=4096 seek=3 conv=notrunc status=none
	touch -m -r "$WORK/mtime.ref" "$1"
	after=$(stat -c '%s %y %i' "$1")
	[ "$before" = "$after" ] || fail "the change did not keep size, mtime and inode: $before / $after"
	NEW_SHA=$(digest "$1")
}

# gate_reached N: the N-th file custosd holds before its re-read; GATE_LINE
# is "path digest-copied".
gate_reached() {
	wait_until 60 test -e "$GATE/$1.at" || return 1
	GATE_LINE=$(cat "$GATE/$1.at")
}

# ingested_digests: the digests of the ledger's ingest events, in order.
ingested_digests() {
	"$CUSTOS" log --json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["event"] == "ingest":
        print(e["item"]["sha256"])'
}

# ---------------------------------------------- 1. upload directory, delete
IN="$WORK/inbox"
GATE="$WORK/gate1"
LOG="$WORK/inbox.log"
mkdir -p "$IN" "$GATE"
CONF="$WORK/inbox.conf"
daemon_conf "$CONF" REREAD inbox "$IN" settle_seconds=1 rescan_seconds=1 concurrency=1 release=delete
daemon_start "$CONF" "$LOG" CUSTOS_REREAD_GATE="$GATE" || fail "custosd did not start"
F="$IN/clip.mp4"
head -c 100000 /dev/urandom >"$WORK/clip"
touch -d '2026-11-28 08:30:01.123456789' "$WORK/clip"
OLD_SHA=$(digest "$WORK/clip")
mv "$WORK/clip" "$F"
if gate_reached 1; then
	[ "$GATE_LINE" = "$F $OLD_SHA" ] || fail "custosd held '$GATE_LINE', expected the file and its first digest"
	change_in_place "$F"
	touch "$GATE/1.go"
	wait_until 60 grep -q "$F changed while it was being read" "$LOG" ||
		fail "the log does not say that $F changed: $(tail -3 "$LOG" | tr '\n' ' ')"
	if gate_reached 2; then
		[ "$GATE_LINE" = "$F $NEW_SHA" ] || fail "taken again, custosd copied '$GATE_LINE', expected the new digest"
		[ -f "$F" ] && [ "$(digest "$F")" = "$NEW_SHA" ] ||
			fail "the changed source did not stay in the inbox (release = delete)"
		n=$(jobs_state released)
		[ "$n" = 0 ] || fail "$n job(s) released while the file was being taken again"
		touch "$GATE/2.go"
	else
		fail "the changed file was not taken again (or never held again): $(ls "$GATE" | tr '\n' ' ')"
	fi
else
	fail "custosd did not hold the file before its re-read"
fi
wait_until 60 test ! -e "$F" || fail "the file was not released once its new bytes were secured"
wait_until 30 daemon_idle
[ "$(jobs_state released)" = 1 ] || fail "the file's job is not released at the end"
grep -q "secured $F as .* sha256 $NEW_SHA" "$LOG" || fail "no release names the new digest"
! grep -q "secured $F .* sha256 $OLD_SHA" "$LOG" || fail "a release names the first copy"
[ "$(ingested_digests | tr '\n' ' ')" = "$OLD_SHA $NEW_SHA " ] ||
	fail "the ledger's ingests are not the first copy then the new bytes: $(ingested_digests | tr '\n' ' ')"
daemon_stop || fail "custosd did not stop"
[ "$DRC" -eq 0 ] || fail "custosd exited $DRC"
run_verify "upload directory"
t_no_sanitizer "no sanitizer report (upload directory)" "$LOG"
REPORT_EXTRA=$LOG report "upload directory, release = delete: bytes changed before the re-read (same size and mtime): kept, logged, not released; the new bytes secured and released"

# ---------------------------------------------------- 2. a docked recorder
export CUSTOS_STORE="$WORK/store2"
DOCKS="$WORK/docks"
GATE="$WORK/gate2"
LOG="$WORK/dock.log"
mkdir -p "$DOCKS" "$WORK/stage/REC1/DCIM" "$GATE"
CONF="$WORK/dock.conf"
daemon_conf "$CONF" REREAD2 docks "$DOCKS" settle_seconds=1 rescan_seconds=1 concurrency=1
daemon_start "$CONF" "$LOG" CUSTOS_REREAD_GATE="$GATE" || fail "custosd did not start on the dock root"
printf '{"device_id": "BWC-R", "officer_id": "OF007", "clock": "%s"}\n' "$(date -Is)" \
	>"$WORK/stage/REC1/DEVICE.json"
NAME=DCIM/BWC-R_OF007_20261128083001_0001.mp4
head -c 100000 /dev/urandom >"$WORK/stage/REC1/$NAME"
touch -d '2026-11-28 08:30:01' "$WORK/stage/REC1/$NAME"
OLD_SHA=$(digest "$WORK/stage/REC1/$NAME")
mv "$WORK/stage/REC1" "$DOCKS/"
R="$DOCKS/REC1"
RC="$R/CUSTOS-RECEIPT.json"
if gate_reached 1; then
	[ "${GATE_LINE##* }" = "$OLD_SHA" ] || fail "custosd held '$GATE_LINE', expected the first digest"
	change_in_place "$R/$NAME"
	touch "$GATE/1.go"
	wait_until 60 grep -q "$R/$NAME changed while it was being read" "$LOG" ||
		fail "the log does not say that $NAME changed: $(tail -3 "$LOG" | tr '\n' ' ')"
	[ ! -e "$RC" ] || fail "a receipt was written although the file changed"
	if gate_reached 2; then
		[ "${GATE_LINE##* }" = "$NEW_SHA" ] || fail "taken again, custosd copied '$GATE_LINE', expected the new digest"
		[ ! -e "$RC" ] || fail "a receipt was written while the changed file was being taken again"
		n=$(jobs_state released)
		[ "$n" = 0 ] || fail "$n job(s) released while the file was being taken again"
		touch "$GATE/2.go"
	else
		fail "the changed file was not taken again (or never held again): $(ls "$GATE" | tr '\n' ' ')"
	fi
else
	fail "custosd did not hold the recorder's file before its re-read"
fi
wait_until 60 test -e "$RC" || fail "no receipt once the new bytes were secured"
if [ -e "$RC" ]; then
	"$CUSTOS" check-receipt "$RC" --key "$("$CUSTOS" pubkey)" >"$WORK/check.out" 2>&1 || fail "custos check-receipt refuses the receipt: $(head -3 "$WORK/check.out" | tr '\n' ' ')"
	python3 -c '
import sys
t = open(sys.argv[1], encoding="utf-8").read().partition("\n\n")[0]
import json
r = json.loads(t)
sys.exit(not ([(f["name"], f["sha256"]) for f in r["files"]] == [(sys.argv[2], sys.argv[3])]))' \
		"$RC" "$NAME" "$NEW_SHA" || fail "the receipt does not list exactly the new digest: $(head -c 600 "$RC" | tr '\n' ' ')"
fi
[ -f "$R/$NAME" ] && [ "$(digest "$R/$NAME")" = "$NEW_SHA" ] || fail "the recorder's file was not left as it is"
! grep -q "secured $R/$NAME .* sha256 $OLD_SHA" "$LOG" || fail "a release names the first copy"
[ "$(ingested_digests | tr '\n' ' ')" = "$OLD_SHA $NEW_SHA " ] ||
	fail "the ledger's ingests are not the first copy then the new bytes: $(ingested_digests | tr '\n' ' ')"
daemon_stop || fail "custosd did not stop"
[ "$DRC" -eq 0 ] || fail "custosd exited $DRC"
run_verify "docked recorder"
t_no_sanitizer "no sanitizer report (docked recorder)" "$LOG"
REPORT_EXTRA=$LOG report "docked recorder: bytes changed before the re-read (same size and mtime): no receipt while changed; the receipt after lists only the new digest"
# ----------------------------------------------------- 3. custos ingest (CLI)
# The same rule holds for `custos ingest` (lib's one secure transaction):
# of two files, the one changed between its copy and its re-read is refused
# (exit 2, the message says it changed after it was copied), the other is
# secured; only the secured one is printed.
: "${CUSTOS_FP:?CUSTOS_FP must point at the failpoint build of custos}"
export CUSTOS_STORE="$WORK/store3"
"$CUSTOS" init --station REREAD3 >/dev/null || fail "custos init failed"
GATE="$WORK/gate3"
mkdir -p "$GATE" "$WORK/cli"
A="$WORK/cli/a.mp4"
B="$WORK/cli/b.mp4"
head -c 100000 /dev/urandom >"$A"
head -c 100000 /dev/urandom >"$B"
A_SHA=$(digest "$A")
B_OLD=$(digest "$B")
CUSTOS_REREAD_GATE="$GATE" "$CUSTOS_FP" ingest "$A" "$B" >"$WORK/cli.out" 2>"$WORK/cli.err" &
CPID=$!
if gate_reached 1; then
	[ "$GATE_LINE" = "$A $A_SHA" ] || fail "custos held '$GATE_LINE', expected a.mp4 and its digest"
	touch "$GATE/1.go"
	if gate_reached 2; then
		[ "$GATE_LINE" = "$B $B_OLD" ] || fail "custos held '$GATE_LINE', expected b.mp4 and its digest"
		change_in_place "$B"
		touch "$GATE/2.go"
	else
		fail "custos did not hold b.mp4 before its re-read"
	fi
else
	fail "custos did not hold a.mp4 before its re-read"
	touch "$GATE/1.go" "$GATE/2.go"
fi
wait "$CPID"
rc=$?
[ "$rc" = 2 ] || fail "custos ingest exited $rc, expected 2 (a file was refused)"
grep -q "refused '.*b.mp4': it changed after it was copied" "$WORK/cli.err" ||
	fail "the message does not say that b.mp4 changed: $(head -3 "$WORK/cli.err" | tr '\n' ' ')"
grep -q "$A_SHA" "$WORK/cli.out" || fail "a.mp4 is not reported secured: $(tr '\n' ' ' <"$WORK/cli.out")"
! grep -q "b.mp4" "$WORK/cli.out" || fail "b.mp4 is reported secured although it changed"
run_verify "custos ingest"
report "custos ingest: a file whose bytes changed before the re-read is refused, not called secured; the other is secured"
# ------------------------------------- 4. re-reads overlapping the copies
export CUSTOS_STORE="$WORK/store4"
DOCKS="$WORK/docks4"
GATE="$WORK/gate4"
LOG="$WORK/overlap.log"
mkdir -p "$DOCKS" "$WORK/stage4/REC4/DCIM" "$GATE"
CONF="$WORK/overlap.conf"
daemon_conf "$CONF" REREAD4 docks "$DOCKS" settle_seconds=1 rescan_seconds=1 concurrency=2
daemon_start "$CONF" "$LOG" CUSTOS_REREAD_GATE="$GATE" || fail "custosd did not start (overlap)"
printf '{"device_id": "BWC-O", "officer_id": "OF007", "clock": "%s"}\n' "$(date -Is)" \
	>"$WORK/stage4/REC4/DEVICE.json"
declare -A SHA4
for i in 1 2 3 4; do
	N4="DCIM/BWC-O_OF007_2026112808300${i}_000${i}.mp4"
	head -c $((100000 + i)) /dev/urandom >"$WORK/stage4/REC4/$N4"
	touch -d "2026-11-28 08:30:0$i" "$WORK/stage4/REC4/$N4"
	SHA4[$N4]=$(digest "$WORK/stage4/REC4/$N4")
done
mv "$WORK/stage4/REC4" "$DOCKS/"
R="$DOCKS/REC4"
RC="$R/CUSTOS-RECEIPT.json"
held=0
for i in 1 2 3 4; do
	gate_reached "$i" || break
	held=$i
done
if [ "$held" = 4 ]; then
	[ "$(jobs_state released)" = 0 ] || fail "a file was released before its re-read"
	[ ! -e "$RC" ] || fail "a receipt was written before the re-reads"
	# Every file of the four is held once, each with the digest of its copy.
	for i in 1 2 3 4; do
		line=$(cat "$GATE/$i.at")
		n=${line% *}
		n=${n#"$R/"}
		[ "${SHA4[$n]:-}" = "${line##* }" ] || fail "gate $i held '$line', not a file of the recorder with its digest"
		echo "$n"
	done | sort -u | wc -l | grep -qx 4 || fail "the four held files are not the recorder's four files"
	line=$(cat "$GATE/2.at")
	CH=${line% *}
	OLD_SHA=${line##* }
	change_in_place "$CH"
	touch "$GATE/1.go" "$GATE/2.go" "$GATE/3.go" "$GATE/4.go"
	wait_until 60 grep -q "$CH changed while it was being read" "$LOG" ||
		fail "the log does not say that $CH changed: $(tail -3 "$LOG" | tr '\n' ' ')"
	if gate_reached 5; then
		[ "$GATE_LINE" = "$CH $NEW_SHA" ] || fail "taken again, custosd copied '$GATE_LINE', expected $CH and its new digest"
		[ ! -e "$RC" ] || fail "a receipt was written while the changed file was being taken again"
		touch "$GATE/5.go"
	else
		fail "the changed file was not taken again"
	fi
else
	fail "with concurrency = 2, only $held file(s) were held before their re-reads at once, not 4: re-reads do not overlap the copies"
	for i in 1 2 3 4 5 6 7 8; do touch "$GATE/$i.go"; done
	CH=none
fi
wait_until 60 test -e "$RC" || fail "no receipt after the overlapped re-reads"
if [ -e "$RC" ] && [ "$CH" != none ]; then
	SHA4[${CH#"$R/"}]=$NEW_SHA
	want=$(for n in "${!SHA4[@]}"; do echo "$n ${SHA4[$n]}"; done | sort)
	got=$(python3 -c '
import json, sys
r = json.loads(open(sys.argv[1], encoding="utf-8").read().partition("\n\n")[0])
for f in r["files"]:
    print(f["name"], f["sha256"])' "$RC" | sort)
	[ "$got" = "$want" ] || fail "the receipt does not list the three files as copied and the changed one's new bytes: $got"
	! grep -q "secured $CH .* sha256 $OLD_SHA" "$LOG" || fail "a release names the changed file's first copy"
	[ "$(jobs_state released)" = 4 ] || fail "not every file's job is released at the end"
fi
daemon_stop || fail "custosd did not stop (overlap)"
[ "$DRC" -eq 0 ] || fail "custosd exited $DRC"
run_verify "overlapped re-reads"
t_no_sanitizer "no sanitizer report (overlap)" "$LOG"
REPORT_EXTRA=$LOG report "re-reads overlap the copies (4 files held at once with concurrency 2); every file re-read, the changed one caught and taken again, the receipt lists the new bytes"
t_done
