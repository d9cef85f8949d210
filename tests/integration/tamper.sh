#!/bin/bash
# Tamper evidence: each kind of damage, on a fresh copy of a known-good store,
# makes `custos verify` exit 1 and name what was damaged (the item id for
# blobs and records, the ledger position and kind for the ledger).
. "$(dirname "$0")/lib.sh"

CASE='平司罚〔2020〕1号'
IN="$WORK/in"
mkdir -p "$IN"
BASE="$WORK/base"

t_skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1 # SKIP $2"
}
blob_rel() { echo "objects/sha256/${1:0:2}/${1:2:2}/$1"; }
# flip_byte FILE OFFSET: XORs one byte with 0x01 in place (the file keeps its size).
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || return 1
	printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# journal_entry N: prints "offset length" of ledger entry N (0-based).
journal_entry() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[:16] == b'CUSTOS-LEDGER-1\n'
off, want = 16, int(sys.argv[2])
for i in range(want + 1):
    n = struct.unpack('>I', d[off:off + 4])[0]
    if i == want:
        print(off, n)
        break
    off += 4 + n + 32
EOF
}
# fresh NAME: a new store, a byte-for-byte copy of the pristine base store.
fresh() {
	S="$WORK/$1"
	rm -rf "$S"
	cp -a "$BASE" "$S"
	export CUSTOS_STORE="$S"
}

# The pristine store: three items, one of them sighted twice (4 events).
export CUSTOS_STORE="$BASE"
head -c 65536 /dev/urandom >"$IN/a.bin"
head -c 100000 /dev/urandom >"$IN/b-现场.bin"
head -c 3000 /dev/urandom >"$IN/c.bin"
A_SHA=$(sha256sum "$IN/a.bin" | cut -d' ' -f1)
B_SHA=$(sha256sum "$IN/b-现场.bin" | cut -d' ' -f1)
C_SHA=$(sha256sum "$IN/c.bin" | cut -d' ' -f1)
A="tp-${A_SHA:0:20}"
B="tp-${B_SHA:0:20}"
C="tp-${C_SHA:0:20}"
"$CUSTOS" init --station tp >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" "$IN/b-现场.bin" --case "$CASE" --stage 取证 --officer 001 \
		--device DEV-1 >/dev/null &&
	"$CUSTOS" ingest "$IN/c.bin" --case "$CASE" --device DEV-2 >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" --case 'X-2' >/dev/null
t_ok $? "a store with 3 items and 4 ledger events"
t_run "the pristine store verifies" "$CUSTOS" verify
CPJ="python3 $CUSTOS_SRC/tests/cpj.py"
# cpj_at SIZE: the position in checkpoints/journal of the checkpoint of that size.
cpj_at() { $CPJ list "$S/checkpoints/journal" | awk -v n="$1" '$4 == n { print $1 }'; }
[ "$($CPJ list "$BASE/checkpoints/journal" | tail -1 | cut -d' ' -f4)" = 4 ] &&
	[ "$(sed -n 2p "$BASE/checkpoints/latest")" = 4 ] && [ ! -e "$BASE/checkpoints/00000000000000000004" ]
t_ok $? "the latest signed checkpoint covers all 4 events (journal and latest; no per-file checkpoints)"

# ---- a blob: one byte flipped ----
fresh blob-flip
p="$S/$(blob_rel "$B_SHA")"
chmod u+w "$p" && flip_byte "$p" 50000 && chmod 0444 "$p"
cmp -s "$p" "$IN/b-现场.bin"
[ $? -eq 1 ] && [ "$(stat -c '%s %a' "$p")" = "100000 444" ]
t_ok $? "blob: one byte of b's stored copy differs, size and mode as before"
t_status 1 "blob: verify exits 1" "$CUSTOS" verify
t_grep "blob: verify names the item" "^PROBLEM blob-damaged: .*$B" "$WORK/last.out"
[ "$(grep -c '^PROBLEM' "$WORK/last.out")" = 1 ]
t_ok $? "blob: verify reports exactly one problem"
t_status 1 "blob: verify --json exits 1" "$CUSTOS" verify --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); p=j["problems"]; sys.exit(not (j["ok"] is False and len(p)==1 and p[0]["kind"]=="blob-damaged" and p[0]["id"]==sys.argv[2]))' \
	"$WORK/last.out" "$B"
t_ok $? "blob: verify --json gives kind blob-damaged and the id"
t_status 1 "blob: verify of the damaged id exits 1" "$CUSTOS" verify "$B"
t_grep "blob: ... and names it" "$B" "$WORK/last.out"
t_run "blob: verify of an untouched id passes" "$CUSTOS" verify "$A"
t_run "blob: verify of two untouched ids passes" "$CUSTOS" verify "$A" "$C"
t_status 1 "blob: verify of an untouched id and the damaged one exits 1" "$CUSTOS" verify "$A" "$B"
if grep -q "$A" "$WORK/last.out"; then t_ok 1 "blob: the untouched id is not reported"; else
	t_ok 0 "blob: the untouched id is not reported"; fi

# ---- a blob: first and last byte (the ends of the copy loop) ----
fresh blob-ends
p="$S/$(blob_rel "$A_SHA")"
chmod u+w "$p" && flip_byte "$p" 65535 && chmod 0444 "$p"
t_status 1 "blob: last byte flipped: verify exits 1" "$CUSTOS" verify
t_grep "blob: last byte flipped: names the item" "^PROBLEM blob-damaged: .*$A" "$WORK/last.out"
fresh blob-first
p="$S/$(blob_rel "$C_SHA")"
chmod u+w "$p" && flip_byte "$p" 0 && chmod 0444 "$p"
t_status 1 "blob: first byte flipped: verify exits 1" "$CUSTOS" verify
t_grep "blob: first byte flipped: names the item" "^PROBLEM blob-damaged: .*$C" "$WORK/last.out"
fresh blob-grown
p="$S/$(blob_rel "$C_SHA")"
chmod u+w "$p" && printf 'x' >>"$p" && chmod 0444 "$p"
t_status 1 "blob: one byte appended: verify exits 1" "$CUSTOS" verify
t_grep "blob: one byte appended: names the item" "^PROBLEM blob-[a-z]+: .*$C" "$WORK/last.out"

# ---- a blob removed ----
fresh blob-gone
rm -f "$S/$(blob_rel "$C_SHA")"
t_status 1 "blob removed: verify exits 1" "$CUSTOS" verify
t_grep "blob removed: verify names the item as missing" "^PROBLEM blob-missing: .*$C" "$WORK/last.out"
t_run "blob removed: verify of another id passes" "$CUSTOS" verify "$B"

# ---- a record inside LMDB, raw bytes: one byte of b's name in data.mdb ----
fresh lmdb-raw
python3 - "$S/catalog/data.mdb" "$B" <<'EOF'
import sys
path, item = sys.argv[1], sys.argv[2].encode()
d = bytearray(open(path, 'rb').read())
# LMDB is copy-on-write: stale copies of the record may sit in free pages, so
# change the same byte in every copy of this record's name.
needle = '"name":"b-现场.bin"'.encode()
n, i = 0, d.find(needle)
while i >= 0:
    if item in d[max(0, i - 200):i]:
        d[i + 8] ^= 0x20  # 'b' -> 'B'
        n += 1
    i = d.find(needle, i + 1)
open(path, 'r+b').write(d)
sys.exit(0 if n > 0 else 1)
EOF
t_ok $? "lmdb (raw bytes): one byte of b's record changed in data.mdb"
"$CUSTOS" show "$B" >"$WORK/show.out" 2>&1
t_grep "lmdb (raw bytes): the catalog now serves the altered name" '^name +B-现场\.bin$' "$WORK/show.out"
t_status 1 "lmdb (raw bytes): verify exits 1" "$CUSTOS" verify
t_grep "lmdb (raw bytes): verify names the item" "^PROBLEM catalog-mismatch: .*$B" "$WORK/last.out"
if grep -Eq "$A|$C" "$WORK/last.out"; then t_ok 1 "lmdb (raw bytes): no other item is blamed"; else
	t_ok 0 "lmdb (raw bytes): no other item is blamed"; fi
t_status 1 "lmdb (raw bytes): verify --json exits 1" "$CUSTOS" verify --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not any(p.get("id")==sys.argv[2] for p in j["problems"]))' \
	"$WORK/last.out" "$B"
t_ok $? "lmdb (raw bytes): verify --json carries the id"

# ---- the catalog's schema number, or its key, one bit flipped in data.mdb ----
# A flipped bit must not make this version's catalog pass for one made by an
# older custos (no "schema" key): that one is rebuilt without a word, and
# verify would report nothing.
for what in value value2 key table; do
	fresh "lmdb-schema-$what"
	python3 - "$S/catalog/data.mdb" "$what" <<'EOF2'
import sys
path, what = sys.argv[1], sys.argv[2]
d = bytearray(open(path, 'rb').read())
n, i = 0, d.find(b'schema')
while what == 'table' and i >= 0:
    i = -1
    j = d.find(b'cases')  # the name of the "cases" table in LMDB's main table
    while j >= 0:
        if d[j - 1] != ord('"') and d[j + 5] != ord('"'):
            d[j + 4] ^= 0x01  # "cases" -> "caser"
            n += 1
        j = d.find(b'cases', j + 1)
while i >= 0:
    if d[i + 6:i + 14] == b'\0\0\0\0\0\0\0\x09':
        if what == 'value':
            d[i + 13] ^= 0x08  # 9 -> 1, a number no custos wrote
        elif what == 'value2':
            d[i + 13] ^= 0x01  # 9 -> 8, an older custos's number beside this one's tables
        else:
            d[i + 3] ^= 0x08  # "schema" -> "scheea"
        n += 1
    i = d.find(b'schema', i + 1)
open(path, 'r+b').write(d)
sys.exit(0 if n > 0 else 1)
EOF2
	t_ok $? "lmdb schema $what: one bit flipped in data.mdb"
	t_status 1 "lmdb schema $what: verify exits 1" "$CUSTOS" verify
	t_grep "lmdb schema $what: verify calls the catalog damaged" '^PROBLEM catalog: the catalog is damaged' \
		"$WORK/last.out"
	! grep -q 'older custos' "$WORK/last.out"
	t_ok $? "lmdb schema $what: ... and does not take it for an older custos's"
done

# ---- a record inside LMDB, rewritten with lmdb-utils: a's case number ----
if command -v mdb_dump >/dev/null 2>&1 && command -v mdb_load >/dev/null 2>&1; then
	fresh lmdb-load
	# Case numbers are printed as \xx escapes by mdb_dump -p; 〔2020〕 -> 〔2021〕 in a's value only.
	mdb_dump -p -s items "$S/catalog" >"$WORK/items.dump" &&
		python3 - "$WORK/items.dump" "$A" <<'EOF'
import sys
path, item = sys.argv[1], sys.argv[2]
lines = open(path).read().split('\n')
n = 0
for i, l in enumerate(lines):
    if l == ' ' + item:
        v = lines[i + 1]
        assert '2020' in v
        lines[i + 1] = v.replace('2020', '2021', 1)
        n += 1
open(path, 'w').write('\n'.join(lines))
sys.exit(0 if n == 1 else 1)
EOF
	[ $? -eq 0 ] && mdb_load -s items "$S/catalog" <"$WORK/items.dump" 2>/dev/null
	t_ok $? "lmdb (mdb_load): a's case number rewritten in the items table"
	"$CUSTOS" show "$A" >"$WORK/show.out" 2>&1
	t_grep "lmdb (mdb_load): the catalog now serves the altered case" '^case +平司罚〔2021〕1号$' "$WORK/show.out"
	t_status 1 "lmdb (mdb_load): verify exits 1" "$CUSTOS" verify
	t_grep "lmdb (mdb_load): verify names the item" "^PROBLEM catalog-mismatch: .*$A" "$WORK/last.out"
	t_run "lmdb (mdb_load): rebuild repairs the catalog from the ledger" "$CUSTOS" rebuild
	t_run "lmdb (mdb_load): verify passes after rebuild" "$CUSTOS" verify
else
	# lmdb-utils (mdb_dump/mdb_load) is not installed here.
	for d in "rewrite" "show" "verify exits 1" "names the item" "rebuild" "verify after rebuild"; do
		t_skip "lmdb (mdb_load): $d" "mdb_dump/mdb_load not installed"
	done
fi

# ---- the ledger journal: one byte inside an event's JSON ----
fresh ledger-byte
read -r off len < <(journal_entry "$S/ledger/journal" 1)
ev_off=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); o=int(sys.argv[2]); i=d.find(b"\"size\":", o+4, o+4+int(sys.argv[3])); print(i+7 if i>=0 else -1)' \
	"$S/ledger/journal" "$off" "$len")
[ "$ev_off" -gt 0 ] && flip_byte "$S/ledger/journal" "$ev_off"
t_ok $? "ledger: one byte of event 1's JSON changed"
t_status 1 "ledger: verify exits 1" "$CUSTOS" verify
t_grep "ledger: verify names entry 1 as damaged" '^PROBLEM ledger-damaged: ledger entry 1 ' "$WORK/last.out"
t_status 1 "ledger: verify --json exits 1" "$CUSTOS" verify --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not any(p["kind"]=="ledger-damaged" and p.get("position")==1 for p in j["problems"]))' \
	"$WORK/last.out"
t_ok $? "ledger: verify --json gives kind ledger-damaged at position 1"
t_status 1 "ledger: verify of one id still reports the ledger" "$CUSTOS" verify "$C"
t_grep "ledger: ... by position" '^PROBLEM ledger-damaged: ledger entry 1 ' "$WORK/last.out"

# ---- the ledger journal: one byte changed and the entry's checksum recomputed ----
fresh ledger-forged
python3 - "$S/ledger/journal" <<'EOF'
import hashlib, struct, sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
off = 16
for i in range(2):
    off += 4 + struct.unpack('>I', d[off:off + 4])[0] + 32
n = struct.unpack('>I', d[off:off + 4])[0]
ev = bytearray(d[off + 4:off + 4 + n])
assert b'"event":"ingest"' in ev
i = ev.find(b'"device":"DEV-2"')
assert i >= 0
ev[i + len('"device":"DEV-')] = ord('3')
d[off + 4:off + 4 + n] = ev
d[off + 4 + n:off + 4 + n + 32] = hashlib.sha256(b'\x00' + bytes(ev)).digest()
open(p, 'r+b').write(d)
EOF
t_ok $? "forged ledger: event 2 says DEV-3, its checksum recomputed"
t_status 1 "forged ledger: verify exits 1" "$CUSTOS" verify
t_grep "forged ledger: the catalog leaf of entry 2 differs" '^PROBLEM catalog-leaf-mismatch: .*entry 2 ' "$WORK/last.out"
t_grep "forged ledger: the signed checkpoints no longer match" '^PROBLEM checkpoint-mismatch: ' "$WORK/last.out"
t_grep "forged ledger: the replay differs for the item" "^PROBLEM catalog-mismatch: .*$C" "$WORK/last.out"
fresh ledger-forged-rebuilt
cp "$WORK/ledger-forged/ledger/journal" "$S/ledger/journal"
"$CUSTOS" rebuild >/dev/null 2>&1
t_status 1 "forged ledger + rebuilt catalog: verify still exits 1" "$CUSTOS" verify
t_grep "forged ledger + rebuilt catalog: the signed checkpoints expose it" \
	'^PROBLEM checkpoint-mismatch: the ledger.s first 3 entries' "$WORK/last.out"

# ---- a checkpoint: one byte of its signature deleted ----
fresh cp-sig
# sig_edit FILE del|flip: edits byte 40 of the decoded signature line (keyhash + Ed25519 signature).
sig_edit() {
	python3 - "$1" "$2" <<'EOF'
import base64, sys
p, mode = sys.argv[1], sys.argv[2]
t = open(p, 'rb').read().decode()
body, sigs = t.split('\n\n', 1)
lines = sigs.split('\n')
pre, b64 = lines[0].rsplit(' ', 1)
raw = bytearray(base64.b64decode(b64))
assert len(raw) == 68
if mode == 'del':
    del raw[40]
else:
    raw[40] ^= 1
lines[0] = pre + ' ' + base64.b64encode(bytes(raw)).decode()
open(p, 'w').write(body + '\n\n' + '\n'.join(lines))
EOF
}
k3=$(cpj_at 3)
$CPJ edit "$S/checkpoints/journal" "$k3" sig-del
t_ok $? "checkpoint: one byte deleted from checkpoint 3's signature (its checksum written again)"
t_status 1 "checkpoint: verify exits 1" "$CUSTOS" verify
t_grep "checkpoint: verify names the checkpoint by its position" \
	"^PROBLEM checkpoint-invalid: checkpoints/journal entry $k3 \\(offset [0-9]*\\) is not a valid" \
	"$WORK/last.out"
fresh cp-flip
k4=$(cpj_at 4)
$CPJ edit "$S/checkpoints/journal" "$k4" sig-flip
t_status 1 "checkpoint: a flipped signature bit: verify exits 1" "$CUSTOS" verify
t_grep "checkpoint: ... names the checkpoint" "^PROBLEM checkpoint-invalid: checkpoints/journal entry $k4 " \
	"$WORK/last.out"
fresh cp-root
$CPJ edit "$S/checkpoints/journal" "$k4" root
t_status 1 "checkpoint: its root hash changed: verify exits 1" "$CUSTOS" verify
t_grep "checkpoint: ... names the checkpoint" "checkpoints/journal entry $k4 " "$WORK/last.out"
fresh cp-latest
f="$S/checkpoints/latest"
chmod u+w "$f" && sig_edit "$f" flip && chmod 0444 "$f"
t_status 1 "checkpoint: checkpoints/latest with a flipped signature bit: verify exits 1" "$CUSTOS" verify
t_grep "checkpoint: ... names checkpoints/latest" '^PROBLEM checkpoint-invalid: checkpoints/latest ' \
	"$WORK/last.out"
fresh cp-damaged
python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[int(sys.argv[2])]^=4; open(p,"wb").write(d)' \
	"$S/checkpoints/journal" "$(($($CPJ list "$S/checkpoints/journal" | awk -v k="$k3" '$1 == k { print $2 }') + 30))"
t_status 1 "checkpoint: a bit flipped inside journal entry $k3: verify exits 1" "$CUSTOS" verify
t_grep "checkpoint: ... names the damaged entry by its position" \
	"^PROBLEM checkpoint-damaged: checkpoints/journal entry $k3 \\(offset [0-9]*\\) is damaged" "$WORK/last.out"

# ---- the journal truncated by one entry ----
fresh truncated
read -r off len < <(journal_entry "$S/ledger/journal" 3)
truncate -s "$off" "$S/ledger/journal"
t_ok $? "truncated: the last ledger entry (3) cut off at a clean entry boundary"
t_status 1 "truncated: verify exits 1" "$CUSTOS" verify
t_grep "truncated: verify says the ledger is short at position 3" \
	'^PROBLEM ledger-short: the journal holds 3 readable entries but the catalog indexes 4' "$WORK/last.out"
t_grep "truncated: verify says a signed checkpoint covers the lost entry" \
	'^PROBLEM ledger-rolled-back: checkpoints/journal entry [0-9]* \(offset [0-9]*\) covers 4 entries' \
	"$WORK/last.out"
t_status 1 "truncated: verify --json exits 1" "$CUSTOS" verify --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not any(p["kind"]=="ledger-rolled-back" and p.get("position")==3 for p in j["problems"]))' \
	"$WORK/last.out"
t_ok $? "truncated: verify --json gives ledger-rolled-back at position 3"
echo new >"$IN/new.bin"
t_status 3 "truncated: a writer refuses to open the store" "$CUSTOS" ingest "$IN/new.bin" --case "$CASE"
t_grep "truncated: ... saying the journal was truncated" 'truncated' "$WORK/last.err"
"$CUSTOS" rebuild >/dev/null 2>&1
t_status 1 "truncated: even after a rebuild, verify exits 1" "$CUSTOS" verify
t_grep "truncated: ... because checkpoint 4 covers the lost entry" \
	'^PROBLEM ledger-rolled-back: checkpoints/journal entry [0-9]* \(offset [0-9]*\) covers 4 entries' \
	"$WORK/last.out"

# ---- rolled back past a damaged newest checkpoint ----
# checkpoint 4 damaged in the journal and in latest, entries 2 and 3 cut off:
# the writer does not open (the journal's last entry is damaged, not torn).
fresh rolled-back-cp
$CPJ edit "$S/checkpoints/journal" "$(cpj_at 4)" sig-flip
f="$S/checkpoints/latest"
chmod u+w "$f" && sig_edit "$f" flip && chmod 0444 "$f"
read -r off len < <(journal_entry "$S/ledger/journal" 2)
truncate -s "$off" "$S/ledger/journal"
"$CUSTOS" rebuild >/dev/null 2>&1
t_ok $? "rolled back: checkpoint 4 forged, entries 2 and 3 cut off, the catalog rebuilt"
t_status 3 "rolled back: a writer refuses to open the store" "$CUSTOS" ingest "$IN/new.bin" \
	--case "$CASE"
t_grep "rolled back: ... because checkpoint 3 covers 3 events and 2 are here" \
	'a signed checkpoint covers 3 ledger events but only 2 are here' "$WORK/last.err"
[ "$(stat -c %s "$S/ledger/journal")" = "$off" ]
t_ok $? "rolled back: ... and wrote nothing to the ledger"
# the newest checkpoint cut off the checkpoint journal too: the older ones still refuse
fresh rolled-back-cut
read -r coff clen csize < <($CPJ list "$S/checkpoints/journal" | tail -1 | cut -d' ' -f2-)
truncate -s "$coff" "$S/checkpoints/journal" && rm -f "$S/checkpoints/latest"
read -r off len < <(journal_entry "$S/ledger/journal" 2)
truncate -s "$off" "$S/ledger/journal"
"$CUSTOS" rebuild >/dev/null 2>&1
t_status 3 "rolled back with its newest checkpoint: a writer refuses to open the store" \
	"$CUSTOS" ingest "$IN/new.bin" --case "$CASE"
t_grep "... because checkpoint 3 covers 3 events and 2 are here" \
	'a signed checkpoint covers 3 ledger events but only 2 are here' "$WORK/last.err"

# the base store itself was never touched
export CUSTOS_STORE="$BASE"
t_run "the pristine store still verifies" "$CUSTOS" verify

t_done
