#!/bin/bash
# Rebuild: the catalog is made again from the ledger alone and answers every
# query byte for byte as before; rebuilding a present catalog changes nothing.
. "$(dirname "$0")/lib.sh"

C1='平司罚〔2020〕1号'
C2='平司检〔2021〕7号'
IN="$WORK/in"
mkdir -p "$IN"

py() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r, ensure_ascii=False))' "$1"
}

t_run "init" "$CUSTOS" init --station rb
for i in 1 2 3 4 5; do head -c $((i * 40000 + i)) /dev/urandom >"$IN/f$i.bin"; done
: >"$IN/empty"
cp "$IN/f2.bin" "$IN/f2-copy.bin"
t_run "ingest case 1" "$CUSTOS" ingest "$IN/f1.bin" "$IN/f2.bin" "$IN/empty" --case "$C1" \
	--category 行政处罚 --stage 立案 --officer A01 --officer A02 --device BWC-1 \
	--recorded-at 2026-03-01T09:00:00+08:00 --recorded-end 2026-03-01T09:30:00+08:00
t_run "ingest case 2" "$CUSTOS" ingest "$IN/f3.bin" "$IN/f4.bin" --case "$C2" --category 行政检查 \
	--stage investigation --officer B07 --device BWC-2 --recorded-at 2026-04-02T14:00:00Z
t_run "a sighting of f2 under case 2" "$CUSTOS" ingest "$IN/f2-copy.bin" --case "$C2" --officer B07
t_run "a file with no optional metadata" "$CUSTOS" ingest "$IN/f5.bin" --case "$C1"
EVENTS=7

"$CUSTOS" find --case "$C1" --json | py '" ".join(r["id"] for r in j)' >"$WORK/ids1"
"$CUSTOS" find --case "$C2" --json | py '" ".join(r["id"] for r in j)' >"$WORK/ids2"
read -r -a IDS < <(cat "$WORK/ids1" "$WORK/ids2" | tr ' ' '\n' | sort -u | tr '\n' ' ')
[ "${#IDS[@]}" = 6 ]
t_ok $? "6 distinct items across the two cases"
F2_SHA=$(sha256sum "$IN/f2.bin" | cut -d' ' -f1)

# capture DIR: every read-only command's output (stdout and exit status).
capture() {
	local d="$WORK/$1" n=0
	mkdir -p "$d"
	run() {
		n=$((n + 1))
		"$CUSTOS" "$@" >"$d/$n.out" 2>/dev/null
		echo "$? $*" >"$d/$n.rc"
	}
	run find --case "$C1" --json
	run find --case "$C2" --json
	run find --case "$C1"
	run find --case "$C2"
	run find --officer A02 --json
	run find --officer B07 --json
	run find --device BWC-1 --json
	run find --device BWC-2
	run find --sha256 "$F2_SHA" --json
	run find --from 2026-03-01T00:00:00Z --to 2026-03-31T00:00:00Z --json
	run find --from 2026-04-01T00:00:00Z --json
	run find --case "$C2" --officer B07 --json
	for id in "${IDS[@]}"; do
		run show "$id" --json
		run show "$id"
		run prove "$id"
		run verify "$id" --json
	done
	run verify
	run verify --json
	run log
	run log --json
	run log --from 3 --limit 2 --json
	run checkpoint
	run pubkey
	echo "$n" >"$d/count"
}
# t_as_before NAME DESCRIPTION: captures every output again as NAME;
# passes when it is byte-identical to the capture "before" (else shows how not).
t_as_before() {
	capture "$1"
	diff -r "$WORK/before" "$WORK/$1" >"$WORK/diff.out" 2>&1
	t_ok $? "$2"
	sed 's/^/#   /' "$WORK/diff.out" | head -20
}

capture before
[ "$(cat "$WORK/before/count")" -gt 40 ] && ! grep -qv '^0 ' "$WORK"/before/*.rc &&
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/before/1.out")" = 4 ]
t_ok $? "before: every captured command succeeded (4 items in case 1)"
t_grep "before: verify intact" "^all intact: $EVENTS ledger events" "$WORK/before/$(grep -l '^0 verify$' "$WORK"/before/*.rc | xargs basename | sed 's/rc$/out/')"
SHOW_F2=$(grep -l "^0 show rb-${F2_SHA:0:20} --json\$" "$WORK"/before/*.rc | sed 's/rc$/out/')
[ "$(py '[j["record"]["sightings"], [e["event"]["event"] for e in j["events"]]]' <"$SHOW_F2")" = \
	'[2, ["ingest", "sighting"]]' ]
t_ok $? "before: f2's record shows 2 sightings and both events"

# ---- the catalog lost entirely ----
rm -rf "$CUSTOS_STORE/catalog"
t_status 3 "without a catalog, find fails with store failure" "$CUSTOS" find --case "$C1"
t_grep "... and the message points at rebuild" 'custos rebuild' "$WORK/last.err"
t_status 3 "without a catalog, ingest fails too" "$CUSTOS" ingest "$IN/f5.bin" --case "$C1"
t_run "rebuild" "$CUSTOS" rebuild
t_grep "rebuild reports the number of events replayed" "^rebuilt the catalog from $EVENTS ledger events\$" \
	"$WORK/last.out"
[ -f "$CUSTOS_STORE/catalog/data.mdb" ] && [ ! -e "$CUSTOS_STORE/catalog.rebuild" ]
t_ok $? "rebuild left a catalog/ and no catalog.rebuild/"
t_as_before after-rm "after rm -rf catalog + rebuild: every output is byte-identical"
t_run "verify passes after rebuild" "$CUSTOS" verify

# ---- rebuild with the catalog present is idempotent ----
t_run "rebuild again, catalog present" "$CUSTOS" rebuild --json
[ "$(py 'j["events"]' <"$WORK/last.out")" = "$EVENTS" ]
t_ok $? "rebuild --json reports $EVENTS events"
t_as_before again "a second rebuild changes no output"
t_run "rebuild a third time" "$CUSTOS" rebuild
t_as_before third "a third rebuild changes no output"

# ---- a catalog overwritten with garbage ----
chmod u+w "$CUSTOS_STORE/catalog/data.mdb"
head -c 65536 /dev/urandom >"$CUSTOS_STORE/catalog/data.mdb"
"$CUSTOS" find --case "$C1" >"$WORK/garbage.out" 2>&1
rc=$?
[ $rc -ne 0 ] && ! grep -q "rb-" "$WORK/garbage.out"
t_ok $? "a garbage catalog answers no query (exit $rc)"
t_run "rebuild over a garbage catalog" "$CUSTOS" rebuild
t_as_before after-garbage "after rebuilding a garbage catalog: every output is byte-identical"

# ---- rebuild needs the writer lock ----
if command -v flock >/dev/null 2>&1; then
	flock -n "$CUSTOS_STORE/lock" "$CUSTOS" rebuild >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	[ $rc -eq 3 ] && grep -q 'in use' "$WORK/last.err"
	t_ok $? "rebuild refuses while another process holds the writer lock (exit $rc)"
	t_as_before locked "the refused rebuild changed nothing"
fi

# ---- the rebuilt store keeps working ----
head -c 1234 /dev/urandom >"$IN/f6.bin"
t_run "ingest after rebuild" "$CUSTOS" ingest "$IN/f6.bin" --case "$C1" --device BWC-1
t_grep "ingest after rebuild prints the new id" "^rb-" "$WORK/last.out"
t_run "log after the new ingest" "$CUSTOS" log
[ "$(wc -l <"$WORK/last.out")" = $((EVENTS + 1)) ] && [ "$(tail -1 "$WORK/last.out" | cut -f1)" = "$EVENTS" ]
t_ok $? "the new ingest is event $EVENTS"
t_run "verify passes after ingesting into the rebuilt store" "$CUSTOS" verify
t_grep "verify counts $((EVENTS + 1)) events" "^all intact: $((EVENTS + 1)) ledger events" "$WORK/last.out"
[ -z "$(ls -A "$CUSTOS_STORE/tmp")" ]
t_ok $? "tmp/ is empty"

t_done
