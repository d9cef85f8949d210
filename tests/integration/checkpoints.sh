#!/bin/bash
# The checkpoint journal (formats.md 4): checkpoints kept in checkpoints/journal
# with the newest at checkpoints/latest.
#   1. a store of the older layout (one file per checkpoint: the custos 0.1.0
#      vector store, and one made here and turned back into that layout) is
#      moved into the journal by the first writer: every valid checkpoint in
#      size order, latest byte for byte the newest file, no file left; verify
#      passes, also against a copy of the newest file kept outside; prove
#      still works. An invalid file is left in place and named by verify.
#   2. a crash at every point of that move (custos-failpoint): after each, a
#      read-only verify passes, the next writer completes the move, and the
#      store verifies with every checkpoint in the journal.
#   2b. a crash at every point of a signing (the append, its fdatasync, the
#      writing of latest): the same.
#   3. a torn tail of the journal (an append cut short) is not damage to
#      verify and is cut by the next writer; checkpoints/latest one behind the
#      journal (a crash between the two writes) is written again; a damaged
#      last entry, a journal cut short of latest, a journal removed: the
#      writer refuses to open and changes nothing.
#   4. signing checks the new tree against the newest checkpoint: a store
#      whose newest checkpoint signs a different history of the same events
#      refuses to sign, and says so.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_FP:?CUSTOS_FP must point at custos-failpoint}"
need_python3

CPJ="python3 $CUSTOS_SRC/tests/cpj.py"
IN="$WORK/in"
mkdir -p "$IN"
sizes() { $CPJ list "$1/checkpoints/journal" | cut -d' ' -f4 | tr '\n' ' '; }
per_file() { find "$1/checkpoints" -name '[0-9]*' | wc -l; }

# ---- 1. the custos 0.1.0 vector store ----
V="$WORK/v/store"
mkdir -p "$WORK/v"
tar -xzf "$CUSTOS_SRC/tests/vectors/stores/store-0.1.0.tar.gz" -C "$WORK/v"
export CUSTOS_STORE="$V"
NEWEST=$(ls "$V/checkpoints" | sort | tail -1)
cp "$V/checkpoints/$NEWEST" "$WORK/outside-0.1.0"
t_run "0.1.0 store: read-only verify before the move" "$CUSTOS" verify
t_run "0.1.0 store: a writer opens it (custos checkpoint)" "$CUSTOS" checkpoint
t_grep "... saying it moved 4 checkpoints into the journal" \
	'moved 4 checkpoint\(s\) from one file each into checkpoints/journal' "$WORK/last.err"
[ "$(sizes "$V")" = "0 1 2 3 " ] && [ "$(per_file "$V")" = 0 ] &&
	cmp -s "$V/checkpoints/latest" "$WORK/outside-0.1.0"
t_ok $? "... the journal holds sizes 0 1 2 3, no per-file checkpoint is left, latest is the newest file"
t_run "0.1.0 store: verify passes after the move" "$CUSTOS" verify
t_run "0.1.0 store: verify --checkpoint with the newest file kept outside" "$CUSTOS" verify \
	--checkpoint "$WORK/outside-0.1.0"
t_run "0.1.0 store: prove --case works" "$CUSTOS" prove --case X-2
t_run "0.1.0 store: a second writer's open changes nothing" "$CUSTOS" checkpoint
[ "$(sizes "$V")" = "0 1 2 3 " ]
t_ok $? "... the journal is as it was"

# ---- 1b. a store of this version turned back into the older layout ----
T="$WORK/tpl"
export CUSTOS_STORE="$T"
"$CUSTOS" init --station CPJ >/dev/null 2>&1
for i in 1 2 3 4 5; do
	head -c $((100 + i)) /dev/urandom >"$IN/f$i"
	"$CUSTOS" ingest "$IN/f$i" --case C-1 >/dev/null 2>&1
done
T_SIZES=$(sizes "$T")
$CPJ split "$T"
[ "$(per_file "$T")" = "$(echo "$T_SIZES" | wc -w)" ] && [ ! -e "$T/checkpoints/journal" ]
t_ok $? "a store of the older layout: $(per_file "$T") checkpoint files ($T_SIZES)"
cp "$T/checkpoints/$(ls "$T/checkpoints" | sort | tail -1)" "$WORK/outside-old"
O="$WORK/old"
cp -a "$T" "$O"
export CUSTOS_STORE="$O"
# a damaged file among them: not moved, left for verify to name
f="$O/checkpoints/00000000000000000002"
chmod u+w "$f" && printf 'x' >>"$f" && chmod 0444 "$f"
echo new >"$IN/new"
t_run "older layout: the first ingest moves the checkpoints" "$CUSTOS" ingest "$IN/new" --case C-1
t_grep "... and warns of the invalid file it left in place" \
	'checkpoints/00000000000000000002 is not a valid checkpoint of this store; left in place' \
	"$WORK/last.err"
want="$(echo "$T_SIZES" | sed 's/\b2 //')6 "
[ "$(sizes "$O")" = "$want" ] && [ "$(per_file "$O")" = 1 ]
t_ok $? "... the journal holds the valid ones and the new one ($(sizes "$O")), the damaged file stays"
t_status 1 "older layout: verify names the damaged file" "$CUSTOS" verify
t_grep "... by its name" '^PROBLEM checkpoint-invalid: checkpoints/00000000000000000002 is not a valid' \
	"$WORK/last.out"
t_status 1 "older layout: verify --checkpoint with the newest old file kept outside" "$CUSTOS" verify \
	--checkpoint "$WORK/outside-old" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(any(p["kind"] != "checkpoint-invalid" for p in j["problems"]))' \
	"$WORK/last.out"
t_ok $? "... no problem but the damaged file"

# ---- 2. a crash at every point of the move ----
export CUSTOS_STORE="$WORK/crash"
rm -rf "$CUSTOS_STORE" && cp -a "$T" "$CUSTOS_STORE"
CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" checkpoint >/dev/null 2>"$WORK/trace"
K=$(grep -c '^failpoint [0-9]' "$WORK/trace")
grep -q 'checkpoint-migrate-remove' "$WORK/trace"
t_ok $? "the move has $K crash points, the removal of the moved files among them"
bad=0
for ((k = 1; k <= K + 1; k++)); do
	rm -rf "$CUSTOS_STORE" && cp -a "$T" "$CUSTOS_STORE"
	CUSTOS_CRASH_AT=$k "$CUSTOS_FP" checkpoint >/dev/null 2>"$WORK/crash.err"
	rc=$?
	if [ $rc != 99 ] && [ $k -le "$K" ]; then
		echo "# crash at $k: exit $rc, not 99"
		bad=1
	fi
	if ! "$CUSTOS" verify >"$WORK/v.out" 2>&1; then
		echo "# crash at $k ($(grep '^failpoint' "$WORK/trace" | sed -n "${k}p")): read-only verify failed: $(head -3 "$WORK/v.out")"
		bad=1
	fi
	if ! "$CUSTOS" checkpoint >/dev/null 2>"$WORK/c.err" || ! "$CUSTOS" verify >"$WORK/v.out" 2>&1; then
		echo "# crash at $k: the next writer or verify failed: $(head -3 "$WORK/c.err" "$WORK/v.out")"
		bad=1
	fi
	if [ "$(sizes "$CUSTOS_STORE")" != "$T_SIZES" ] || [ "$(per_file "$CUSTOS_STORE")" != 0 ] ||
		[ "$(sed -n 2p "$CUSTOS_STORE/checkpoints/latest")" != "$(echo "$T_SIZES" | awk '{print $NF}')" ]; then
		echo "# crash at $k: journal '$(sizes "$CUSTOS_STORE")' (want '$T_SIZES'), $(per_file "$CUSTOS_STORE") files left"
		bad=1
	fi
done
t_ok $bad "a crash at each of the $K points of the move: verify passes, the next writer completes it"

# ---- 2b. a crash at every point of a signing ----
# From the "checkpoint" point of an ingest on: the append to the journal, its
# fdatasync, and the temp file, fsync, rename and directory fsync of latest.
export CUSTOS_STORE="$WORK/sign"
SB="$WORK/sign-base"
rm -rf "$SB" && cp -a "$T" "$SB" && CUSTOS_STORE="$SB" "$CUSTOS" checkpoint >/dev/null 2>&1
echo "signed at a crash" >"$IN/sig"
rm -rf "$CUSTOS_STORE" && cp -a "$SB" "$CUSTOS_STORE"
CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" ingest "$IN/sig" >/dev/null 2>"$WORK/strace"
first=$(grep '^failpoint [0-9]* checkpoint$' "$WORK/strace" | cut -d' ' -f2)
last=$(grep -c '^failpoint [0-9]' "$WORK/strace")
names=$(grep '^failpoint [0-9]' "$WORK/strace" | sed -n "${first:-1},\$p" | cut -d' ' -f3 | tr '\n' ' ')
case "$names" in
*checkpoint-append*checkpoint-fsync*checkpoint-latest*rename*) t_ok 0 "a signing's crash points: $names" ;;
*) t_ok 1 "a signing's crash points: '$names'" ;;
esac
bad=0
for ((k = ${first:-1}; k <= last; k++)); do
	rm -rf "$CUSTOS_STORE" && cp -a "$SB" "$CUSTOS_STORE"
	CUSTOS_CRASH_AT=$k "$CUSTOS_FP" ingest "$IN/sig" >/dev/null 2>&1
	[ $? = 99 ] || { echo "# signing crash at $k: no crash"; bad=1; }
	"$CUSTOS" verify >"$WORK/v.out" 2>&1 ||
		{ echo "# signing crash at $k: read-only verify failed: $(head -2 "$WORK/v.out")"; bad=1; }
	"$CUSTOS" checkpoint >"$WORK/c.out" 2>"$WORK/c.err" && "$CUSTOS" verify >"$WORK/v.out" 2>&1 ||
		{ echo "# signing crash at $k: recovery failed: $(head -2 "$WORK/c.err" "$WORK/v.out")"; bad=1; }
	n=$("$CUSTOS" log | wc -l)
	[ "$(sed -n 2p "$CUSTOS_STORE/checkpoints/latest")" = "$n" ] &&
		[ "$($CPJ list "$CUSTOS_STORE/checkpoints/journal" | tail -1 | cut -d' ' -f4)" = "$n" ] ||
		{ echo "# signing crash at $k: latest and the journal's newest do not cover the $n events"; bad=1; }
done
t_ok $bad "a crash at each point of a signing ($first..$last): verify passes, the next writer signs, latest = the journal's newest"

# ---- 3. a torn tail; latest one behind ----
export CUSTOS_STORE="$WORK/torn"
rm -rf "$CUSTOS_STORE" && cp -a "$T" "$CUSTOS_STORE"
"$CUSTOS" checkpoint >/dev/null 2>&1
J="$CUSTOS_STORE/checkpoints/journal"
len=$(stat -c %s "$J")
python3 -c 'import sys; open(sys.argv[1], "ab").write(b"\x00\x00\x00\xa3custos/CPJ\n7\n")' "$J"
t_run "a torn journal tail: read-only verify passes (an append never acknowledged)" "$CUSTOS" verify
t_run "... the next writer opens" "$CUSTOS" checkpoint
t_grep "... cutting the torn tail" 'cut a torn tail of 17 byte\(s\) from checkpoints/journal' \
	"$WORK/last.err"
[ "$(stat -c %s "$J")" = "$len" ]
t_ok $? "... back to its length before"
# latest one behind: the journal's newest entry cut off latest's copy
cp "$CUSTOS_STORE/checkpoints/latest" "$WORK/latest-5"
echo more >"$IN/more"
"$CUSTOS" ingest "$IN/more" --case C-1 >/dev/null 2>&1
chmod u+w "$CUSTOS_STORE/checkpoints/latest"
cp "$WORK/latest-5" "$CUSTOS_STORE/checkpoints/latest"
t_run "latest one behind the journal: verify passes" "$CUSTOS" verify
t_run "... the next writer's open" "$CUSTOS" checkpoint
[ "$(sed -n 2p "$CUSTOS_STORE/checkpoints/latest")" = "$(sizes "$CUSTOS_STORE" | awk '{print $NF}')" ]
t_ok $? "... writes latest again from the journal's newest"
# a damaged last entry (not a torn one) is never cut: the writer refuses
python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[-50]^=1; open(p,"wb").write(d)' "$J"
len=$(stat -c %s "$J")
t_status 3 "a damaged last journal entry: the writer refuses to open" "$CUSTOS" ingest "$IN/f1"
t_grep "... saying it is damaged and not a torn tail" \
	'the last entry of checkpoints/journal is damaged and is not a torn tail' "$WORK/last.err"
[ "$(stat -c %s "$J")" = "$len" ]
t_ok $? "... and cut nothing"
t_status 1 "... verify names the entry" "$CUSTOS" verify
t_grep "... by its position" '^PROBLEM checkpoint-damaged: checkpoints/journal entry [0-9]+ \(offset' \
	"$WORK/last.out"

# the journal's newest entry cut off, latest kept: the journal was cut
export CUSTOS_STORE="$WORK/cut"
rm -rf "$CUSTOS_STORE" && cp -a "$T" "$CUSTOS_STORE"
"$CUSTOS" checkpoint >/dev/null 2>&1
J="$CUSTOS_STORE/checkpoints/journal"
truncate -s "$($CPJ list "$J" | tail -1 | cut -d' ' -f2)" "$J"
len=$(stat -c %s "$J")
t_status 3 "the journal's newest entry cut off (latest kept): the writer refuses to open" \
	"$CUSTOS" ingest "$IN/f1"
t_grep "... saying the journal was cut" \
	'checkpoints/latest covers [0-9]+ events but the newest valid checkpoint in checkpoints/journal does not' \
	"$WORK/last.err"
[ "$(stat -c %s "$J")" = "$len" ]
t_ok $? "... and appended nothing"
rm -f "$J"
t_status 3 "the journal removed (latest kept): the writer refuses to open" "$CUSTOS" ingest "$IN/f1"
t_grep "... saying it was removed" 'checkpoints/latest is there but checkpoints/journal is missing' \
	"$WORK/last.err"
[ ! -e "$J" ]
t_ok $? "... and made no new journal"

# ---- 4. the newest checkpoint signs another history: signing refuses ----
A="$WORK/fork-a"
B="$WORK/fork-b"
rm -rf "$A" "$B"
cp -a "$T" "$A"
cp -a "$T" "$B"
head -c 300 /dev/urandom >"$IN/a1"
head -c 300 /dev/urandom >"$IN/b1"
CUSTOS_STORE="$A" "$CUSTOS" ingest "$IN/a1" --case C-1 >/dev/null 2>&1
CUSTOS_STORE="$B" "$CUSTOS" ingest "$IN/b1" --case C-1 >/dev/null 2>&1
rm -rf "$B/checkpoints"
cp -a "$A/checkpoints" "$B/checkpoints"
export CUSTOS_STORE="$B"
t_status 1 "a store whose newest checkpoint signs another history of as many events: checkpoint refuses" \
	"$CUSTOS" checkpoint
t_grep "... saying the checkpoint does not match the ledger" \
	'checkpoints/latest does not match the ledger; refusing to sign' "$WORK/last.err"
echo grows >"$IN/grows"
"$CUSTOS" ingest "$IN/grows" --case C-1 >/dev/null 2>"$WORK/grow.err"
n=$($CPJ list "$B/checkpoints/journal" | wc -l)
[ "$n" = "$($CPJ list "$A/checkpoints/journal" | wc -l)" ] && grep -q 'does not match the ledger' "$WORK/grow.err"
t_ok $? "... and after the ledger grew, no checkpoint is signed either"

t_done
