#!/bin/bash
# Hostile input: things that are not regular files are refused with exit 2
# and a message naming them, nothing is half-written, nothing hangs; odd file
# names are accepted and sanitised in the record; good files in the same
# batch are still secured; a file that grows while it is read is refused and
# nothing of it recorded.
. "$(dirname "$0")/lib.sh"

CASE='平司罚〔2020〕1号'
IN="$WORK/in"
mkdir -p "$IN"

py() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r, ensure_ascii=False))' "$1"
}
t_skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1 # SKIP $2"
}
snapshot() {
	(cd "$CUSTOS_STORE" && find objects orphans tmp -print 2>/dev/null | sort) >"$WORK/snap.$1"
	"$CUSTOS" log >"$WORK/log.$1" 2>&1
}
# refused DESC PATH REASON-REGEX: ingest of PATH exits 2 (within 10 s) and
# stderr names PATH and the reason.
refused() {
	timeout 10 "$CUSTOS" ingest "$2" --case "$CASE" >"$WORK/last.out" 2>"$WORK/last.err"
	local rc=$?
	t_ok "$([ $rc -eq 2 ] && echo 0 || echo 1)" "$1: refused with exit 2 (exit $rc)"
	grep -qF -- "'$2'" "$WORK/last.err" && grep -Eq -- "$3" "$WORK/last.err"
	local g=$?
	t_ok $g "$1: the message names the file and says why"
	[ $g -eq 0 ] || sed 's/^/#   /' "$WORK/last.err" | head -5
	[ ! -s "$WORK/last.out" ]
	t_ok $? "$1: no id printed"
}

t_run "init" "$CUSTOS" init --station hs
head -c 4096 /dev/urandom >"$IN/good0.bin"
t_run "a good file first" "$CUSTOS" ingest "$IN/good0.bin" --case "$CASE"
snapshot before

# ---- things that are not regular files ----
head -c 1000 /dev/urandom >"$IN/target.bin"
ln -s "$IN/target.bin" "$IN/link-to-file"
mkdir "$IN/adir"
echo inside >"$IN/adir/inside.bin"
ln -s "$IN/adir" "$IN/link-to-dir"
ln -s "$IN/nowhere" "$IN/dangling"
mkfifo "$IN/fifo"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$IN/sock"

refused "symlink to a file" "$IN/link-to-file" 'symbolic link'
refused "symlink to a directory" "$IN/link-to-dir" 'symbolic link'
refused "dangling symlink" "$IN/dangling" 'symbolic link|no such file'
refused "FIFO (no writer)" "$IN/fifo" 'not a regular file'
refused "directory" "$IN/adir" 'directory'
refused "/dev/null (character device)" /dev/null 'not a regular file'
if [ -S "$IN/sock" ]; then
	refused "unix socket" "$IN/sock" 'not a regular file'
fi
refused "missing file" "$IN/no-such-file" 'no such file'
refused "empty path" "" 'no such file'

# a FIFO with a writer ready: still refused, and the writer is not consumed
(exec 3>"$IN/fifo"; sleep 3) &
wpid=$!
sleep 0.2
refused "FIFO with a writer waiting" "$IN/fifo" 'not a regular file'
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null

# ---- an unreadable file, as an unprivileged user ----
# root reads mode-000 files anyway, so as root the ingest runs as 'nobody'
# (setpriv) against a store nobody owns.
UNPRIV=
if [ "$(id -u)" != 0 ]; then
	UNPRIV=self
	asnobody() { "$@"; }
elif id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1; then
	UNPRIV=nobody
	NOGROUP=$(id -gn nobody)
	asnobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups "$@"; }
fi
if [ -n "$UNPRIV" ]; then
	chmod 755 "$WORK"
	NP="$WORK/np"
	mkdir -p "$NP"
	head -c 2000 /dev/urandom >"$NP/secret.bin"
	head -c 2000 /dev/urandom >"$NP/open.bin"
	if [ "$UNPRIV" = nobody ]; then
		chown nobody:"$NOGROUP" "$NP" "$NP/secret.bin" "$NP/open.bin"
	fi
	chmod 000 "$NP/secret.bin"
	asnobody env CUSTOS_STORE="$NP/store" "$CUSTOS" init --station np >/dev/null 2>&1
	t_ok $? "unreadable: the unprivileged user ($UNPRIV) owns a store of its own"
	asnobody env CUSTOS_STORE="$NP/store" timeout 10 "$CUSTOS" ingest "$NP/secret.bin" "$NP/open.bin" \
		--case "$CASE" >"$WORK/last.out" 2>"$WORK/last.err"
	t_ok "$([ $? -eq 2 ] && echo 0 || echo 1)" "unreadable: ingest as $UNPRIV exits 2"
	t_grep "unreadable: the message names the file, permission denied" \
		"refused '$NP/secret.bin': permission denied" "$WORK/last.err"
	[ "$(cut -f3 "$WORK/last.out")" = "$NP/open.bin" ]
	t_ok $? "unreadable: the readable file of the same batch is secured"
	[ "$(find "$NP/store/objects" -type f | wc -l)" = 1 ] && [ -z "$(ls -A "$NP/store/tmp")" ]
	t_ok $? "unreadable: one blob, tmp/ empty"
	asnobody env CUSTOS_STORE="$NP/store" "$CUSTOS" verify >"$WORK/last.out" 2>&1
	t_ok $? "unreadable: the store verifies"
else
	t_skip "unreadable file" "as root this needs a 'nobody' user and setpriv to drop privileges"
fi

snapshot after-refusals
cmp -s "$WORK/snap.before" "$WORK/snap.after-refusals"
t_ok $? "after the refusals objects/ and tmp/ are unchanged (no new files, no temp files)"
[ -z "$(ls -A "$CUSTOS_STORE/tmp")" ]
t_ok $? "tmp/ is empty"
cmp -s "$WORK/log.before" "$WORK/log.after-refusals" && [ "$(wc -l <"$WORK/log.before")" = 1 ]
t_ok $? "the ledger is unchanged (1 event)"
t_run "verify passes after the refusals" "$CUSTOS" verify
cmp -s "$IN/target.bin" "$IN/link-to-file" && [ -p "$IN/fifo" ] && [ -d "$IN/adir" ]
t_ok $? "the refused inputs themselves were left alone"

# ---- malformed metadata ----
t_status 2 "a case number that is not UTF-8 is refused" "$CUSTOS" ingest "$IN/good0.bin" --case $'\xff\xfe'
t_grep "... naming --case" 'invalid --case' "$WORK/last.err"
t_status 2 "a case number of 300 bytes is refused" "$CUSTOS" ingest "$IN/good0.bin" \
	--case "$(printf 'x%.0s' $(seq 300))"
t_grep "... naming --case" 'invalid --case' "$WORK/last.err"
t_status 2 "an officer id with an escape sequence is refused" "$CUSTOS" ingest "$IN/good0.bin" \
	--case "$CASE" --officer $'\e[31mred'
t_grep "... naming --officer" 'invalid --officer' "$WORK/last.err"
t_status 2 "an empty device id is refused" "$CUSTOS" ingest "$IN/good0.bin" --case "$CASE" --device ''
t_grep "... naming --device" 'invalid --device' "$WORK/last.err"

# ---- odd file names: accepted; the record holds a readable form and the exact bytes ----
ODD=$'odd\nname\x01\e[31m\xff\xfe证据.bin'
head -c 3333 /dev/urandom >"$IN/$ODD"
ODD_SHA=$(sha256sum <"$IN/$ODD" | cut -d' ' -f1)
ODD_ID="hs-${ODD_SHA:0:20}"
t_run "a name with newline, control chars, ESC and invalid UTF-8 is accepted" \
	timeout 10 "$CUSTOS" ingest "$IN/$ODD" --case "$CASE"
[ "$(wc -l <"$WORK/last.out")" = 1 ] && [ "$(cut -f1,2 "$WORK/last.out")" = "$(printf '%s\t%s' "$ODD_ID" "$ODD_SHA")" ]
t_ok $? "ingest prints one line: id and digest"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/last.out"; then
	t_ok 1 "ingest's output carries no control characters"
else
	t_ok 0 "ingest's output carries no control characters"
fi
"$CUSTOS" show "$ODD_ID" --json >"$WORK/odd.json"
NAME=$(py 'j["record"]["name"]' <"$WORK/odd.json")
python3 - "$WORK/odd.json" <<'EOF'
import json, sys
n = json.load(open(sys.argv[1], encoding='utf-8', errors='strict'))["record"]["name"]
ok = (all(ord(c) >= 0x20 and ord(c) != 0x7f for c in n) and '\ufffd' not in n
      and n.startswith('odd') and 'name' in n and n.endswith('证据.bin'))
sys.exit(0 if ok else 1)
EOF
t_ok $? "the recorded name is valid UTF-8 without control chars and keeps the readable parts ($NAME)"
[ "$NAME" = 'odd\x0aname\x01\x1b[31m\xff\xfe证据.bin' ]
t_ok $? "each bad byte is written \\xHH in the readable name"
python3 - "$WORK/odd.json" "$IN/$ODD" <<'EOF2'
import json, os, sys
r = json.load(open(sys.argv[1]))["record"]
sys.exit(0 if bytes.fromhex(r["name_hex"]) == os.fsencode(os.path.basename(sys.argv[2])) else 1)
EOF2
t_ok $? "the record's name_hex gives the exact bytes of the name"
t_run "find --case (text) with the odd name" "$CUSTOS" find --case "$CASE"
[ "$(wc -l <"$WORK/last.out")" = 2 ]
t_ok $? "find prints one line per item"
t_run "ingest --json of another odd name" timeout 10 "$CUSTOS" ingest --json --case "$CASE" \
	"$IN/$ODD" "$IN/good0.bin"
[ "$(py '[(r["id"], r["duplicate"]) for r in j]' <"$WORK/last.out")" = "[[\"$ODD_ID\", true], [\"hs-$(sha256sum "$IN/good0.bin" | cut -c1-20)\", true]]" ]
t_ok $? "ingest --json lists every file secured, the odd name included"
t_run "verify passes" "$CUSTOS" verify

# ---- a mixed batch: good files are secured, bad ones named ----
for i in 1 2 3; do head -c $((i * 1111)) /dev/urandom >"$IN/good$i.bin"; done
snapshot before-mixed
timeout 20 "$CUSTOS" ingest "$IN/good1.bin" "$IN/link-to-file" "$IN/good2.bin" "$IN/fifo" "$IN/adir" \
	/dev/null "$IN/good3.bin" "$IN/no-such-file" --case 'MIX-1' >"$WORK/last.out" 2>"$WORK/last.err"
rc=$?
t_ok "$([ $rc -eq 2 ] && echo 0 || echo 1)" "mixed batch exits 2 (exit $rc)"
[ "$(cut -f3 "$WORK/last.out" | tr '\n' ' ')" = "$IN/good1.bin $IN/good2.bin $IN/good3.bin " ]
t_ok $? "mixed batch: the three good files are secured, in order"
n=0
for f in "$IN/link-to-file" "$IN/fifo" "$IN/adir" /dev/null "$IN/no-such-file"; do
	grep -qF "refused '$f'" "$WORK/last.err" && n=$((n + 1))
done
[ $n = 5 ]
t_ok $? "mixed batch: each of the five bad ones is named"
"$CUSTOS" find --case MIX-1 --json | py 'sorted(r["sha256"] for r in j)' >"$WORK/got"
for i in 1 2 3; do sha256sum "$IN/good$i.bin" | cut -d' ' -f1; done | sort |
	python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))' >"$WORK/want"
cmp -s "$WORK/want" "$WORK/got"
t_ok $? "mixed batch: find --case gives exactly the three good files"
[ $(($(wc -l <"$WORK/log.before-mixed") + 3)) = "$("$CUSTOS" log | wc -l)" ]
t_ok $? "mixed batch: exactly three ledger events added"
[ "$(find "$CUSTOS_STORE/objects" -type f | wc -l)" = $(($(grep -c '^objects/.*/.\{64\}$' "$WORK/snap.before-mixed") + 3)) ]
t_ok $? "mixed batch: exactly three blobs added"
[ -z "$(ls -A "$CUSTOS_STORE/tmp")" ] && [ ! -e "$CUSTOS_STORE/orphans" ]
t_ok $? "mixed batch: tmp/ empty, no orphans"

# ---- a file that grows while custos reads it ----
# A recorder still writing, or an upload still arriving: the csfault
# interposer (tests/reliability/fault.c, CSFAULT_GROW) appends 4 KiB to the
# file right after custos's first read of it, so the file grows mid-read
# every time, whatever the machine's speed. Refused with exit 2, naming it
# and saying to secure it again once complete; no id; nothing recorded.
# Ingested again once it is complete, its final bytes are secured.
: "${CSFAULT:?CSFAULT must point at the csfault interposer}"
asan_allow_preload
G="$IN/growing.mp4"
head -c $((3 << 20)) /dev/urandom >"$G"
snapshot before-grow
LD_PRELOAD="$CSFAULT" CSFAULT_GROW="$(realpath "$G")" "$CUSTOS" ingest "$G" --case 'GROW-1' \
	>"$WORK/last.out" 2>"$WORK/last.err"
rc=$?
[ "$(stat -c %s "$G")" = $(((3 << 20) + 4096)) ]
t_ok $? "growing file: it did grow by 4096 bytes while custos read it"
t_ok "$([ $rc -eq 2 ] && echo 0 || echo 1)" "growing file: refused with exit 2 (exit $rc)"
grep -qF "refused '$G': it changed while it was being read; secure it again once it is complete" \
	"$WORK/last.err"
g=$?
t_ok $g "growing file: the message names it, says it changed and to secure it again once complete"
[ $g -eq 0 ] || sed 's/^/#   /' "$WORK/last.err" | head -5
[ ! -s "$WORK/last.out" ]
t_ok $? "growing file: no id printed"
snapshot after-grow
cmp -s "$WORK/snap.before-grow" "$WORK/snap.after-grow" &&
	cmp -s "$WORK/log.before-grow" "$WORK/log.after-grow" &&
	[ -z "$("$CUSTOS" find --case GROW-1 2>/dev/null)" ]
t_ok $? "growing file: nothing recorded (no ledger event, no blob, tmp/ empty, no item in its case)"
t_run "growing file: once complete, ingest secures it" "$CUSTOS" ingest "$G" --case 'GROW-1'
[ "$(cut -f2 "$WORK/last.out")" = "$(digest "$G")" ]
t_ok $? "growing file: ... with the digest of its final bytes"
t_run "verify passes at the end" "$CUSTOS" verify

t_done
