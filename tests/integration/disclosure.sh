#!/bin/bash
# Decisions' publication records (公开) and their withdrawal, through custosd's
# control socket, with the test clock (the failpoint builds and
# $CUSTOS_TEST_CLOCK) travelling years:
#   1. a natural person's decision is due for withdrawal exactly 2 years
#      after its publication (not a day before), an organisation's after 5;
#      the party comes from the case or --party; periods come from
#      [disclosure] (a reload with person = 3y gives 3 years).
#   2. a revoked decision is due at once; a withdrawn one is no longer due.
#   3. an exempt decision is never listed as published nor due.
#   4. mistakes are refused with a message naming them: unknown case,
#      published twice, withdraw of a decision not published or exempt, bad
#      or future time, no party known, revoke without a reason.
#   5. roles refused by name (no-role, publisher-role); [disclosure]
#      publishers opens publishing to another role on reload.
#   6. a bad [disclosure] setting is refused by name.
#   7. listing through the socket; verify passes and a rebuild gives the
#      same list and the same due list.
. "$(dirname "$0")/lib.sh"
need_python3
: "${CUSTOS_FP:?}" "${CUSTOSD_FP:?}"

CLOCK=$WORK/clock
export CUSTOS_TEST_CLOCK=$CLOCK
clock() { echo "$1" >"$CLOCK"; }
C=$CUSTOS_FP
DAEMON_BIN=$CUSTOSD_FP
ME=$(id -un)
P1='平司罚〔2024〕1号'  # person
P2='平司罚〔2024〕2号'  # organisation
P3='平司罚〔2024〕3号'  # person, revoked
P4='平司罚〔2024〕4号'  # person, exempt (a minor)
P5='平司罚〔2024〕5号'  # no party recorded
D='平司罚决〔2024〕1号'
D2='平司罚决〔2024〕2号'
PUB='2024-03-01T00:00:00+08:00'

# jq-less: py FILE EXPR: exit 0 when EXPR (r: the JSON of FILE) is true.
py() {
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
# due_is DESC CASE...: `custos disclosure due --json` lists exactly these cases, in order.
due_is() {
	local d=$1 want
	shift
	want=$(printf '%s\n' "$@")
	"$C" disclosure due --json >"$WORK/due.json" 2>"$WORK/last.err"
	got=$(python3 -c 'import json,sys; [print(e["case"]) for e in json.load(open(sys.argv[1]))]' "$WORK/due.json")
	[ "$got" = "$want" ]
	t_ok $? "$d"
	[ "$got" = "$want" ] || echo "#   due: $(echo $got)"
}
# refused_msg DESC TEXT CMD...: exit 2 and the message names TEXT.
refused_msg() {
	local d=$1 text=$2
	shift 2
	"$@" >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	[ $rc -eq 2 ] && grep -q -- "$text" "$WORK/last.err"
	t_ok $? "$d"
	[ $rc -eq 2 ] && grep -q -- "$text" "$WORK/last.err" || sed 's/^/#   /' "$WORK/last.err" | head -3
}

clock 2024-02-01T00:00:00Z
mkdir -p "$WORK/in"
t_run "a store" "$C" init --station disc
for c in "$P1:person" "$P2:organisation" "$P3:person" "$P4:person"; do
	"$C" case open "${c%%:*}" --party "${c#*:}" >/dev/null || t_ok 1 "case ${c%%:*}"
done
"$C" case open "$P5" >/dev/null || t_ok 1 "case $P5"
daemon_conf "$WORK/d.conf" disc inbox "$WORK/in"
printf '[roles]\n%s = legal\n' "$ME" >>"$WORK/d.conf"
daemon_start "$WORK/d.conf" "$WORK/d.log" || {
	echo "Bail out! custosd did not start"
	cat "$WORK/d.log"
	exit 1
}

clock 2024-03-02T00:00:00Z
t_run "publish a natural person's decision (party from the case)" \
	"$C" disclosure publish --case "$P1" --decision "$D" --at "$PUB"
t_run "publish an organisation's decision" \
	"$C" disclosure publish --case "$P2" --decision "$D" --at "$PUB"
t_run "publish a decision to be revoked" \
	"$C" disclosure publish --case "$P3" --decision "$D" --at "$PUB"
t_run "an exempt decision (a minor)" \
	"$C" disclosure publish --case "$P4" --decision "$D" --exempt minor
t_run "--party where the case has none" \
	"$C" disclosure publish --case "$P5" --decision "$D" --party organisation --at "$PUB"

# mistakes, each named
refused_msg "unknown case" "no such case" \
	"$C" disclosure publish --case '平司罚〔2024〕99号' --decision "$D"
refused_msg "list of an unknown case" "no such case" \
	"$C" disclosure list --case '平司罚〔2024〕99号'
refused_msg "published twice (the bracket variant is the same decision)" "publication record already" \
	"$C" disclosure publish --case "$P1" --decision '平司罚决[2024]1号'
refused_msg "withdraw of a decision not published" "no publication record" \
	"$C" disclosure withdraw --case "$P1" --decision "$D2"
refused_msg "withdraw of an exempt decision" "exempt" \
	"$C" disclosure withdraw --case "$P4" --decision "$D"
refused_msg "a time that is not one" "--at must be a time" \
	"$C" disclosure publish --case "$P1" --decision "$D2" --at 2024-13-45
refused_msg "a time to come" "in the future" \
	"$C" disclosure publish --case "$P1" --decision "$D2" --at 2030-01-01T00:00:00Z
refused_msg "no party known" "records no party" \
	"$C" disclosure publish --case "$P5" --decision "$D2"
refused_msg "an unknown exemption" "minor, state-secret" \
	"$C" disclosure publish --case "$P1" --decision "$D2" --exempt secret
refused_msg "another reason for exemption, not said" "in words" \
	"$C" disclosure publish --case "$P1" --decision "$D2" --exempt other
refused_msg "revoke without a reason" "says why" \
	"$C" disclosure revoke --case "$P3" --decision "$D"

t_run "list --json" "$C" disclosure list --json
cp "$WORK/last.out" "$WORK/list1.json"
t_ok "$(py "$WORK/list1.json" '[e["state"] for e in r] == ["published", "published", "published", "exempt", "published"]'; echo $?)" \
	"four published, one exempt"
t_ok "$(py "$WORK/list1.json" 'r[0]["party"] == "person" and r[0]["years"] == 2 and r[0]["withdraw_by"] == "2026-02-28T16:00:00.000Z" and r[1]["withdraw_by"] == "2029-02-28T16:00:00.000Z"'; echo $?)" \
	"withdrawal dates: +2 years (person), +5 (organisation), same local date"
t_ok "$(py "$WORK/list1.json" '"published" not in r[3] and "withdraw_by" not in r[3] and r[3]["exempt"] == "minor"'; echo $?)" \
	"the exempt decision has no publication time and no withdrawal date"
t_run "list --csv" "$C" disclosure list --csv --case "$P4"
t_ok "$(grep -c . "$WORK/last.out" | grep -qx 2; echo $?)" "--csv --case: a header and the case's one record"
due_is "nothing due a month after publication"

clock 2024-06-01T10:00:00Z
t_run "revoke" "$C" disclosure revoke --case "$P3" --decision "$D" --reason '复议撤销'
refused_msg "revoked twice" "revoked already" \
	"$C" disclosure revoke --case "$P3" --decision "$D" --reason again
due_is "a revoked decision is due at once" "$P3"
t_ok "$(py "$WORK/due.json" 'r[0]["why_due"] == "revoked" and r[0]["state"] == "revoked"'; echo $?)" \
	"due because revoked"

clock 2026-02-27T16:00:00Z
due_is "a natural person's decision is not due a day before 2 years" "$P3"
clock 2026-02-28T16:00:00Z
due_is "... and due at 2 years, oldest first" "$P3" "$P1"
t_ok "$(py "$WORK/due.json" 'r[1]["why_due"] == "period-over"'; echo $?)" "due because its period is over"
t_run "withdraw the revoked one" "$C" disclosure withdraw --case "$P3" --decision "$D"
due_is "a withdrawn decision is no longer due" "$P1"
refused_msg "withdrawn twice" "withdrawn already" \
	"$C" disclosure withdraw --case "$P3" --decision "$D"
t_run "withdraw the person's" "$C" disclosure withdraw --case "$P1" --decision "$D"
due_is "nothing due once both are withdrawn"

clock 2029-02-27T16:00:00Z
due_is "an organisation's decision is not due a day before 5 years"
clock 2029-02-28T16:00:00Z
due_is "... and due at 5 years" "$P2" "$P5"
clock 2031-01-01T00:00:00Z
due_is "the exempt decision is never due" "$P2" "$P5"
t_run "list" "$C" disclosure list --case "$P4" --json
t_ok "$(py "$WORK/last.out" 'r[0]["state"] == "exempt"'; echo $?)" "the exempt decision is still listed as exempt"

# listing through the socket (no store given)
env -u CUSTOS_STORE CUSTOS_SOCKET="$CUSTOS_STORE/custosd.sock" "$C" disclosure due --json \
	>"$WORK/sock.json" 2>"$WORK/last.err"
t_ok "$(cmp -s "$WORK/sock.json" "$WORK/due.json"; echo $?)" "due through the socket is the same list"

# roles
sed -i "s/^$ME = legal\$/$ME = archivist/" "$WORK/d.conf"
kill -HUP "$DPID"
wait_until 60 grep -q "configuration reloaded" "$WORK/d.log"
"$C" disclosure publish --case "$P1" --decision "$D2" --json >"$WORK/last.out" 2>"$WORK/last.err"
rc=$?
t_ok "$([ $rc -eq 1 ] && grep -q "rule publisher-role" "$WORK/last.err" && py "$WORK/last.out" 'r["rule"] == "publisher-role"'; echo $?)" \
	"an archivist may not publish: refused by rule publisher-role"
"$C" disclosure withdraw --case "$P2" --decision "$D" >/dev/null 2>"$WORK/last.err"
t_ok "$([ $? -eq 1 ] && grep -q "rule publisher-role" "$WORK/last.err"; echo $?)" \
	"nor withdraw"
printf '[disclosure]\npublishers = archivist\nperson = 3y\n' >>"$WORK/d.conf"
: >"$WORK/d.log"
kill -HUP "$DPID"
wait_until 60 grep -q "configuration reloaded" "$WORK/d.log"
t_run "[disclosure] publishers = archivist: the archivist publishes" \
	"$C" disclosure publish --case "$P1" --decision "$D2" --at "$PUB"
"$C" disclosure list --case "$P1" --json >"$WORK/last.out"
t_ok "$(py "$WORK/last.out" 'r[1]["years"] == 3 and r[1]["withdraw_by"] == "2027-02-28T16:00:00.000Z"'; echo $?)" \
	"[disclosure] person = 3y: withdrawn 3 years after"
sed -i "/^$ME = archivist\$/d" "$WORK/d.conf"
: >"$WORK/d.log"
kill -HUP "$DPID"
wait_until 60 grep -q "configuration reloaded" "$WORK/d.log"
"$C" disclosure revoke --case "$P2" --decision "$D" --reason x >/dev/null 2>"$WORK/last.err"
t_ok "$([ $? -eq 1 ] && grep -q "rule no-role" "$WORK/last.err"; echo $?)" \
	"a user without a role: refused by rule no-role"
env -u CUSTOS_STORE CUSTOS_SOCKET="$CUSTOS_STORE/custosd.sock" "$C" disclosure list \
	>/dev/null 2>"$WORK/last.err"
t_ok "$([ $? -eq 1 ] && grep -q "rule no-role" "$WORK/last.err"; echo $?)" \
	"nor list through the socket"

# a bad [disclosure] setting is named
for kv in "person = 2" "organisation = 0y" "publishers = clerk"; do
	{ cat "$WORK/d.conf"; printf '[disclosure]\n%s\n' "$kv"; } >"$WORK/bad.conf"
	"$CUSTOSD_FP" --config "$WORK/bad.conf" --check-config >/dev/null 2>"$WORK/last.err"
	rc=$?
	t_ok "$([ $rc -ne 0 ] && grep -q "${kv%% =*} must" "$WORK/last.err"; echo $?)" \
		"custosd refuses [disclosure] $kv, naming it"
done

daemon_stop
t_ok "$DRC" "custosd stops cleanly"
"$C" disclosure list --json >"$WORK/list-before.json"
"$C" disclosure due --json >"$WORK/due-before.json"
t_run "verify passes (the disclosure table is the ledger's replay)" "$C" verify
t_run "rebuild" "$C" rebuild
"$C" disclosure list --json >"$WORK/list-after.json"
"$C" disclosure due --json >"$WORK/due-after.json"
t_ok "$(cmp -s "$WORK/list-before.json" "$WORK/list-after.json" &&
	cmp -s "$WORK/due-before.json" "$WORK/due-after.json"; echo $?)" \
	"a rebuild gives the same list and the same due list"
t_ok "$(py "$WORK/due-after.json" 'len(r) == 3'; echo $?)" "and it holds the three decisions due in 2031"
t_done
