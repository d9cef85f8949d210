#!/bin/bash
# Content addressing: the same bytes are stored once and recorded as further
# sightings, under any name and any case; the record lists every sighting and
# every case it came with, and each case finds the item.
. "$(dirname "$0")/lib.sh"

C1='平司罚〔2020〕1号'
C2='平司罚〔2020〕2号'
IN="$WORK/in"
mkdir -p "$IN"

py() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r, ensure_ascii=False))' "$1"
}
nblobs() { find "$CUSTOS_STORE/objects" -type f | wc -l; }
nevents() { "$CUSTOS" log | wc -l; }

t_run "init" "$CUSTOS" init --station dd
head -c 200000 /dev/urandom >"$IN/clip.bin"
cp "$IN/clip.bin" "$IN/副本 of clip.bin"
SHA=$(sha256sum "$IN/clip.bin" | cut -d' ' -f1)
ID="dd-${SHA:0:20}"
BLOB="$CUSTOS_STORE/objects/sha256/${SHA:0:2}/${SHA:2:2}/$SHA"

t_run "first ingest" "$CUSTOS" ingest "$IN/clip.bin" --case "$C1" --officer A01 --stage 取证
[ "$(cut -f1,2 "$WORK/last.out")" = "$(printf '%s\t%s' "$ID" "$SHA")" ]
t_ok $? "first ingest prints the id and digest"
if grep -q 'already stored' "$WORK/last.out"; then t_ok 1 "the first ingest is not a duplicate"; else
	t_ok 0 "the first ingest is not a duplicate"; fi
INODE=$(stat -c '%i %Y %a' "$BLOB")

t_run "the same file again" "$CUSTOS" ingest "$IN/clip.bin" --case "$C1"
[ "$(cut -f1 "$WORK/last.out")" = "$ID" ]
t_ok $? "the second ingest prints the same id"
t_grep "... and says it is already stored" 'already stored' "$WORK/last.out"
"$CUSTOS" show "$ID" --json >"$WORK/show.json"
[ "$(py 'j["record"]["sightings"]' <"$WORK/show.json")" = 2 ]
t_ok $? "show: 2 sightings"

t_run "a copy under another name and another case (--json)" "$CUSTOS" ingest "$IN/副本 of clip.bin" \
	--case "$C2" --json
[ "$(py '[j[0]["id"], j[0]["duplicate"], j[0]["sha256"]]' <"$WORK/last.out")" = "[\"$ID\", true, \"$SHA\"]" ]
t_ok $? "the copy gets the same id, duplicate=true"

[ "$(nblobs)" = 1 ]
t_ok $? "objects/ holds exactly one file"
[ "$(stat -c '%i %Y %a' "$BLOB")" = "$INODE" ]
t_ok $? "the blob was not rewritten (same inode, mtime, mode 0444)"
cmp -s "$BLOB" "$IN/clip.bin"
t_ok $? "the blob still equals the original"

"$CUSTOS" show "$ID" --json >"$WORK/show.json"
[ "$(py 'j["record"]["sightings"]' <"$WORK/show.json")" = 3 ]
t_ok $? "show --json: 3 sightings"
[ "$(py '[e["event"]["event"] for e in j["events"]]' <"$WORK/show.json")" = '["ingest", "sighting", "sighting"]' ]
t_ok $? "show --json: one ingest and two sighting events"
[ "$(py '[j["events"][2]["event"]["sighting"]["case"], j["events"][2]["event"]["sighting"]["name"]]' <"$WORK/show.json")" = \
	"[\"$C2\", \"副本 of clip.bin\"]" ]
t_ok $? "the last sighting records its case and its own file name"
[ "$(py '[[s["name"], s.get("case"), s.get("officers")] for s in j["record"]["seen"]]' <"$WORK/show.json")" = \
	"[[\"clip.bin\", \"$C1\", [\"A01\"]], [\"clip.bin\", \"$C1\", null], [\"副本 of clip.bin\", \"$C2\", null]]" ]
t_ok $? "the record lists every sighting with its own name, case and officers"
[ "$(py '[[m["case"], m.get("stage")] for m in j["record"]["cases"]]' <"$WORK/show.json")" = \
	"[[\"$C1\", \"取证\"], [\"$C2\", null]]" ]
t_ok $? "the item is in both cases, each at the stage it came with"
t_run "show (text)" "$CUSTOS" show "$ID"
t_grep "show prints sightings 3" '^sightings +3$' "$WORK/last.out"
[ "$(grep -cE '^  #[0-9]+  .*  sighting$' "$WORK/last.out")" = 2 ]
t_ok $? "show lists both sighting events"

t_run "find --case C1" "$CUSTOS" find --case "$C1" --json
[ "$(py '[r["id"] for r in j]' <"$WORK/last.out")" = "[\"$ID\"]" ]
t_ok $? "find --case $C1 gives the one item, once"
t_run "find --case C2 (only a sighting)" "$CUSTOS" find --case "$C2" --json
[ "$(py '[r["id"] for r in j]' <"$WORK/last.out")" = "[\"$ID\"]" ]
t_ok $? "find --case $C2 finds the item through its sighting"
t_run "find --sha256" "$CUSTOS" find --sha256 "$SHA" --json
[ "$(py '[r["id"] for r in j]' <"$WORK/last.out")" = "[\"$ID\"]" ]
t_ok $? "find --sha256 gives one item"
[ "$(nevents)" = 3 ]
t_ok $? "the ledger holds 3 events (ingest + 2 sightings)"

# a batch naming the same bytes twice, plus a new file
head -c 100 /dev/urandom >"$IN/new.bin"
cp "$IN/new.bin" "$IN/new-again.bin"
NEW_SHA=$(sha256sum "$IN/new.bin" | cut -d' ' -f1)
t_run "one batch: new file, its copy, and the old clip" "$CUSTOS" ingest "$IN/new.bin" "$IN/new-again.bin" \
	"$IN/clip.bin" --case 'K-3'
[ "$(cut -f1 "$WORK/last.out" | tr '\n' ' ')" = "dd-${NEW_SHA:0:20} dd-${NEW_SHA:0:20} $ID " ] &&
	[ "$(grep -c 'already stored' "$WORK/last.out")" = 2 ]
t_ok $? "the batch prints the new id twice and the old id; two are sightings"
[ "$(nblobs)" = 2 ]
t_ok $? "objects/ holds two files"
[ "$("$CUSTOS" find --case K-3 --json | py 'sorted(r["id"] for r in j)')" = \
	"$(printf '["%s", "%s"]' "$ID" "dd-${NEW_SHA:0:20}" | python3 -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin))))')" ]
t_ok $? "find --case K-3 gives both items once each"
[ "$("$CUSTOS" show "$ID" --json | py 'j["record"]["sightings"]')" = 4 ]
t_ok $? "the clip now has 4 sightings"

# same name, different bytes: a different item
head -c 200000 /dev/urandom >"$WORK/clip.bin"
t_run "different bytes under the same name" "$CUSTOS" ingest "$WORK/clip.bin" --case "$C1"
if grep -q "already stored\|$ID" "$WORK/last.out"; then t_ok 1 "different bytes are a new item"; else
	t_ok 0 "different bytes are a new item"; fi
[ "$(nblobs)" = 3 ] && [ "$("$CUSTOS" find --case "$C1" --json | py 'len(j)')" = 2 ]
t_ok $? "three blobs; case $C1 now has two items"

# a lost blob is restored by ingesting the same bytes again
rm -f "$BLOB"
t_status 1 "verify notices the lost blob" "$CUSTOS" verify
t_grep "... by id" "blob-missing: .*$ID" "$WORK/last.out"
t_run "ingest the same bytes again" "$CUSTOS" ingest "$IN/副本 of clip.bin" --case "$C2"
cmp -s "$BLOB" "$IN/clip.bin" && [ "$(stat -c %a "$BLOB")" = 444 ]
t_ok $? "the blob is back, equal to the original, mode 0444"

t_run "verify passes" "$CUSTOS" verify
t_run "rebuild" "$CUSTOS" rebuild
[ "$("$CUSTOS" show "$ID" --json | py 'j["record"]["sightings"]')" = 5 ] &&
	[ "$("$CUSTOS" find --case "$C2" --json | py '[r["id"] for r in j]')" = "[\"$ID\"]" ]
t_ok $? "after rebuild: 5 sightings, still found by the sighting's case"
t_run "verify passes after rebuild" "$CUSTOS" verify

t_done
