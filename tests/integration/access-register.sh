#!/bin/bash
# Who may do what, and the access register, through custosd's real control
# socket as real users (created here with useradd, removed at exit):
#   1. the store is not readable to the users; custosd alone opens it.
#   2. per rule, a refused case naming its rule (--json "rule") and an
#      allowed one: no-role, view-needs-approval, purpose-required,
#      copy-needs-approval, approval-pending, approver-role, own-request,
#      approval-other-case, approval-other-item, approval-other-action,
#      approval-not-yours, approval-denied, approval-expired,
#      file-for-outside-role, mark-conclusive-role, conclusive-only (a lawyer
#      gets only conclusive items), register-role.
#   3. a copy through the socket is the item's bytes.
#   4. every allowed view and copy is in the register (--json, --csv, --case),
#      with requester, kind, purpose, approval and approver; searches are
#      logged; verify and rebuild agree with the projection.
#   5. a reload (SIGHUP) gives a user a role at once.
. "$(dirname "$0")/lib.sh"
need_python3

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null; then
	echo "1..0 # SKIP needs root and useradd to make test users"
	exit 0
fi

C1='平司罚〔2026〕5号'
C2='平司罚〔2026〕6号'
P=cst$$
USERS=()
cleanup_users() {
	local u
	for u in "${USERS[@]}"; do userdel "$u" >/dev/null 2>&1; done
}
trap 'cleanup_users; t_cleanup' EXIT
for r in arch legal head rev aud none; do
	useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$P$r" || {
		echo "Bail out! cannot create test user $P$r"
		exit 1
	}
	USERS+=("$P$r")
done

chmod 0711 "$WORK"
mkdir -p "$WORK/in" "$WORK/run" "$WORK/out"
chmod 0755 "$WORK/run"
chmod 1777 "$WORK/out"
SOCK="$WORK/run/custosd.sock"

# as USER CMD...: the CLI as that user (real uid and gid), through the socket.
as() {
	local u=$P$1
	shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- \
		env -u CUSTOS_STORE CUSTOS_SOCKET="$SOCK" "$CUSTOS" "$@"
}
# refused USER RULE DESCRIPTION CMD...: exit 1 and --json names RULE.
refused() {
	local u=$1 rule=$2 d=$3 got
	shift 3
	as "$u" "$@" --json >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("rule"))' \
		"$WORK/last.out" 2>/dev/null)
	if [ $rc -eq 1 ] && [ "$got" = "$rule" ] && grep -q "rule $rule" "$WORK/last.err"; then
		t_ok 0 "$d: refused by $rule"
	else
		t_ok 1 "$d: refused by $rule (exit $rc, rule '$got')"
		sed 's/^/#   /' "$WORK/last.err" | head -5
	fi
}
# allowed USER DESCRIPTION CMD...: exit 0; the access entry's number is noted.
ENTRIES=()
allowed() {
	local u=$1 d=$2 e
	shift 2
	as "$u" "$@" --json >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	t_ok $rc "$d"
	[ $rc -ne 0 ] && sed 's/^/#   /' "$WORK/last.err" | head -5
	e=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("access",""))' \
		"$WORK/last.out" 2>/dev/null)
	[ -n "$e" ] && ENTRIES+=("$e")
	return $rc
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
	"$WORK/last.out" "$1"; }
# request USER ARGS...: files a request; its number in REQ.
request() {
	local u=$1
	shift
	REQ=
	as "$u" request "$@" --json >"$WORK/last.out" 2>"$WORK/last.err" && REQ=$(field request)
	[ -n "$REQ" ] || sed 's/^/#   /' "$WORK/last.err" | head -5
}

t_run "init" "$CUSTOS" init --station AC
# bad [roles] and [access] settings are refused, naming the line
printf '[store]\nroot = %s\n[inbox]\ndir = %s\n[roles]\nwang = boss\n' "$CUSTOS_STORE" \
	"$WORK/in" >"$WORK/bad.conf"
t_status 2 "a role that does not exist is refused" "$CUSTOSD" --config "$WORK/bad.conf" \
	--check-config
t_grep "... naming its line and the roles" "line 6: the role of 'wang' must be one of" \
	"$WORK/last.err"
printf '[store]\nroot = %s\n[inbox]\ndir = %s\n[access]\napprover = head, boss\n' \
	"$CUSTOS_STORE" "$WORK/in" >"$WORK/bad.conf"
t_status 2 "an [access] list with an unknown role is refused" "$CUSTOSD" --config \
	"$WORK/bad.conf" --check-config
for f in A B; do printf 'recording %s of case one\n' "$f" >"$WORK/in/$f.mp4"; done
printf 'recording of case two\n' >"$WORK/in/X.mp4"
for f in A B X; do
	c=$C1
	[ $f = X ] && c=$C2
	"$CUSTOS" ingest "$WORK/in/$f.mp4" --case "$c" --officer 3301-0457 >/dev/null ||
		fail "ingest $f"
	sha=$(digest "$WORK/in/$f.mp4")
	eval "ID_$f=AC-${sha:0:20}"
	rm -f "$WORK/in/$f.mp4"
done
printf 'recording A of case one\n' >"$WORK/A.orig"
{
	printf '[store]\nroot = %s\nstation = AC\n[inbox]\ndir = %s\n' "$CUSTOS_STORE" "$WORK/in"
	printf '[control]\nsocket = %s\nsocket_mode = 0666\n' "$SOCK"
	printf '[roles]\n%s = archivist\n%s = legal\n%s = head\n%s = reviewer\n' \
		"${P}arch" "${P}legal" "$(id -u "${P}head")" "${P}rev"
	printf '%s = auditor\n' "${P}aud"
} >"$WORK/custosd.conf"
daemon_spawn "$WORK/custosd.conf" "$WORK/custosd.log"
wait_until 60 test -S "$SOCK" || fail "custosd did not open its socket"
report "custosd starts with [roles] and its socket outside the store"

# 1. the store itself is closed to the users
t_status 3 "a user cannot open the store directly" as rev show "$ID_A" --store "$CUSTOS_STORE"
t_grep "... and is told to ask custosd" 'only its own user may; others ask custosd' "$WORK/last.err"
t_run "custos status finds the socket by CUSTOS_SOCKET" as rev status
BLOB=$(find "$CUSTOS_STORE/objects" -type f | head -1)
t_status 1 "a user cannot read a blob" setpriv --reuid="${P}rev" --regid="$(id -g "${P}rev")" \
	--init-groups -- cat "$BLOB"

# 2. the rules
refused none no-role "a user without a role views" view "$ID_A" --purpose look
allowed legal "legal staff view a record with a purpose" view "$ID_A" --purpose 'legal review'
refused legal purpose-required "legal staff view without a purpose" view "$ID_A"
refused rev view-needs-approval "a reviewer views without approval" view "$ID_A" --purpose x
refused legal copy-needs-approval "legal staff copy without approval" \
	get "$ID_A" -o "$WORK/out/l.bin"
request rev --case "$C1" --action view --purpose 'check the scene'
R_VIEW=$REQ
t_ok "$([ -n "$R_VIEW" ]; echo $?)" "a reviewer files a view request"
refused rev approval-pending "a view under a request not yet approved" \
	view "$ID_A" --approval "$R_VIEW"
refused rev approver-role "a reviewer approves" approve "$R_VIEW"
request head --case "$C1" --action view --purpose 'own look'
refused head own-request "the head approves his own request" approve "$REQ"
t_run "the head approves the reviewer's request" as head approve "$R_VIEW"
refused head request-decided "a decided request again" deny "$R_VIEW" --reason again
allowed rev "a view under the approval" view "$ID_A" --approval "$R_VIEW"
allowed rev "another item of the same case under it" view "$ID_B" --approval "$R_VIEW"
refused rev approval-other-case "an item of another case under it" \
	view "$ID_X" --approval "$R_VIEW"
refused rev approval-other-action "a copy under a view approval" \
	get "$ID_A" -o "$WORK/out/r.bin" --approval "$R_VIEW"
refused aud approval-not-yours "another user cites the approval" \
	view "$ID_A" --approval "$R_VIEW"
refused rev approval-unknown "an approval that does not exist" view "$ID_A" --approval 999999

request rev --case "$C1" --action copy --purpose 'court file' --items "$ID_B"
R_COPY=$REQ
t_run "the head approves the copy of one item" as head approve "$R_COPY"
refused rev approval-other-item "a copy of an item the approval does not name" \
	get "$ID_A" -o "$WORK/out/a.bin" --approval "$R_COPY"
allowed rev "a copy of the named item" get "$ID_B" -o "$WORK/out/b.bin" --approval "$R_COPY"
t_ok "$(cmp -s "$WORK/out/b.bin" <(printf 'recording B of case one\n'); echo $?)" \
	"the copy is the item's bytes"

request rev --case "$C1" --action view --purpose 'second look'
t_run "the head denies a request with a reason" as head deny "$REQ" --reason 'not needed'
refused rev approval-denied "a view under a denied request" view "$ID_A" --approval "$REQ"

request rev --case "$C1" --action view --purpose 'short look'
R_SHORT=$REQ
t_run "the head approves for a few seconds" \
	as head approve "$R_SHORT" --until "$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)"
t_status 2 "an approval cannot end in the past" \
	as head approve "$R_VIEW" --until 2020-01-01T00:00:00Z
# views let through before the period ended are in the register too
expired() {
	local e
	as rev view "$ID_A" --approval "$R_SHORT" --json >"$WORK/exp.out" 2>/dev/null
	e=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("access",""))' \
		"$WORK/exp.out" 2>/dev/null)
	[ -n "$e" ] && ENTRIES+=("$e")
	grep -q '"approval-expired"' "$WORK/exp.out"
}
wait_until 120 expired
t_ok $? "after its period the approval does not authorise (approval-expired)"

# outside requesters: filed by an archivist; a lawyer gets only conclusive items
refused rev file-for-outside-role "a reviewer files for a lawyer" request --case "$C1" \
	--action copy --purpose 'defence' --for lawyer --name '张律师' --licence 11101201010001
t_status 2 "a lawyer's request without a licence number is refused" as arch request \
	--case "$C1" --action copy --purpose 'defence' --for lawyer --name '张律师'
t_status 2 "a police request without a letter is refused" as arch request \
	--case "$C1" --action view --purpose 'investigation' --for police --name 'Pingyang PSB'
request arch --case "$C1" --action copy --purpose 'defence' --for lawyer --name '张律师' \
	--licence 11101201010001
R_LAW=$REQ
t_run "the head approves the lawyer's request" as head approve "$R_LAW"
refused arch conclusive-only "a lawyer's copy of an item not marked conclusive" \
	get "$ID_A" -o "$WORK/out/law.bin" --approval "$R_LAW"
refused rev mark-conclusive-role "a reviewer marks an item conclusive" \
	conclusive "$ID_A" --reason 'decision'
t_run "legal staff mark an item conclusive" as legal conclusive "$ID_A" --reason 'the decision'
allowed arch "the lawyer's copy of the conclusive item" \
	get "$ID_A" -o "$WORK/out/law.bin" --approval "$R_LAW"
refused arch conclusive-only "still not the other item" \
	get "$ID_B" -o "$WORK/out/law2.bin" --approval "$R_LAW"
t_ok "$(cmp -s "$WORK/out/law.bin" "$WORK/A.orig"; echo $?)" "the lawyer's copy is the bytes"
request arch --case "$C2" --action view --purpose 'inquiry' --for police --name 'Pingyang PSB' \
	--letter '平公（2026）81号'
R_POL=$REQ
t_run "the head approves the police request" as head approve "$R_POL"
allowed arch "the police view an item of their case" view "$ID_X" --approval "$R_POL"

# a search through the socket
t_run "a search through custosd" as rev search --case "$C1"
t_grep "the search finds the case's items" "$ID_A" "$WORK/last.out"

# 4. the register
refused rev register-role "a reviewer reads the register" register
t_run "the auditor reads the register" as aud register --json
cp "$WORK/last.out" "$WORK/reg.json"
missing=$(python3 - "$WORK/reg.json" "${ENTRIES[@]}" <<'EOF'
import json, sys
reg = {e["seq"]: e for e in json.load(open(sys.argv[1]))}
bad = [s for s in sys.argv[2:] if int(s) not in reg]
for e in reg.values():
    for k in ("action", "items", "purpose", "requester", "time", "actor"):
        if k not in e:
            bad.append("%s lacks %s" % (e["seq"], k))
    if e.get("approval") is not None and not e.get("approver", {}).get("name"):
        bad.append("%s lacks its approver" % e["seq"])
print(" ".join(str(b) for b in bad))
print(len(reg))
EOF
)
t_ok "$([ -n "${ENTRIES[*]}" ] && [ -z "$(echo "$missing" | head -1)" ]; echo $?)" \
	"every allowed access (${#ENTRIES[@]}) is in the register with its facts (${missing//$'\n'/; })"
t_ok "$([ "$(echo "$missing" | tail -1)" -eq "${#ENTRIES[@]}" ]; echo $?)" \
	"and nothing refused is in it"
python3 - "$WORK/reg.json" "$R_LAW" <<'EOF' >/dev/null
import json, sys
reg = json.load(open(sys.argv[1]))
law = [e for e in reg if e.get("approval") == int(sys.argv[2])]
assert law and law[0]["requester"]["kind"] == "lawyer"
assert law[0]["requester"]["licence"] == "11101201010001"
assert law[0]["approver"]["name"].endswith("head")
assert law[0]["actor"]["name"].endswith("arch")
EOF
t_ok $? "the lawyer's copy: kind, licence, approver and the archivist who filed it"
t_run "the register as CSV" as aud register --csv
t_ok "$([ "$(grep -c . "$WORK/last.out")" -ge 2 ] && head -1 "$WORK/last.out" |
	grep -q '^entry,time,action,user,uid,requester_kind'; echo $?)" "CSV has a header and rows"
t_run "the register of one case" as aud register --case '平司罚[2026]6号' --json
t_ok "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r and all(e["case"]==sys.argv[2] for e in r) else 1)' "$WORK/last.out" "$C2"; echo $?)" \
	"--case (another spelling) gives that case's entries only"
t_run "the register of the first case" as aud register --case "$C1" --json
t_ok "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if any(e["seq"]==int(sys.argv[2]) and e["approval"] is None for e in r) else 1)' "$WORK/last.out" "${ENTRIES[0]}"; echo $?)" \
	"--case lists a view without approval of one of the case's items"
t_run "the searches" as aud register --searches
t_grep "the search names who searched" "${P}rev" "$WORK/last.out"

# a reload gives a user a role at once
printf '%s = auditor\n' "${P}none" >>"$WORK/custosd.conf"
kill -HUP "$DPID"
wait_until 60 as none register --json >/dev/null 2>&1
t_ok $? "after a reload the new auditor reads the register"

daemon_stop
t_ok "$DRC" "custosd stops cleanly"
t_run "verify passes (the access table is the ledger's replay)" "$CUSTOS" verify
t_run "rebuild makes the catalog again" "$CUSTOS" rebuild
t_run "verify passes after the rebuild" "$CUSTOS" verify
t_done
