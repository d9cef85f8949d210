#!/bin/bash
# Exports (offline carriers): a case file with a UTF-8 number written as a
# BagIt bag under an approved export request (filed through custosd's real
# socket by the store's user, approved by a real head user), then:
#   1. an export without an approval is refused naming export-needs-approval,
#      and writes nothing;
#   2. inside the bag `sha256sum -c` passes for manifest-sha256.txt and
#      tagmanifest-sha256.txt; Payload-Oxum matches data/; bag-info.txt names
#      the case and cites the register entry, which the register shows;
#      catalog.csv neutralises a formula cell;
#   3. custos verify-bag passes; a flipped byte in a payload file, a removed
#      payload file, an edited record (also with its tag manifest line
#      rewritten: the tag manifest is signed), an edited bag-info.txt and an
#      added file each fail it, naming the item or file;
#   4. a non-empty destination is refused;
#   5. a real archivist user exports through custosd's socket (refused
#      without approval, and with another user's approval), the bag checks
#      out and is written by the user; export-open gives nothing without an
#      export on the connection; on a terminal it shows its progress (not
#      otherwise); a crash while the bag is made leaves only
#      its .partial directory; stats counts the export by requester kind;
#   6. with --access-copies (a case with one MP4 clip made by ffmpeg, its
#      access copy made by `custos media process`), through the socket and
#      directly: the copy is data/access/<id>.mp4, in the manifest, Oxum and
#      catalogue, verify-bag passes, a flipped byte in it (or another copy
#      with its manifest line rewritten) fails naming the item; export-open
#      of a copy is refused in an export that did not ask for copies; a copy
#      missing from the store stops the export naming the item; fetching the
#      access copy or poster (`custos media get`) through the socket and
#      directly is a view under an approval, refused without one naming the
#      rule, and in the register with the derivative's kind;
#   7. a socket export of a case of 2000 items is planned off custosd's loop:
#      while its plan is parked (test build), status answers; a connection
#      closed while its export is planned leaves custosd running.
. "$(dirname "$0")/lib.sh"
need_python3

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null; then
	echo "1..0 # SKIP needs root and useradd to make a test user"
	exit 0
fi

C1='平司罚〔2026〕7号'
C2='平司罚〔2026〕8号'
P=cse$$
HEAD=${P}head
ARCH=${P}arch
trap 'userdel "$HEAD" >/dev/null 2>&1; userdel "$ARCH" >/dev/null 2>&1; t_cleanup' EXIT
for u in "$HEAD" "$ARCH"; do
	useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$u" || {
		echo "Bail out! cannot create test user $u"
		exit 1
	}
done
# as USER CMD...: the CLI as that user, through the socket only
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- env -u CUSTOS_STORE "$CUSTOS" "$@"
}
chmod 0711 "$WORK"
mkdir -p "$WORK/in" "$WORK/run" "$WORK/out"
chmod 0755 "$WORK/run"
chmod 1777 "$WORK/out"
SOCK="$WORK/run/custosd.sock"
export CUSTOS_SOCKET=$SOCK
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
	"$WORK/last.out" "$1"; }

t_run "init" "$CUSTOS" init --station EX
printf 'first recording\n' >"$WORK/in/a.MP4"
printf 'second recording, longer\n' >"$WORK/in/=HYPERLINK(x).mp4"
printf 'another case\n' >"$WORK/in/x.mp4"
for f in a.MP4 '=HYPERLINK(x).mp4' x.mp4; do
	c=$C1
	[ "$f" = x.mp4 ] && c=$C2
	"$CUSTOS" ingest "$WORK/in/$f" --case "$c" --officer 3301-0457 >/dev/null || fail "ingest $f"
done
sha=$(digest "$WORK/in/a.MP4")
ID_A=EX-${sha:0:20}
sha=$(digest "$WORK/in/=HYPERLINK(x).mp4")
ID_F=EX-${sha:0:20}
report "three items ingested, two in case $C1"

# 1. no approval: refused by its rule, nothing written
before=$(ledger_size)
"$CUSTOS" export --case "$C1" --to "$WORK/bag0" --purpose 'court' --json >"$WORK/last.out" \
	2>"$WORK/last.err"
rc=$?
t_ok "$([ $rc -eq 1 ] && [ "$(field rule)" = export-needs-approval ]; echo $?)" \
	"an export without an approval is refused (exit $rc) naming export-needs-approval"
t_grep "... and says so to the operator" 'refused by rule export-needs-approval' "$WORK/last.err"
t_ok "$([ ! -e "$WORK/bag0" ] && [ -z "$(ls -A "$WORK" | grep '^\.bag0')" ]; echo $?)" \
	"... and writes nothing"
t_ok "$([ "$(ledger_size)" -eq "$before" ]; echo $?)" "... not even a register entry"

# an approved export request: filed by the store's user through the socket, approved by head
{
	printf '[store]\nroot = %s\nstation = EX\n[inbox]\ndir = %s\n' "$CUSTOS_STORE" "$WORK/in2"
	printf '[control]\nsocket = %s\nsocket_mode = 0666\n' "$SOCK"
	printf '[roles]\n0 = archivist\n%s = head\n%s = archivist\n' "$(id -u "$HEAD")" "$ARCH"
} >"$WORK/custosd.conf"
mkdir -p "$WORK/in2"
daemon_spawn "$WORK/custosd.conf" "$WORK/custosd.log"
wait_until 60 test -S "$SOCK" || fail "custosd did not open its socket"
report "custosd starts"
t_run "the store's user files an export request" \
	"$CUSTOS" request --case "$C1" --action export --purpose 'court hearing' --json
REQ=$(field request)
t_run "the head approves it" as "$HEAD" approve "$REQ"
daemon_stop
t_ok "$DRC" "custosd stops (it holds the store)"

# 2. the export and its bag
BAG=$WORK/bag
mkdir "$BAG"
t_run "the export under the approval (into an empty directory)" "$CUSTOS" export --case "$C1" \
	--to "$BAG" --purpose 'court hearing' --approval "$REQ" --json
ENTRY=$(field register_entry)
t_ok "$([ "$(field items)" = 2 ]; echo $?)" "two items exported"
t_run "sha256sum -c manifest-sha256.txt inside the bag" \
	sh -c "cd '$BAG' && sha256sum -c --strict manifest-sha256.txt"
t_run "sha256sum -c tagmanifest-sha256.txt inside the bag" \
	sh -c "cd '$BAG' && sha256sum -c --strict tagmanifest-sha256.txt"
n=$(find "$BAG/data" -type f | wc -l)
b=$(find "$BAG/data" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
t_grep "Payload-Oxum is data/'s bytes.files ($b.$n)" "^Payload-Oxum: $b\.$n\$" "$BAG/bag-info.txt"
t_grep "bag-info.txt: External-Identifier is the case number" \
	"^External-Identifier: $C1\$" "$BAG/bag-info.txt"
t_grep "bag-info.txt cites the register entry ($ENTRY)" "^Export-Register-Entry: $ENTRY\$" \
	"$BAG/bag-info.txt"
t_grep "bag-info.txt names the approval and the purpose" \
	"^Export-Approval: $REQ\$" "$BAG/bag-info.txt"
t_grep "catalog.csv writes a formula cell as text" "^$ID_F,.*,'=HYPERLINK\(x\)\.mp4," \
	"$BAG/catalog.csv"
t_ok "$(ls "$BAG/data" | grep -qv "^EX-[0-9a-f]\{20\}\(\.mp4\)\?$"; [ $? -eq 1 ]; echo $?)" \
	"payload files are named by item id and a clean extension"
t_ok "$(ls -A "$WORK" | grep -q partial; [ $? -eq 1 ]; echo $?)" "no partial bag is left"
t_run "custos verify-bag passes" "$CUSTOS" verify-bag "$BAG"
t_grep "... citing the register entry" "the export is register entry $ENTRY" "$WORK/last.out"

daemon_spawn "$WORK/custosd.conf" "$WORK/custosd.log"
wait_until 60 test -S "$SOCK" || fail "custosd did not open its socket again"
report "custosd starts again"
as "$HEAD" register --case "$C1" --json >"$WORK/reg.json" 2>"$WORK/last.err"
python3 - "$WORK/reg.json" "$ENTRY" "$REQ" "$ID_A" "$ID_F" <<'EOF'
import json, sys
reg = {e["seq"]: e for e in json.load(open(sys.argv[1]))}
e = reg[int(sys.argv[2])]
assert e["action"] == "export" and e["approval"] == int(sys.argv[3])
assert sorted(e["items"]) == sorted(sys.argv[4:6])
EOF
t_ok $? "the register shows the export entry with its approval and both items"
Y=$(python3 -c 'import json,sys; e=[e for e in json.load(open(sys.argv[1]))
	if e["seq"] == int(sys.argv[2])][0]; print(e["time"][:4], e["requester"]["kind"])' \
	"$WORK/reg.json" "$ENTRY")
KIND=${Y#* }
Y=${Y%% *}
"$CUSTOS" stats --year "$Y" --json >"$WORK/stats.json" 2>"$WORK/last.err"
python3 - "$WORK/stats.json" "$KIND" <<'EOF'
import json, sys
k = json.load(open(sys.argv[1]))["accesses_by_requester_kind"][sys.argv[2]]
assert k["export"] == 1 and k["accesses"] == 1, k
EOF
t_ok $? "custos stats counts the export under its requester kind ($KIND)"
t_run "custos stats --csv" "$CUSTOS" stats --year "$Y" --csv
t_grep "... has a requester_kind row" "^requester_kind,$KIND,1,"$'\r'"\$" "$WORK/last.out"

# a user of the socket exports: custosd does the store's part, the bytes come through it
as "$ARCH" export --case "$C1" --to "$WORK/out/s0" --purpose 'court' --json >"$WORK/last.out" \
	2>"$WORK/last.err"
rc=$?
t_ok "$([ $rc -eq 1 ] && [ "$(field rule)" = export-needs-approval ] &&
	[ ! -e "$WORK/out/s0" ]; echo $?)" \
	"a socket user's export without approval is refused by export-needs-approval (exit $rc)"
as "$ARCH" request --case "$C1" --action export --purpose 'court file' --json \
	>"$WORK/last.out" 2>"$WORK/last.err"
R_ARCH=$(field request)
t_run "the head approves the archivist's export request" as "$HEAD" approve "$R_ARCH"
t_status 1 "another user cannot cite it (approval-not-yours)" "$CUSTOS" export --socket "$SOCK" \
	--case "$C1" --to "$WORK/out/s1" --purpose 'court file' --approval "$R_ARCH"
t_run "the archivist exports through custosd" as "$ARCH" export --case "$C1" \
	--to "$WORK/out/sbag" --purpose 'court file' --approval "$R_ARCH" --json
cp "$WORK/last.err" "$WORK/sbag.err"
S_ENTRY=$(field register_entry)
t_run "... and the bag checks out" "$CUSTOS" verify-bag "$WORK/out/sbag"
t_ok "$(cmp -s "$WORK/out/sbag/data/$(cd "$BAG/data" && ls "$ID_A"*)" "$BAG/data/$(cd "$BAG/data" &&
	ls "$ID_A"*)"; echo $?)" "... with the same bytes as the owner's bag"
t_grep "... citing its own register entry ($S_ENTRY)" "^Export-Register-Entry: $S_ENTRY\$" \
	"$WORK/out/sbag/bag-info.txt"
t_ok "$([ "$(stat -c %U "$WORK/out/sbag/data")" = "$ARCH" ]; echo $?)" \
	"... written by the user, not by custosd"
t_ok "$(grep -q exporting: "$WORK/sbag.err"; [ $? -eq 1 ]; echo $?)" \
	"... showing no progress when its stderr is not a terminal"
b=$(sed -n 's/^Payload-Oxum: \([0-9]*\)\..*/\1/p' "$WORK/out/sbag/bag-info.txt")
script -qec "setpriv --reuid=$ARCH --regid=$(id -g "$ARCH") --init-groups -- env -u CUSTOS_STORE \
	CUSTOS_SOCKET='$SOCK' '$CUSTOS' export --case '$C1' --to '$WORK/out/tbag' \
	--purpose 'court file' --approval $R_ARCH" /dev/null >"$WORK/tty.out" 2>&1
t_ok "$(grep -q "exporting: $b of $b bytes" "$WORK/tty.out" && [ -f "$WORK/out/tbag/bagit.txt" ]
	echo $?)" "on a terminal the socket export shows its progress, up to $b of $b bytes"
python3 - "$SOCK" "$ID_A" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1])
f = s.makefile()
s.sendall(json.dumps({"cmd": "export-open", "id": sys.argv[2]}).encode() + b"\n")
assert json.loads(f.readline())["ok"] is False
s.sendall(b'{"cmd": "read", "offset": 0}\n')
assert json.loads(f.readline())["ok"] is False
EOF
t_ok $? "no item's bytes through export-open without an export on the connection"
daemon_stop
t_ok "$DRC" "custosd stops"

# 3. tampering, each on a fresh copy: verify-bag fails naming the item or file
tampered() { # NAME WANT-PATTERN CMD...: CMD changes $T (a copy of the bag)
	local name=$1 want=$2
	shift 2
	T=$WORK/t-$name
	cp -a "$BAG" "$T"
	(cd "$T" && "$@") || fail "cannot tamper ($name)"
	"$CUSTOS" verify-bag "$T" >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	if [ $rc -eq 1 ] && grep -Eq -- "$want" "$WORK/last.out"; then
		t_ok 0 "verify-bag: $name fails naming it"
	else
		t_ok 1 "verify-bag: $name fails naming it (exit $rc)"
		sed 's/^/#   /' "$WORK/last.out" "$WORK/last.err" | head -10
	fi
}
FA=$(cd "$BAG/data" && ls "$ID_A"*)
flip() { python3 -c 'import sys
f = open(sys.argv[1], "r+b"); b = f.read(1); f.seek(0); f.write(bytes([b[0] ^ 1]))' "$1"; }
tampered "a flipped byte in a payload file" "item $ID_A: data/$FA: its SHA-256" flip "data/$FA"
tampered "a removed payload file" "item $ID_A: data/$FA: missing" rm "data/$FA"
tampered "an edited record" "item $ID_F: records/$ID_F.json" \
	sed -i 's/3301-0457/3301-9999/' "records/$ID_F.json"
tampered "an edited bag-info.txt" "bag-info.txt: its SHA-256" \
	sed -i 's/^Export-Purpose: .*/Export-Purpose: something else/' bag-info.txt
tampered "an added payload file" "data/extra.bin: not listed" \
	sh -c 'echo x >data/extra.bin'
tampered "a record whose digest was changed with its tag manifest line" \
	"item $ID_A: records/$ID_A.json: the record's SHA-256" sh -c "
	python3 - records/$ID_A.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r['sha256'] = '0' * 64
json.dump(r, open(sys.argv[1], 'w'))
PY
	s=\$(sha256sum records/$ID_A.json | cut -c1-64)
	sed -i \"s|^[0-9a-f]*  records/$ID_A.json\$|\$s  records/$ID_A.json|\" tagmanifest-sha256.txt"

tampered "an edited record with its tag manifest line rewritten" \
	"tagmanifest-sha256.txt: it is not the tag manifest signed by the bag's key" sh -c "
	sed -i 's/3301-0457/3301-9999/' records/$ID_F.json
	s=\$(sha256sum records/$ID_F.json | cut -c1-64)
	sed -i \"s|^[0-9a-f]*  records/$ID_F.json\$|\$s  records/$ID_F.json|\" tagmanifest-sha256.txt"
"$CUSTOS" verify-bag "$WORK/t-a removed payload file" --json >"$WORK/last.out" 2>/dev/null
python3 - "$WORK/last.out" "$ID_A" "$FA" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is False
assert {"item": sys.argv[2], "file": "data/" + sys.argv[3]} in \
	[{"item": p.get("item"), "file": p.get("file")} for p in j["problems"]], j["problems"]
EOF
t_ok $? "verify-bag --json lists the problem with its item and file"

# a crash while the bag is made (at its last file, and just before the
# rename) leaves only the .partial directory: DIR is never a half bag
for point in bag-file bag-rename; do
	n=$(CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" export --case "$C1" --to "$WORK/trace" \
		--purpose 'court hearing' --approval "$REQ" 2>&1 >/dev/null |
		awk -v p="$point" '$1 == "failpoint" && $3 == p {n = $2} END {print n}')
	rm -rf "$WORK/trace"
	CUSTOS_CRASH_AT=$n "$CUSTOS_FP" export --case "$C1" --to "$WORK/crash" \
		--purpose 'court hearing' --approval "$REQ" >/dev/null 2>&1
	rc=$?
	t_ok "$([ -n "$n" ] && [ $rc -eq 99 ] && [ ! -e "$WORK/crash" ] &&
		ls -d "$WORK"/.crash.partial-* >/dev/null 2>&1; echo $?)" \
		"a crash at the last $point (point $n, exit $rc) leaves no bag, only .crash.partial-*"
	rm -rf "$WORK"/.crash.partial-*
done
t_run "the export after the crash makes the bag" "$CUSTOS" export --case "$C1" \
	--to "$WORK/crash" --purpose 'court hearing' --approval "$REQ"
t_run "... and it checks out" "$CUSTOS" verify-bag "$WORK/crash"

# 4. a destination that is not empty
mkdir "$WORK/full" && echo x >"$WORK/full/keep"
before=$(ledger_size)
t_status 2 "an export into a non-empty directory is refused" "$CUSTOS" export --case "$C1" \
	--to "$WORK/full" --purpose 'court hearing' --approval "$REQ"
t_grep "... saying so" "is not an empty directory" "$WORK/last.err"
t_ok "$([ "$(ls -A "$WORK/full")" = keep ]; echo $?)" "... and leaves it as it was"
t_ok "$([ "$(ledger_size)" -eq "$before" ]; echo $?)" "... before any register entry"
t_ok "$(ls -A "$WORK" | grep -q partial; [ $? -eq 1 ]; echo $?)" "... and leaves no partial bag"

# 6. access copies in the bag (skipped without ffmpeg)
if command -v ffmpeg >/dev/null; then
	C3='平司罚〔2026〕9号'
	mkdir -p "$WORK/clip"
	ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=10:duration=1 \
		-c:v libx264 -pix_fmt yuv420p "$WORK/clip/clip.mp4" || fail "ffmpeg cannot make the clip"
	"$CUSTOS" ingest "$WORK/clip/clip.mp4" --case "$C3" --officer 3301-0457 >/dev/null ||
		fail "ingest clip"
	ID_V=EX-$(digest "$WORK/clip/clip.mp4" | cut -c1-20)
	t_run "custos media process makes the clip's access copy" \
		env CUSTOS_PROBE="$CUSTOS_PROBE_BIN" "$CUSTOS" media process "$ID_V"
	daemon_spawn "$WORK/custosd.conf" "$WORK/custosd.log"
	wait_until 60 test -S "$SOCK" || fail "custosd did not open its socket (copies)"
	"$CUSTOS" request --case "$C3" --action export --purpose 'court' --json >"$WORK/last.out"
	R3=$(field request)
	as "$ARCH" request --case "$C3" --action export --purpose 'court' --json >"$WORK/last.out"
	R3A=$(field request)
	t_run "the head approves the owner's export request of case $C3" as "$HEAD" approve "$R3"
	t_run "the head approves the archivist's" as "$HEAD" approve "$R3A"
	t_run "the archivist exports with --access-copies through custosd" as "$ARCH" export \
		--case "$C3" --to "$WORK/out/vbag" --purpose 'court' --approval "$R3A" --access-copies
	t_ok "$([ -f "$WORK/out/vbag/data/access/$ID_V.mp4" ]; echo $?)" \
		"... the access copy is data/access/$ID_V.mp4"
	t_run "... and the bag checks out" "$CUSTOS" verify-bag "$WORK/out/vbag"
	python3 - "$SOCK" "$C3" "$R3" "$ID_V" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1])
f = s.makefile()
def call(req):
	s.sendall(json.dumps(req).encode() + b"\n")
	return json.loads(f.readline())
a = call({"cmd": "export", "case": sys.argv[2], "purpose": "court",
	"approval": int(sys.argv[3])})
assert a["ok"] is True, a
o = call({"cmd": "export-open", "id": sys.argv[4]})
assert o["ok"] is True, o
o = call({"cmd": "export-open", "id": sys.argv[4], "kind": "access"})
assert o["ok"] is False, o
EOF
	t_ok $? "export-open of an access copy is refused in an export without copies"
	# fetching a derivative is an access: a view (access copy, poster) or a copy (preservation)
	as "$ARCH" media get "$ID_V" --access -o "$WORK/out/acc0.mp4" >"$WORK/last.out" \
		2>"$WORK/last.err"
	rc=$?
	t_ok "$([ $rc -eq 1 ] && [ ! -e "$WORK/out/acc0.mp4" ] &&
		grep -q 'refused by rule view-needs-approval' "$WORK/last.err"; echo $?)" \
		"a socket user's media get --access without approval is refused by view-needs-approval"
	as "$ARCH" request --case "$C3" --action view --purpose 'review' --json >"$WORK/last.out"
	RV=$(field request)
	"$CUSTOS" request --case "$C3" --action view --purpose 'review' --json >"$WORK/last.out"
	RVO=$(field request)
	t_run "the head approves the archivist's view request" as "$HEAD" approve "$RV"
	t_run "the head approves the owner's view request" as "$HEAD" approve "$RVO"
	t_run "the archivist fetches the access copy through custosd under it" as "$ARCH" media \
		get "$ID_V" --access --approval "$RV" -o "$WORK/out/acc.mp4" --json
	M_ENTRY=$(field access)
	AS=$(python3 -c 'import json,sys
print([d["sha256"] for d in json.load(open(sys.argv[1]))["derivatives"]
	if d["kind"] == "access" and d["status"] == "ok"][-1])' "$WORK/out/vbag/records/$ID_V.json")
	t_ok "$([ "$(digest "$WORK/out/acc.mp4")" = "$AS" ]; echo $?)" \
		"... the file is the recorded access copy"
	before=$(ledger_size)
	t_status 2 "a copy that is not there (the kept MP4 has no preservation copy) is said" \
		as "$ARCH" media get "$ID_V" --preservation --approval "$RV" -o "$WORK/out/p.mkv"
	t_grep "... naming the item" "item $ID_V has no preservation copy" "$WORK/last.err"
	t_ok "$([ "$(ledger_size)" -eq "$before" ]; echo $?)" "... with no register entry"
	as "$HEAD" register --case "$C3" --json >"$WORK/reg.json" 2>"$WORK/last.err"
	python3 - "$WORK/reg.json" "$M_ENTRY" "$RV" "$ID_V" <<'EOF2'
import json, sys
e = {e["seq"]: e for e in json.load(open(sys.argv[1]))}[int(sys.argv[2])]
assert e["action"] == "view" and e["derivative"] == "access", e
assert e["approval"] == int(sys.argv[3]) and e["items"] == [sys.argv[4]], e
EOF2
	t_ok $? "the register shows the fetch: a view of the access copy, its approval, the item"
	as "$HEAD" register --case "$C3" >"$WORK/last.out" 2>"$WORK/last.err"
	t_grep "... and says so in text" "^#$M_ENTRY .* view \(access copy\) by $ARCH" "$WORK/last.out"
	daemon_stop
	t_ok "$DRC" "custosd stops (copies)"
	before=$(ledger_size)
	t_status 1 "the store's user fetching the poster directly without approval is refused" \
		"$CUSTOS" media get "$ID_V" --poster -o "$WORK/poster0.jpg"
	t_grep "... naming the rule" "refused by rule view-needs-approval" "$WORK/last.err"
	t_ok "$([ "$(ledger_size)" -eq "$before" ] && [ ! -e "$WORK/poster0.jpg" ]; echo $?)" \
		"... writing nothing"
	t_run "the store's user fetches the poster directly under his view approval" \
		"$CUSTOS" media get "$ID_V" --poster --approval "$RVO" -o "$WORK/poster.jpg" --json
	P_ENTRY=$(field access)
	"$CUSTOS" log --json >"$WORK/log.json" 2>/dev/null
	python3 - "$WORK/log.json" "$P_ENTRY" "$RVO" "$ID_V" <<'EOF2'
import json, sys
e = json.load(open(sys.argv[1]))[int(sys.argv[2])]
assert e["event"] == "access" and e["action"] == "view" and e["derivative"] == "poster", e
assert e["approval"] == int(sys.argv[3]) and e["items"] == [sys.argv[4]], e
EOF2
	t_ok $? "... the ledger's register entry names the poster, the approval and the item"
	VBAG=$WORK/vbag
	t_run "a direct export with --access-copies" "$CUSTOS" export --case "$C3" --to "$VBAG" \
		--purpose 'court' --approval "$R3" --access-copies
	ASHA=$(python3 -c 'import json,sys
print([d["sha256"] for d in json.load(open(sys.argv[1]))["derivatives"]
	if d["kind"] == "access" and d["status"] == "ok"][-1])' "$VBAG/records/$ID_V.json")
	t_ok "$([ "$(digest "$VBAG/data/access/$ID_V.mp4")" = "$ASHA" ]; echo $?)" \
		"... the access copy is data/access/$ID_V.mp4, the record's derivative"
	t_grep "... listed in manifest-sha256.txt" "^$ASHA  data/access/$ID_V.mp4\$" \
		"$VBAG/manifest-sha256.txt"
	t_run "... sha256sum -c manifest-sha256.txt passes" \
		sh -c "cd '$VBAG' && sha256sum -c --strict manifest-sha256.txt"
	n=$(find "$VBAG/data" -type f | wc -l)
	b=$(find "$VBAG/data" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
	t_grep "... Payload-Oxum counts it ($b.$n)" "^Payload-Oxum: $b\.$n\$" "$VBAG/bag-info.txt"
	t_grep "... catalog.csv names it" ",data/access/$ID_V.mp4,$ASHA"$'\r'"\$" \
		"$VBAG/catalog.csv"
	t_grep "... catalog.json names it" "\"access/$ID_V.mp4\"" "$VBAG/catalog.json"
	t_run "... verify-bag passes" "$CUSTOS" verify-bag "$VBAG"
	BAG=$VBAG
	tampered "a flipped byte in an access copy" \
		"item $ID_V: data/access/$ID_V.mp4: its SHA-256" flip "data/access/$ID_V.mp4"
	tampered "an access copy replaced with its manifest line rewritten" \
		"item $ID_V: data/access/$ID_V.mp4: .*not that of an access copy" sh -c "
		echo other >data/access/$ID_V.mp4
		s=\$(sha256sum data/access/$ID_V.mp4 | cut -c1-64)
		sed -i \"s|^[0-9a-f]*  data/access/$ID_V.mp4\$|\$s  data/access/$ID_V.mp4|\" \
			manifest-sha256.txt"
	# the store's access copy gone (last: it damages the store): the export stops naming the item
	mv "$CUSTOS_STORE/derivatives/sha256/${ASHA:0:2}/${ASHA:2:2}/$ASHA" "$WORK/copy.keep" ||
		fail "cannot move the stored access copy aside"
	"$CUSTOS" export --case "$C3" --to "$WORK/gone" --purpose 'court' --approval "$R3" \
		--access-copies >"$WORK/last.out" 2>&1; echo "rc=$?" >>"$WORK/last.out"
	t_ok "$(grep -q "^rc=3$" "$WORK/last.out" && grep -q "at item $ID_V:" "$WORK/last.out"; echo $?)" \
		"an export whose access copy is missing from the store fails naming the item"
	t_ok "$([ ! -e "$WORK/gone" ] || [ -z "$(ls -A "$WORK/gone")" ]; echo $?)" \
		"... and leaves no bag"
	mv "$WORK/copy.keep" "$CUSTOS_STORE/derivatives/sha256/${ASHA:0:2}/${ASHA:2:2}/$ASHA"
else
	t_ok 0 "access copies in bags # SKIP no ffmpeg"
fi

# 7. a socket export of a big case is planned off custosd's loop: the test
# build parks the plan (CUSTOS_PARK_AT, lib/util.h) after it signed its
# checkpoint, before its proofs, until $PARK exists; while it is parked,
# status answers on another connection and a file dropped in the upload
# directory is secured and released, and no other checkpoint is signed
# (the bag's proofs are against its own checkpoint: verify-bag passes). A connection closed
# while its export is planned leaves custosd running (the plan completes).
C4='平司罚〔2026〕10号'
mkdir -p "$WORK/big" "$WORK/park"
for ((i = 0; i < 2000; i++)); do printf 'tiny %d\n' "$i" >"$WORK/big/f$i.mp4"; done
(cd "$WORK/big" && "$CUSTOS" ingest f*.mp4 --case "$C4" --officer 3301-0457 >/dev/null) ||
	fail "ingest of 2000 files into case $C4"
report "2000 small files ingested into case $C4"
PARK=$WORK/park/go
DAEMON_BIN=$CUSTOSD_FP daemon_spawn "$WORK/custosd.conf" "$WORK/custosd.log" \
	CUSTOS_PARK_AT=bag-proofs CUSTOS_PARK_FILE="$PARK"
wait_until 60 test -S "$SOCK" || fail "custosd (test build) did not open its socket"
"$CUSTOS" request --case "$C4" --action export --purpose 'court' --json >"$WORK/last.out"
R4=$(field request)
t_run "the head approves the export request of case $C4" as "$HEAD" approve "$R4"
"$CUSTOS" export --socket "$SOCK" --case "$C4" --to "$WORK/bigbag" --purpose 'court' \
	--approval "$R4" >"$WORK/bigexport.out" 2>&1 &
EPID=$!
wait_until 300 test -e "$PARK.parked" || fail "the export's plan never started"
timeout 300 "$CUSTOS" status --socket "$SOCK" --json >"$WORK/last.out" 2>"$WORK/last.err"
rc=$?
t_ok "$([ $rc -eq 0 ] && [ ! -e "$PARK" ] && kill -0 "$EPID" 2>/dev/null &&
	[ ! -e "$WORK/bigbag" ]; echo $?)" \
	"custos status answers while the socket export's plan is parked (exit $rc)"
printf 'dropped while an export is planned\n' >"$WORK/in2/.during.mp4.tmp"
mv "$WORK/in2/.during.mp4.tmp" "$WORK/in2/during.mp4"
in_ledger() { "$CUSTOS" log --json 2>/dev/null | grep -q '"name": *"[^"]*during.mp4"'; }
wait_until 300 in_ledger &&
	wait_until 300 grep -q "secured $WORK/in2/during.mp4 as " "$WORK/custosd.log"
t_ok $? "... and intake goes on: a file dropped meanwhile is secured and released"
sleep 3 # the checkpoint timer's period (2 s) passes: no checkpoint may be signed meanwhile
touch "$PARK"
wait "$EPID"
t_ok $? "... and the export completes once the plan goes on"
t_run "... its bag of 2000 items checks out" "$CUSTOS" verify-bag "$WORK/bigbag"
rm -f "$PARK" "$PARK.parked"
python3 - "$SOCK" "$C4" "$R4" "$PARK" <<'EOF2'
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(json.dumps({"cmd": "export", "case": sys.argv[2], "purpose": "court",
	"approval": int(sys.argv[3])}).encode() + b"\n")
for _ in range(3000):
	if os.path.exists(sys.argv[4] + ".parked"):
		break
	time.sleep(0.1)
s.close()
sys.exit(0 if os.path.exists(sys.argv[4] + ".parked") else 1)
EOF2
t_ok $? "an export's connection closes while its plan is parked"
touch "$PARK"
wait_until 300 grep -q "export of case $C4 .*its connection closed before the plan was done" \
	"$WORK/custosd.log"
t_ok $? "... custosd finishes the plan and says the answer was dropped"
t_run "... and still answers status" timeout 300 "$CUSTOS" status --socket "$SOCK"
daemon_stop
t_ok "$DRC" "custosd (test build) stops cleanly"
t_no_sanitizer "no sanitizer report from custosd" "$WORK/custosd.log"

t_done
