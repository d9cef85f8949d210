#!/bin/bash
# Retention: what is due, year by year, through custosd's real control socket,
# on the test builds' clock ($CUSTOS_TEST_CLOCK, rewritten to travel):
#   1. bad [retention] lines are refused, naming the line and the problem.
#   2. a store with case files of several categories closed at different
#      times, open cases, a held case, a held item, an item used in a
#      decision, items in two cases (one of them open), an item in no case,
#      a permanent class: walking from 2021 to 2032, after each step exactly
#      the expected ids are due (sorted lists compared), and the open, held
#      and used ones never are (they are listed as blocked, saying why).
#   3. the longest class wins (a recording class that outlasts a closure
#      class; two closed cases: the later due time); an item in no case is
#      due under a class counting from recording only.
#   4. hold add and release need a holder role (hold-role refused, named);
#      a released hold lets its item fall due; hold list --all shows it.
#   5. verify passes; rebuild remakes holds and uses: the same plan after.
. "$(dirname "$0")/lib.sh"
need_python3
: "${CUSTOS_FP:?}" "${CUSTOSD_FP:?}"

export CUSTOS_TEST_CLOCK="$WORK/clock"
F=$CUSTOS_FP
mkdir -p "$WORK/in" "$WORK/files"
CONF=$WORK/custosd.conf
LOG=$WORK/custosd.log
DAEMON_BIN=$CUSTOSD_FP
at() { echo "$1" >"$CUSTOS_TEST_CLOCK"; }

# conf ROLE: custosd's configuration, root having ROLE; no purge plan of
# custosd's own takes the items the walk looks at (plan_interval 100 years)
conf() {
	cat >"$CONF" <<EOF
[store]
root = $CUSTOS_STORE
station = RT
[inbox]
dir = $WORK/in
[roles]
root = $1
[retention]
holders = legal, admin
plan_interval = 36500d
class.penalty = period=5y from=closure category=行政处罚
class.inspection = period=2y from=closure category=行政检查
class.recording = period=3y from=recording
class.permit = period=permanent from=closure category=行政许可
EOF
}

# bad config lines: refused, naming the line and the problem
badconf() {
	local pat=$1 line=$2
	conf legal
	echo "$line" >>"$CONF"
	t_status 2 "refused: $line" "$CUSTOSD" --config "$CONF" --check-config
	t_grep "... naming line 15 and the problem" "line 15: .*$pat" "$WORK/last.err"
}
badconf "period must be years" "class.x = period=5 from=closure"
badconf "from must be closure or recording" "class.x = period=5y from=opening"
badconf "needs from=" "class.x = period=5y"
badconf "not a class setting" "class.x = period=5y from=closure colour=red"
badconf "given twice" "class.penalty = period=1y from=closure"
badconf "a class is named with" "class. = period=1y from=closure"
badconf "approvals must be" "approvals = 0"
badconf "holders must list roles" "holders = legal, boss"
badconf "unknown setting" "period = 5y"
conf legal
t_run "the good configuration is accepted" "$CUSTOSD" --config "$CONF" --check-config

# ---- the store, made in 2020 ----
at 2020-01-01T00:00:00Z
t_run "init" "$F" init --station RT
# ingest NAME [ARGS]: one item; its id in ID_NAME
ingest() {
	local n=$1 out
	shift
	printf 'recording %s\n' "$n" >"$WORK/files/$n.mp4"
	out=$("$F" ingest "$WORK/files/$n.mp4" "$@" --json 2>"$WORK/last.err") || fail "ingest $n"
	eval "ID_$n=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])' <<<"$out")"
}
open_case() { "$F" case open "$1" --category "$2" >/dev/null || fail "open $1"; }
add() { "$F" case add "$1" "$2" --stage 取证 >/dev/null || fail "add $2 to $1"; }
close() { "$F" case close "$1" --reason "decided" >/dev/null || fail "close $1"; }

open_case P1 行政处罚    # penalty, closed 2021: 5y -> 2026
open_case I1 行政检查    # inspection, closed 2020-06: 2y -> 2022-06, recording 3y -> 2023
open_case I2 行政检查    # inspection, closed 2022: 2y -> 2024
open_case OPEN 行政处罚  # never closed
open_case HELD 行政检查  # closed 2020-06, held
open_case I3 行政检查    # closed 2020-06, its item held
open_case USED 行政处罚  # closed 2021, its item used in the decision
open_case I4 行政检查    # closed 2020-06; its item also in OPEN2
open_case OPEN2 行政检查
open_case I5 行政检查    # closed 2020-06; its item also in P2
open_case P2 行政处罚    # closed 2022: 5y -> 2027
open_case PERM 行政许可  # permanent
for n in p1 i1 i2 o1 h1 hi u1 d1 d2 pm n1; do ingest $n; done
ingest r1 --recorded-at 2019-01-01T00:00:00Z # in no case: recording 3y -> 2022
ingest s1b --case S1 --category 行政处罚 # the sighting's category: 5y from closure (2021)
add P1 "$ID_p1"
add I1 "$ID_i1"
add I2 "$ID_i2"
add OPEN "$ID_o1"
add HELD "$ID_h1"
add I3 "$ID_hi"
add USED "$ID_u1"
add I4 "$ID_d1"
add OPEN2 "$ID_d1"
add I5 "$ID_d2"
add P2 "$ID_d2"
add PERM "$ID_pm"
at 2020-06-01T00:00:00Z
for c in I1 HELD I3 I4 I5 PERM; do close $c; done
at 2021-01-01T00:00:00Z
for c in P1 USED S1; do close $c; done
at 2022-01-01T00:00:00Z
for c in I2 P2; do close $c; done
report "the store: 14 items, 14 case files, closed at three times"

daemon_start "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK"
t_ok $? "custosd starts"

# ---- holds and uses, by role ----
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
	"$WORK/last.out" "$1"; }
reloads=0
# role ROLE: root gets ROLE, by a reload
role() {
	conf "$1"
	reloads=$((reloads + 1))
	kill -HUP "$DPID"
	wait_until 60 eval '[ "$(grep -c "configuration reloaded" "$LOG")" -ge $reloads ]' ||
		fail "custosd did not reload"
}
role archivist
"$F" hold add --case HELD --reason "litigation" --json >"$WORK/last.out" 2>"$WORK/last.err"
rc=$?
t_ok $(([ $rc = 1 ] && [ "$(json_field rule)" = hold-role ]) && echo 0 || echo 1) \
	"an archivist's hold is refused by rule hold-role (exit $rc)"
t_grep "... and the message names the rule" "refused by rule hold-role" "$WORK/last.err"
"$F" retention used "$ID_u1" --case USED --reason "decision" --json >"$WORK/last.out" \
	2>"$WORK/last.err"
t_ok $(([ $? = 1 ] && [ "$(json_field rule)" = hold-role ]) && echo 0 || echo 1) \
	"an archivist does not mark evidence used either (hold-role)"
role legal
t_run "legal holds case HELD" "$F" hold add --case HELD --reason "litigation" --json
HOLD_CASE=$(json_field hold)
t_grep "... which holds its one item" '"items": 1' "$WORK/last.out"
t_run "legal holds item hi" "$F" hold add --item "$ID_hi" --reason "appeal" --json
t_run "legal holds item r1 (released later)" "$F" hold add --item "$ID_r1" --reason "query" \
	--json
HOLD_R1=$(json_field hold)
t_run "legal marks u1 used in the decision of USED" "$F" retention used "$ID_u1" --case USED \
	--reason "decision 2021-3"
t_status 2 "an item is not marked used for a case it is not in" "$F" retention used "$ID_p1" \
	--case USED --reason "wrong case"
t_grep "... saying so" "is not in case file USED" "$WORK/last.err"
t_status 2 "a hold needs a reason" "$F" hold add --case P1
t_status 2 "a hold on an unknown case is refused" "$F" hold add --case NOSUCH --reason x
t_grep "... naming it" "no such case" "$WORK/last.err"
wait_until 60 grep -q "hold $HOLD_CASE: 1 items held" "$LOG"
t_ok $? "custosd logs the items the hold covers"

# ---- the walk ----
# plan: custosd's plan now, in $WORK/plan.json
plan() { "$F" retention plan --json >"$WORK/plan.json" 2>"$WORK/last.err"; }
# ids LIST: the sorted ids of "due" or "blocked"
ids() {
	python3 -c 'import json,sys; print(" ".join(sorted(i["id"] for i in json.load(open(sys.argv[1]))[sys.argv[2]])))' \
		"$WORK/plan.json" "$1"
}
# why ID: the item's "why" in blocked
why() {
	python3 -c '
import json,sys
for i in json.load(open(sys.argv[1]))["blocked"]:
    if i["id"] == sys.argv[2]: print(i.get("why", ""))' "$WORK/plan.json" "$1"
}
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
NEVER="$ID_o1 $ID_h1 $ID_hi $ID_u1 $ID_d1 $ID_pm"
# step DATE ID...: at DATE exactly the ids are due, and none of NEVER
step() {
	local date=$1 want got n
	shift
	at "${date}T00:00:00Z"
	plan || fail "$date: custos retention plan failed: $(cat "$WORK/last.err")"
	want=$(sorted "$@")
	got=$(ids due)
	[ "$got" = "$want" ] || fail "$date: due [$got], wanted [$want]"
	for n in $NEVER; do
		case " $got " in *" $n "*) fail "$date: $n is due" ;; esac
	done
	report "$date: exactly the expected items are due ($#)"
}
# blocked ID PATTERN: the item is blocked, its why matching PATTERN
blocked() {
	local w
	w=$(why "$1")
	echo "$w" | grep -Eq -- "$2"
	t_ok $? "$1 is blocked: '$w' (wanted /$2/)"
}
step 2021-01-02
step 2022-01-02
blocked "$ID_r1" "^held by hold $HOLD_R1: query$"
step 2022-07-01 # i1: inspection's 2y are over, the recording class's 3y are not
step 2023-01-02 "$ID_i1" "$ID_n1"
blocked "$ID_h1" "^held by hold $HOLD_CASE: litigation$"
blocked "$ID_hi" "^held by hold [0-9]+: appeal$"
blocked "$ID_d1" "^case OPEN2 is open$"
blocked "$ID_r1" "^held by hold $HOLD_R1: query$"
role archivist
"$F" hold release "$HOLD_R1" --reason "answered" --json >"$WORK/last.out" 2>"$WORK/last.err"
t_ok $(([ $? = 1 ] && [ "$(json_field rule)" = hold-role ]) && echo 0 || echo 1) \
	"an archivist's release is refused by rule hold-role"
role legal
t_run "legal releases the hold on r1" "$F" hold release "$HOLD_R1" --reason "answered"
t_status 2 "a hold is released once" "$F" hold release "$HOLD_R1" --reason "again"
t_grep "... saying so" "was released already" "$WORK/last.err"
"$F" hold list >"$WORK/holds.txt"
t_ok $(grep -c "^hold $HOLD_R1 " "$WORK/holds.txt") "hold list leaves the released hold out"
"$F" hold list --all --json >"$WORK/holds.json"
python3 -c '
import json,sys
h = {x["hold"]: x for x in json.load(open(sys.argv[1]))["holds"]}
r = h[int(sys.argv[2])]["released"]
assert r["reason"] == "answered" and r["actor"]["name"] == "root", r
assert "released" not in h[int(sys.argv[3])]' "$WORK/holds.json" "$HOLD_R1" "$HOLD_CASE"
t_ok $? "hold list --all shows the release, its reason and who"
step 2023-01-03 "$ID_i1" "$ID_n1" "$ID_r1"
step 2024-01-02 "$ID_i1" "$ID_n1" "$ID_r1" "$ID_i2"
step 2025-01-02 "$ID_i1" "$ID_n1" "$ID_r1" "$ID_i2"
step 2026-01-02 "$ID_i1" "$ID_n1" "$ID_r1" "$ID_i2" "$ID_p1" "$ID_s1b"
blocked "$ID_u1" "^used as evidence in a decision of case USED$"
ALL="$ID_i1 $ID_n1 $ID_r1 $ID_i2 $ID_p1 $ID_s1b $ID_d2"
for y in 2027 2028 2029 2030 2031 2032; do step $y-01-02 $ALL; done
python3 -c '
import json,sys
p = json.load(open(sys.argv[1]))
d = {i["id"]: i for i in p["due"]}
i1, d2, r1 = d[sys.argv[2]], d[sys.argv[3]], d[sys.argv[4]]
assert (i1["class"], i1["from"]) == ("recording", "recording"), i1
assert (d2["class"], d2["from"], d2["due"][:4]) == ("penalty", "closure", "2026"), d2
assert d2["cases"] == ["I5", "P2"] or d2["cases"] == ["P2", "I5"], d2
assert r1["since"].startswith("2019-01-01") and r1["cases"] == [], r1
assert p["kept"] == 2, p["kept"]  # o1 (open case only) and pm (permanent)
assert len(p["blocked"]) == 4, p["blocked"]  # h1, hi, d1, u1
' "$WORK/plan.json" "$ID_i1" "$ID_d2" "$ID_r1"
t_ok $? "each due item names its class, what it counts from and when; kept and blocked counted"
"$F" retention plan >"$WORK/plan.txt"
t_grep "the plan for people lists the due items" "^due: 7" "$WORK/plan.txt"
t_grep "... and the blocked ones with why" "why: case OPEN2 is open" "$WORK/plan.txt"
cp "$WORK/plan.json" "$WORK/plan-before.json"

# ---- verify and rebuild ----
daemon_stop
t_ok "$DRC" "custosd stops cleanly"
t_run "verify passes with holds, releases and uses in the ledger" "$F" verify
t_run "rebuild" "$F" rebuild
t_run "verify after rebuild" "$F" verify
daemon_start "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK"
plan
[ "$(ids due)" = "$(python3 -c 'import json,sys; print(" ".join(sorted(i["id"] for i in json.load(open(sys.argv[1]))["due"])))' "$WORK/plan-before.json")" ] &&
	[ "$(ids blocked)" = "$(python3 -c 'import json,sys; print(" ".join(sorted(i["id"] for i in json.load(open(sys.argv[1]))["blocked"])))' "$WORK/plan-before.json")" ]
t_ok $? "after rebuild the same items are due and blocked (holds and uses remade)"
daemon_stop
t_no_sanitizer "custosd ran without a sanitizer report" "$LOG"
t_done
