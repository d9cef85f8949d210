#!/bin/bash
# Case files, corrections and seals (the evidence model):
#   1. a recording secured without a case (as docks do), then put in a case
#      with `custos case add`; the same bytes again with another case number:
#      show lists both cases with their stages and both sightings; find
#      --case of each finds it and prints that case and stage.
#   2. a correction of an officer id: show prints the new value, --history
#      the old one with the actor and the reason; verify passes; rebuild
#      gives the same projection (show --json before and after).
#   3. the four spellings of one case number find the same case; a different
#      number does not; --case-prefix finds it.
#   4. a sealed case: add, remove, correcting a membership and correcting a
#      member's sighting are refused with exit 2 and a message naming the
#      seal; the ledger does not change.
#   5. prove --case checked by check-proof with the verifier key alone; a
#      doctored membership, a doctored seal and a dropped membership fail,
#      also with another case's (or no case's) event put first.
#   6. a store written by custos 0.1.0 (tests/vectors/stores) opens, verifies,
#      finds its case by all four spellings, rebuilds, verifies again.
. "$(dirname "$0")/lib.sh"
need_python3

C1='平司罚〔2020〕1号'
C2='平司罚〔2021〕7号'
SPELLINGS=('平司罚〔2020〕1号' '平司罚[2020]1号' '平司罚［２０２０］１号' '平司罚【2020】1号')
IN="$WORK/in"
mkdir -p "$IN"
py() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r, ensure_ascii=False))' "$1"
}
nevents() { "$CUSTOS" log | wc -l; }

t_run "init" "$CUSTOS" init --station CF
printf 'body-worn camera clip\n' >"$IN/REC_0001.mp4"
SHA=$(digest "$IN/REC_0001.mp4")
ID="CF-${SHA:0:20}"

# 1. no case at first, as from a dock
t_run "ingest without --case is accepted" "$CUSTOS" ingest "$IN/REC_0001.mp4" --officer 3301-0457 \
	--device BWC-0007 --recorded-at 2026-11-28T08:30:00+08:00
t_grep "... and says it is in no case" 'without a case number' "$WORK/last.err"
t_run "show: in no case yet" "$CUSTOS" show "$ID"
t_grep "... says so" '^  \(none' "$WORK/last.out"
t_status 2 "case add to a case not opened is refused" "$CUSTOS" case add "$C1" "$ID" --stage 取证
t_grep "... naming what to do" 'custos case open' "$WORK/last.err"
t_run "case open" "$CUSTOS" case open "$C1" --category 行政处罚 --title 'a shop fined' \
	--party organisation
t_status 2 "opening it again (another spelling) is refused" "$CUSTOS" case open '平司罚[2020]1号'
t_run "case add" "$CUSTOS" case add "$C1" "$ID" --stage 取证 --reason 'footage of the inspection'
cp "$IN/REC_0001.mp4" "$IN/upload.mp4"
t_run "the same bytes uploaded with another case number" "$CUSTOS" ingest "$IN/upload.mp4" \
	--case "$C2" --stage 调查
"$CUSTOS" show "$ID" --json >"$WORK/show.json"
[ "$(py '[[m["case"], m["stage"]] for m in j["record"]["cases"]]' <"$WORK/show.json")" = \
	"[[\"$C1\", \"取证\"], [\"$C2\", \"调查\"]]" ]
t_ok $? "show --json: in both cases, each with its stage"
[ "$(py '[s["name"] for s in j["record"]["seen"]]' <"$WORK/show.json")" = '["REC_0001.mp4", "upload.mp4"]' ]
t_ok $? "show --json: both sightings"
t_run "show (text)" "$CUSTOS" show "$ID"
t_grep "... lists case $C1 with its stage" "^  $C1  stage 取证" "$WORK/last.out"
t_grep "... and case $C2 with its stage" "^  $C2  stage 调查" "$WORK/last.out"
[ "$(grep -c '^  sighting #' "$WORK/last.out")" = 2 ]
t_ok $? "... and both sightings"
t_run "find --case $C1" "$CUSTOS" find --case "$C1"
[ "$(cut -f1-3 "$WORK/last.out")" = "$(printf '%s\t%s\t%s' "$ID" "$C1" 取证)" ]
t_ok $? "... prints the item with that case and stage"
t_run "find --case $C2" "$CUSTOS" find --case "$C2"
[ "$(cut -f1-3 "$WORK/last.out")" = "$(printf '%s\t%s\t%s' "$ID" "$C2" 调查)" ]
t_ok $? "... prints the item with that case and stage"
t_run "find --case $C2 --json" "$CUSTOS" find --case "$C2" --json
[ "$(py '[r["id"] for r in j]' <"$WORK/last.out")" = "[\"$ID\"]" ]
t_ok $? "... gives the item"
t_run "case list --json" "$CUSTOS" case list --json
[ "$(py '[[c["number"], c["state"], c["members"]] for c in j]' <"$WORK/last.out")" = \
	"[[\"$C1\", \"open\", 1], [\"$C2\", \"open\", 1]]" ]
t_ok $? "... both case files, open, one member each"

# 2. a correction
t_status 2 "a correction without a reason is refused" "$CUSTOS" amend "$ID" --sighting 0 \
	--set officers=3301-0999
t_status 2 "a correction of an item with two sightings must say which" "$CUSTOS" amend "$ID" \
	--set officers=3301-0999 --reason typo
t_grep "... and says so" 'say which with --sighting' "$WORK/last.err"
t_status 2 "a bad value is refused" "$CUSTOS" amend "$ID" --sighting 0 \
	--set recorded_start=yesterday --reason typo
t_run "correct the officer of the first sighting" "$CUSTOS" amend "$ID" --sighting 0 \
	--set officers=3301-0999 --reason 'officer id mistyped at the dock'
t_run "show" "$CUSTOS" show "$ID"
t_grep "... prints the new value" '^    officers +3301-0999$' "$WORK/last.out"
if grep -q '3301-0457' "$WORK/last.out"; then t_ok 1 "... not the old one"; else t_ok 0 "... not the old one"; fi
t_run "show --history" "$CUSTOS" show "$ID" --history
ME=$(id -un)
t_grep "... prints the old value, the actor and the reason" \
	"was 3301-0457, set to 3301-0999 by ledger event #[0-9]+ .* by $ME \\(uid $(id -u)\\): officer id mistyped at the dock" \
	"$WORK/last.out"
t_run "find --officer finds the corrected id" "$CUSTOS" find --officer 3301-0999
t_status 0 "verify passes" "$CUSTOS" verify
"$CUSTOS" show "$ID" --json >"$WORK/before.json"
"$CUSTOS" case show "$C1" --json >"$WORK/case-before.json"
t_run "rebuild" "$CUSTOS" rebuild
"$CUSTOS" show "$ID" --json >"$WORK/after.json"
"$CUSTOS" case show "$C1" --json >"$WORK/case-after.json"
cmp -s "$WORK/before.json" "$WORK/after.json" && cmp -s "$WORK/case-before.json" "$WORK/case-after.json"
t_ok $? "rebuild gives the same projection (show --json, case show --json)"
t_status 0 "verify passes after rebuild" "$CUSTOS" verify
[ "$(py '[[e["event"]["event"], e["event"]["actor"]["name"]] for e in j["events"]]' <"$WORK/after.json")" = \
	"[[\"ingest\", \"$ME\"], [\"case-add\", \"$ME\"], [\"sighting\", \"$ME\"], [\"amend\", \"$ME\"]]" ]
t_ok $? "every event names its actor"

# 3. the spellings of a case number
for s in "${SPELLINGS[@]}" ' 平司罚〔2020〕1号 '; do
	"$CUSTOS" find --case "$s" >"$WORK/f.out" 2>/dev/null
	[ "$(cut -f1,2 "$WORK/f.out")" = "$(printf '%s\t%s' "$ID" "$C1")" ]
	t_ok $? "find --case '$s' finds the item in $C1"
done
t_status 0 "a different case number finds nothing" "$CUSTOS" find --case '平司罚〔2020〕11号' --json
[ "$(cat "$WORK/last.out")" = "[]" ]
t_ok $? "... (an empty list)"
t_run "find --case-prefix" "$CUSTOS" find --case-prefix '平司罚【2020】' --json
[ "$(py '[r["id"] for r in j]' <"$WORK/last.out")" = "[\"$ID\"]" ]
t_ok $? "... finds the item"

# 4. seal
printf 'another clip\n' >"$IN/REC_0002.mp4"
ID2="CF-$(digest "$IN/REC_0002.mp4" | cut -c1-20)"
t_run "a second item in $C1" "$CUSTOS" ingest "$IN/REC_0002.mp4" --case '平司罚[2020]1号' --stage 决定
t_run "case close" "$CUSTOS" case close "$C1"
t_status 2 "opening the closed case file again is refused" "$CUSTOS" case open "$C1"
t_grep "... saying it is closed (not open)" "case file .* is already closed" "$WORK/last.err"
t_run "a closed case still takes a correction" "$CUSTOS" amend "$ID2" --case "$C1" --set stage=送达 \
	--reason 'served, not decided'
t_run "case seal" "$CUSTOS" case seal "$C1"
N=$(nevents)
LEDGER_BYTES=$(stat -c %s "$CUSTOS_STORE/ledger/journal")
printf 'third\n' >"$IN/REC_0003.mp4"
"$CUSTOS" ingest "$IN/REC_0003.mp4" >/dev/null 2>&1
ID3="CF-$(digest "$IN/REC_0003.mp4" | cut -c1-20)"
N=$(nevents)
LEDGER_BYTES=$(stat -c %s "$CUSTOS_STORE/ledger/journal")
t_status 2 "adding to the sealed case is refused" "$CUSTOS" case add '平司罚【2020】1号' "$ID3" --stage 执行
t_grep "... naming the seal" "case file $C1 is sealed \\(seal: ledger event #" "$WORK/last.err"
t_status 2 "removing from it is refused" "$CUSTOS" case remove "$C1" "$ID" --reason mistake
t_grep "... naming the seal" "case file $C1 is sealed" "$WORK/last.err"
t_status 2 "correcting a membership is refused" "$CUSTOS" amend "$ID" --case "$C1" --set stage=执行 \
	--reason x
t_grep "... naming the seal" "case file $C1 is sealed" "$WORK/last.err"
t_status 2 "correcting a member's sighting is refused" "$CUSTOS" amend "$ID2" --set device=X \
	--reason x
t_grep "... naming the seal" "case file $C1 is sealed" "$WORK/last.err"
t_status 2 "correcting the case file is refused" "$CUSTOS" amend --case "$C1" --set title=x \
	--reason x
t_status 2 "closing it again is refused" "$CUSTOS" case close "$C1"
[ "$(nevents)" = "$N" ] && [ "$(stat -c %s "$CUSTOS_STORE/ledger/journal")" = "$LEDGER_BYTES" ]
t_ok $? "the refusals left the ledger unchanged"
t_run "the same bytes arriving with the sealed case's number are still secured" \
	"$CUSTOS" ingest "$IN/REC_0003.mp4" --case "$C1"
"$CUSTOS" case show "$C1" --json >"$WORK/sealed.json"
[ "$(py '[j["case"]["state"], sorted(m["id"] for m in j["members"])]' <"$WORK/sealed.json")" = \
	"$(python3 -c 'import json,sys; print(json.dumps(["sealed", sorted(sys.argv[1:])]))' "$ID" "$ID2")" ]
t_ok $? "... but not added: the sealed case keeps its two members"
t_run "case show (text)" "$CUSTOS" case show "$C1"
awk '/^取证$/{a=NR} /^送达$/{b=NR} END{exit !(a && b && a < b)}' "$WORK/last.out"
t_ok $? "... groups the items by stage, 取证 before 送达"
t_grep "... with the seal's digest" '^ +members SHA-256 [0-9a-f]{64}$' "$WORK/last.out"
t_status 0 "verify passes" "$CUSTOS" verify

# 5. proofs of the case file
VKEY=$("$CUSTOS" pubkey)
t_run "prove --case" "$CUSTOS" prove --case '平司罚［２０２０］１号'
cp "$WORK/last.out" "$WORK/case.proof"
[ "$(grep -c '^c2sp.org/tlog-proof@v1$' "$WORK/case.proof")" = 6 ]
t_ok $? "... one proof per event of the case file"
t_run "check-proof with the verifier key alone" "$CUSTOS" check-proof "$WORK/case.proof" --key "$VKEY"
t_grep "... says the seal matches" 'the seal matches them' "$WORK/last.out"
t_run "check-proof --json" "$CUSTOS" check-proof "$WORK/case.proof" --key "$VKEY" --json
[ "$(py '[p["event"]["event"] for p in j["proofs"]]' <"$WORK/last.out")" = \
	'["case-open", "case-add", "ingest", "case-close", "amend", "case-seal"]' ]
t_ok $? "... lists the proven events: open, add, the ingest with the number, close, amend, seal"
# doctor one event's bytes (its 'extra' line) in the proof
doctor() { # doctor FILE EVENT-TYPE PYTHON-EXPR-ON-EV OUT
	python3 - "$@" <<'EOF'
import base64, json, sys
src, kind, expr, out = sys.argv[1:5]
lines = open(src, encoding="utf-8").read().split("\n")
for i, l in enumerate(lines):
    if l.startswith("extra "):
        ev = json.loads(base64.b64decode(l[6:]))
        if ev.get("event") == kind:
            exec(expr)
            raw = json.dumps(ev, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            lines[i] = "extra " + base64.b64encode(raw.encode()).decode()
            break
open(out, "w", encoding="utf-8").write("\n".join(lines))
EOF
}
doctor "$WORK/case.proof" case-add 'ev["id"] = "CF-00000000000000000000"' "$WORK/bad1.proof"
t_status 1 "a doctored membership fails" "$CUSTOS" check-proof "$WORK/bad1.proof" --key "$VKEY"
t_grep "... not included" 'FAILED: the event is not included in the signed tree \(proof [0-9]+\)' \
	"$WORK/last.err"
doctor "$WORK/case.proof" case-seal 'ev["members_sha256"] = "0" * 64' "$WORK/bad2.proof"
t_status 1 "a doctored seal fails" "$CUSTOS" check-proof "$WORK/bad2.proof" --key "$VKEY"
# drop one membership's proof: each remaining proof holds, the seal does not
python3 - "$WORK/case.proof" "$WORK/bad3.proof" <<'EOF'
import base64, json, sys
parts = open(sys.argv[1], encoding="utf-8").read().split("c2sp.org/tlog-proof@v1\n")[1:]
keep = []
dropped = False
for p in parts:
    ev = json.loads(base64.b64decode(p.split("\n")[0][6:]))
    if ev.get("event") == "case-add" and not dropped:
        dropped = True
        continue
    keep.append("c2sp.org/tlog-proof@v1\n" + p)
open(sys.argv[2], "w", encoding="utf-8").write("".join(keep))
EOF
t_status 1 "a proof with a membership left out fails" "$CUSTOS" check-proof "$WORK/bad3.proof" \
	--key "$VKEY"
t_grep "... on the seal" "FAILED: the seal's member digest does not match" "$WORK/last.err"
t_run "prove ID includes the item's case events" "$CUSTOS" prove "$ID"
cp "$WORK/last.out" "$WORK/item.proof"
t_run "... and check-proof checks them" "$CUSTOS" check-proof "$WORK/item.proof" --key "$VKEY" --json
[ "$(py '[p["event"]["event"] for p in j["proofs"]]' <"$WORK/last.out")" = \
	'["ingest", "case-add", "sighting", "amend"]' ]
t_ok $? "... the ingest, the case-add, the sighting with its case, the correction"
# the membership left out again, and a proof of another case's event (or
# of an event in no case) put first: the seal must still be checked
for kind in sighting ingest; do
	python3 - "$WORK/item.proof" "$WORK/bad3.proof" "$kind" "$WORK/bad4-$kind.proof" <<'EOF'
import base64, json, sys
parts = open(sys.argv[1], encoding="utf-8").read().split("c2sp.org/tlog-proof@v1\n")[1:]
other = [p for p in parts if json.loads(base64.b64decode(p.split("\n")[0][6:])).get("event") == sys.argv[3]]
assert len(other) == 1
open(sys.argv[4], "w", encoding="utf-8").write("c2sp.org/tlog-proof@v1\n" + other[0] +
    open(sys.argv[2], encoding="utf-8").read())
EOF
	t_status 1 "a membership left out, a $kind of the item put first: fails" \
		"$CUSTOS" check-proof "$WORK/bad4-$kind.proof" --key "$VKEY"
	t_grep "... on the seal" "FAILED: the seal's member digest does not match" "$WORK/last.err"
done

# 6. a store written by custos 0.1.0
OLD="$WORK/old"
mkdir -p "$OLD"
tar -xzf "$CUSTOS_SRC/tests/vectors/stores/store-0.1.0.tar.gz" -C "$OLD"
OLDKEY=$(cat "$CUSTOS_SRC/tests/vectors/stores/store-0.1.0.vkey")
OS="$OLD/store"
OLDID=OLD1-b94622c688717c8a3ef6
OLDID2=OLD1-480c2336b410f1ad5f8b
# verify as the very first command: an older catalog is not damage; verify
# brings it up to date as every command does, then checks it.
mkdir -p "$WORK/old-first"
tar -xzf "$CUSTOS_SRC/tests/vectors/stores/store-0.1.0.tar.gz" -C "$WORK/old-first"
t_status 0 "0.1.0 store: verify as the first command passes" "$CUSTOS" verify \
	--store "$WORK/old-first/store"
t_grep "... saying the catalog was brought up to date" \
	'made by an older custos; rebuilt it from the ledger' "$WORK/last.err"
t_run "0.1.0 store: opens (its catalog is brought up to date)" "$CUSTOS" log --store "$OS"
t_grep "... saying so" 'made by an older custos; rebuilt it from the ledger' "$WORK/last.err"
[ "$(wc -l <"$WORK/last.out")" = 3 ]
t_ok $? "... and lists its three events"
t_status 0 "0.1.0 store: verify passes" "$CUSTOS" verify --store "$OS"
t_run "0.1.0 store: verify against its own checkpoint" "$CUSTOS" verify --store "$OS" \
	--checkpoint "$OS/checkpoints/$(ls "$OS/checkpoints" | tail -1)"
for s in "${SPELLINGS[@]}"; do
	"$CUSTOS" find --store "$OS" --case "$s" --json >"$WORK/f.json" 2>/dev/null
	[ "$(py 'sorted(r["id"] for r in j)' <"$WORK/f.json")" = "[\"$OLDID2\", \"$OLDID\"]" ]
	t_ok $? "0.1.0 store: find --case '$s' finds both items"
done
"$CUSTOS" find --store "$OS" --case '平司罚〔2020〕1号' >"$WORK/f.out"
[ "$(sort "$WORK/f.out" | cut -f1-3 | tr '\t\n' ' ')" = \
	"$OLDID2 平司罚〔2020〕1号 调查 $OLDID 平司罚〔2020〕1号 取证 " ]
t_ok $? "0.1.0 store: find prints each item's case and stage"
t_status 0 "0.1.0 store: the second case X-2 finds the first item" "$CUSTOS" find --store "$OS" \
	--case X-2
[ "$(cut -f1,2 "$WORK/last.out")" = "$(printf '%s\tX-2' "$OLDID")" ]
t_ok $? "... with its case"
"$CUSTOS" show --store "$OS" "$OLDID" --json >"$WORK/old-before.json"
"$CUSTOS" case show --store "$OS" "$C1" --json >"$WORK/oldcase-before.json"
t_run "0.1.0 store: rebuild" "$CUSTOS" rebuild --store "$OS"
"$CUSTOS" show --store "$OS" "$OLDID" --json >"$WORK/old-after.json"
"$CUSTOS" case show --store "$OS" "$C1" --json >"$WORK/oldcase-after.json"
cmp -s "$WORK/old-before.json" "$WORK/old-after.json" &&
	cmp -s "$WORK/oldcase-before.json" "$WORK/oldcase-after.json"
t_ok $? "0.1.0 store: rebuild gives the same projection"
t_status 0 "0.1.0 store: verify passes after rebuild" "$CUSTOS" verify --store "$OS"
t_run "0.1.0 store: prove --case" "$CUSTOS" prove --store "$OS" --case "$C1"
cp "$WORK/last.out" "$WORK/old.proof"
t_run "... checked with the old verifier key" "$CUSTOS" check-proof "$WORK/old.proof" --key "$OLDKEY"

# 7. crash points of the new event kinds: custos-failpoint ends itself at
# each durable step of a case add, a correction and a seal; after each crash
# verify passes before any writer recovers, a writer recovers, and the change
# is there whole (its event and its projection) or not at all.
if [ -n "${CUSTOS_FP:-}" ]; then
	TPL="$WORK/tpl"
	mkdir -p "$TPL"
	export CUSTOS_STORE="$TPL/store"
	"$CUSTOS" init --station CP >/dev/null
	printf 'crash one\n' >"$IN/cp1"
	"$CUSTOS" ingest "$IN/cp1" >/dev/null 2>&1
	CPID="CP-$(digest "$IN/cp1" | cut -c1-20)"
	"$CUSTOS" case open K-1 >/dev/null
	crash_case() { # crash_case NAME CHECK-PYTHON CMD...: every crash point of CMD
		local name=$1 check=$2 k K n0 rc bad=0
		shift 2
		n0=$(CUSTOS_STORE="$TPL/store" nevents)
		rm -rf "$WORK/cp" && cp -a "$TPL/store" "$WORK/cp"
		CUSTOS_STORE="$WORK/cp" CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" "$@" >/dev/null 2>"$WORK/trace"
		K=$(grep -c '^failpoint ' "$WORK/trace")
		for k in $(seq 1 $((K + 1))); do
			rm -rf "$WORK/cp" && cp -a "$TPL/store" "$WORK/cp"
			CUSTOS_STORE="$WORK/cp" CUSTOS_CRASH_AT=$k "$CUSTOS_FP" "$@" >/dev/null 2>&1
			rc=$?
			if [ $k -le "$K" ] && [ $rc != 99 ]; then bad=1; echo "# k=$k: exit $rc"; fi
			"$CUSTOS" verify --store "$WORK/cp" >/dev/null 2>&1 ||
				{ bad=1; echo "# k=$k: verify before recovery failed"; }
			"$CUSTOS" checkpoint --store "$WORK/cp" >/dev/null 2>&1 ||
				{ bad=1; echo "# k=$k: recovery failed"; }
			"$CUSTOS" verify --store "$WORK/cp" >/dev/null 2>&1 ||
				{ bad=1; echo "# k=$k: verify after recovery failed"; }
			n=$(CUSTOS_STORE="$WORK/cp" nevents)
			"$CUSTOS" show --store "$WORK/cp" "$CPID" --json >"$WORK/cp.json" 2>/dev/null
			python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); n=int(sys.argv[2]); exec(sys.argv[3])' \
				"$WORK/cp.json" "$((n - n0))" "$check" ||
				{ bad=1; echo "# k=$k: $((n - n0)) new event(s) and a projection that does not match"; }
		done
		t_ok $bad "crash points of $name ($K steps): whole or absent, verify passes"
	}
	crash_case "case add" 'm=[c["case"] for c in j["record"].get("cases", [])]; assert (n, m) in [(0, []), (1, ["K-1"])]' \
		case add K-1 "$CPID" --stage 取证
	"$CUSTOS" case add K-1 "$CPID" --stage 取证 >/dev/null
	crash_case "amend" 's=j["record"]["seen"][0].get("device"); assert (n, s) in [(0, None), (1, "D-9")]' \
		amend "$CPID" --set device=D-9 --reason r
	crash_case "case seal" 'assert n in (0, 1)' case seal K-1
fi

t_done
