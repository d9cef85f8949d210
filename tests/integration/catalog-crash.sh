#!/bin/bash
# A catalog that crashes LMDB: LMDB does not check its pages, so a few
# damaged bytes in catalog/data.mdb make it crash (SIGSEGV, SIGBUS, an
# assertion) in whatever process reads them. `custos verify` reads the
# catalog in a child process: it must not die, but exit 1, name the catalog
# ("PROBLEM catalog: ... crashed ...; run `custos rebuild`"), and still check
# the ledger, the checkpoints and the blobs without the catalog, reporting a
# damaged blob and a damaged ledger entry of the same store in the same run.
#
# The damaged catalogs are found by a deterministic search on a small store,
# with a damaged blob and journal entry already in place:
#   open   the flags of each sub-database record in the main database's root
#          page (LMDB crashes when custos opens its tables), then their
#          length bytes, one at a time, until verify says "opening it
#          crashed";
#   read   the page headers (bytes 10..21 of each 4 KiB page, the newest pages
#          first), XOR 0xff, until verify says "reading it crashed". Opening
#          now finds most of these (the meta table is checked there); when
#          none crashes LMDB later, custos-failpoint's catalog child is made
#          to die by SIGBUS once the catalog is open, as LMDB would.
# When lmdb-utils is installed, mdb_dump must die by a signal on the same
# catalog: without the child process, verify would have died too.
# A third catalog, whose meta pages point the main database out of the file,
# is refused by LMDB with an error: the same report, "LMDB cannot open it".
# Then damaged headers (meta pages, truncation): named catalog damage by
# verify, find, show and custosd, never a memory shortage; rebuild mends them.
. "$(dirname "$0")/lib.sh"

IN="$WORK/in"
BASE="$WORK/base"
mkdir -p "$IN"
blob_rel() { echo "objects/sha256/${1:0:2}/${1:2:2}/$1"; }
# xor_byte FILE OFFSET MASK: XORs one byte in place.
xor_byte() {
	python3 -c 'import sys
p, o, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 0)
with open(p, "r+b") as f:
    f.seek(o); b = f.read(1)[0]; f.seek(o); f.write(bytes([b ^ m]))' "$1" "$2" "$3"
}
# verify_status DIR: runs verify on DIR into $WORK/v.out / v.err, returns its exit status.
verify_status() {
	"${VERIFY:-$CUSTOS}" verify --store "$1" >"$WORK/v.out" 2>"$WORK/v.err"
}

# The store: a, b (one ingest), c, and a again (a sighting): 4 ledger events.
python3 -c 'import random, sys
r = random.Random(20261128)
for name, n in (("a", 3000), ("b", 70000), ("c", 250000)):
    open(sys.argv[1] + "/" + name + ".bin", "wb").write(bytes(r.randrange(256) for _ in range(n)))' "$IN"
B_SHA=$(sha256sum "$IN/b.bin" | cut -d' ' -f1)
B="cc-${B_SHA:0:20}"
export CUSTOS_STORE="$BASE"
"$CUSTOS" init --station cc >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" "$IN/b.bin" --case C-1 --officer 001 --device DEV-1 >/dev/null &&
	"$CUSTOS" ingest "$IN/c.bin" --case C-2 >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" --case C-3 >/dev/null
t_ok $? "a store with 3 items and 4 ledger events"
t_run "the store verifies" "$CUSTOS" verify
cp "$BASE/checkpoints/latest" "$WORK/outside-checkpoint"

# Damage that has nothing to do with the catalog: one byte of b's blob, one
# byte inside the last ledger entry's event (entry 3, after b's ingest).
DAMAGED="$WORK/damaged"
cp -a "$BASE" "$DAMAGED"
p="$DAMAGED/$(blob_rel "$B_SHA")"
chmod u+w "$p" && xor_byte "$p" 5000 0x01 && chmod 0444 "$p"
last=$(python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read(); off = 16; last = 0
while off < len(d):
    last = off; off += 4 + struct.unpack(">I", d[off:off + 4])[0] + 32
print(last + 4 + 10)' "$DAMAGED/ledger/journal")
xor_byte "$DAMAGED/ledger/journal" "$last" 0x01
t_status 1 "with its catalog intact, the damaged store: verify exits 1" "$CUSTOS" verify --store "$DAMAGED"
grep -q '^PROBLEM blob-damaged: .*'"$B" "$WORK/last.out" &&
	grep -q '^PROBLEM ledger-damaged: ledger entry 3 ' "$WORK/last.out"
t_ok $? "... naming b's blob and ledger entry 3"

# check_run NAME WHAT: the assertions on $WORK/v.out, v.err and status $rc of
# a verify of a store whose catalog makes LMDB fail; WHAT is a pattern of
# the catalog problem's detail.
check_run() {
	local name=$1 what=$2
	[ "$rc" -eq 1 ]
	t_ok $? "$name: verify exits 1, problems found (exit $rc; 128+N would be a signal)"
	t_grep "$name: verify names the catalog and says what happened" \
		"^PROBLEM catalog: the catalog is damaged: $what; run \`custos rebuild\`" "$WORK/v.out"
	t_grep "$name: ... and still names b's damaged blob" "^PROBLEM blob-damaged: .*$B" "$WORK/v.out"
	t_grep "$name: ... and the damaged ledger entry" '^PROBLEM ledger-damaged: ledger entry 3 ' \
		"$WORK/v.out"
	[ "$(grep -c '^PROBLEM ledger-damaged:' "$WORK/v.out")" = 1 ] &&
		[ "$(grep -c '^PROBLEM catalog:' "$WORK/v.out")" = 1 ]
	t_ok $? "$name: ... each problem once (what the child found before it died is not repeated)"
	t_grep "$name: ... with the summary line" '^[0-9]+ problem\(s\) found' "$WORK/v.out"
	if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$WORK/v.err"; then
		t_ok 1 "$name: no sanitizer report"
		sed 's/^/#   /' "$WORK/v.err" | head -20
	else
		t_ok 0 "$name: no sanitizer report"
	fi
	ls "$S/tmp" | grep -q '^verify-'
	t_ok $((!$?)) "$name: no scratch catalog is left in tmp/"
}

# ---- open: a damaged sub-database record in the main database's root ----
# Prints, for every node of the main database's root page (from the newest
# meta page; 64-bit LMDB layout), the offset of its flags (node + 4), then
# of its data length (node + 0).
main_nodes() {
	python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read()
psize = struct.unpack_from("<I", d, 40)[0]  # mm_dbs[FREE_DBI].md_pad: the page size
metas = [(struct.unpack_from("<Q", d, m + 144)[0], m) for m in (0, psize)]
m = max(metas)[1]
root = struct.unpack_from("<Q", d, m + 128)[0]  # mm_dbs[MAIN_DBI].md_root
pg = root * psize
lower = struct.unpack_from("<H", d, pg + 12)[0]
nodes = [pg + struct.unpack_from("<H", d, pg + 16 + 2 * i)[0] for i in range((lower - 16) // 2)]
for k in (4, 0):
    for n in nodes:
        print(n + k)' "$1"
}
S="$WORK/open"
found=
for off in $(main_nodes "$DAMAGED/catalog/data.mdb"); do
	rm -rf "$S" && cp -a "$DAMAGED" "$S"
	xor_byte "$S/catalog/data.mdb" "$off" 0xff
	verify_status "$S"
	rc=$?
	if [ $rc -ge 128 ]; then
		found="$off (verify died by signal $((rc - 128)))"
		break
	fi
	if grep -q '^PROBLEM catalog: .*opening it crashed' "$WORK/v.out"; then
		found=$off
		break
	fi
done
[ -n "$found" ]
t_ok $? "open: a catalog that crashes LMDB while custos opens it (byte ${found:-none})"
if [ -n "$found" ]; then
	check_run open 'opening it crashed \(signal [0-9]+, [^)]+\)'
	if command -v mdb_dump >/dev/null 2>&1; then
		{ mdb_dump -a "$S/catalog" >/dev/null 2>&1; r=$?; } 2>/dev/null
		[ $r -ge 128 ]
		t_ok $? "open: LMDB's own mdb_dump dies by a signal on it (exit $r)"
	fi
	"$CUSTOS" verify --store "$S" --json >"$WORK/v.json" 2>"$WORK/v.err"
	r=$?
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
kinds = [p["kind"] for p in j["problems"]]
ok = (set(j) == {"ok", "problem_count", "ledger_size", "problems"} and j["ok"] is False
      and j["problem_count"] == len(kinds) and j["ledger_size"] == 3
      and "catalog" in kinds and "ledger-damaged" in kinds
      and any(p["kind"] == "blob-damaged" and p.get("id") == sys.argv[2] for p in j["problems"]))
sys.exit(not ok)' "$WORK/v.json" "$B" && [ $r -eq 1 ]
	t_ok $? "open: verify --json exits 1 with ok, problem_count, ledger_size (3 intact entries), problems"
fi

# ---- read: damaged page headers ----
S="$WORK/read"
found=
npages=$(($(stat -c %s "$DAMAGED/catalog/data.mdb") / 4096))
for ((pg = npages - 1; pg >= 2; pg--)); do
	[ -z "$found" ] || break
	for o in 17 13 21 19 10 18 20; do
		rm -rf "$S" && cp -a "$DAMAGED" "$S"
		xor_byte "$S/catalog/data.mdb" $((pg * 4096 + o)) 0xff
		verify_status "$S"
		rc=$?
		if [ $rc -ge 128 ]; then
			found="page $pg +$o (verify died by signal $((rc - 128)))"
			break
		fi
		if grep -q '^PROBLEM catalog: .*reading it crashed' "$WORK/v.out"; then
			found="page $pg +$o"
			break
		fi
	done
done
# Opening checks the catalog's header and its meta table (schema number,
# this version's tables), so a damaged page header is mostly found there
# now, before LMDB reads the page. When the search finds no page that
# crashes LMDB while reading, the failpoint build of custos makes verify's
# catalog child die by SIGBUS once the catalog is open, as LMDB would: what
# is tested is verify's handling of it, the same either way.
VERIFY=$CUSTOS
if [ -z "$found" ]; then
	rm -rf "$S" && cp -a "$DAMAGED" "$S"
	export CUSTOS_TEST_CATALOG_SIGNAL=7
	VERIFY=$CUSTOS_FP
	verify_status "$S"
	rc=$?
	grep -q '^PROBLEM catalog: .*reading it crashed' "$WORK/v.out" &&
		found="none by damage: verify's catalog child killed by SIGBUS (failpoint build)"
fi
[ -n "$found" ]
t_ok $? "read: a catalog that crashes LMDB while verify reads it (${found:-none found})"
if [ -n "$found" ]; then
	check_run read 'reading it crashed \(signal [0-9]+, [^)]+\)'
	if [ "$VERIFY" = "$CUSTOS" ] && command -v mdb_dump >/dev/null 2>&1; then
		{ mdb_dump -a "$S/catalog" >/dev/null 2>&1; r=$?; } 2>/dev/null
		[ $r -ge 128 ]
		t_ok $? "read: LMDB's own mdb_dump dies by a signal on it (exit $r)"
	fi
	"$VERIFY" verify --store "$S" "$B" >"$WORK/v.out" 2>"$WORK/v.err"
	[ $? -eq 1 ] && grep -q '^PROBLEM catalog: ' "$WORK/v.out" &&
		grep -q "^PROBLEM blob-damaged: .*$B" "$WORK/v.out" &&
		[ "$(grep -c '^PROBLEM blob-' "$WORK/v.out")" = 1 ]
	t_ok $? "read: verify of b's id alone: the catalog, and b's blob found by the ledger"
	"$VERIFY" verify --store "$S" --checkpoint "$WORK/outside-checkpoint" >"$WORK/v.out" 2>&1
	[ $? -eq 1 ] && grep -q '^PROBLEM catalog: ' "$WORK/v.out" &&
		grep -q '^PROBLEM ledger-damaged: ledger entry 3 .*outside-checkpoint' "$WORK/v.out"
	t_ok $? "read: verify --checkpoint checks the outside checkpoint against the journal"
	# Progress on a terminal: `script` gives verify a pseudo-terminal.
	if command -v script >/dev/null 2>&1; then
		script -qec "'$VERIFY' verify --store '$S'" /dev/null >"$WORK/tty.out" 2>&1
		grep -q 'checking stored files: 3 of 3' "$WORK/tty.out" &&
			grep -q 'PROBLEM catalog: ' "$WORK/tty.out"
		t_ok $? "read: on a terminal, progress is shown (the blobs, checked by the ledger)"
	fi
	# The advice works: without the journal damage, rebuild makes a catalog
	# that verifies but for the blob.
	R="$WORK/rebuilt"
	rm -rf "$R" && cp -a "$S" "$R" && cp "$BASE/ledger/journal" "$R/ledger/journal"
	"$CUSTOS" rebuild --store "$R" >/dev/null 2>&1
	t_status 1 "read: after custos rebuild (journal restored), verify exits 1" "$CUSTOS" verify --store "$R"
	[ "$(grep -c '^PROBLEM' "$WORK/last.out")" = 1 ] &&
		grep -q "^PROBLEM blob-damaged: .*$B" "$WORK/last.out"
	t_ok $? "read: ... naming only b's blob"
fi
unset CUSTOS_TEST_CATALOG_SIGNAL

# ---- refused: the meta pages point the main database past the file ----
S="$WORK/refused"
rm -rf "$S" && cp -a "$DAMAGED" "$S"
python3 -c 'import struct, sys
p = sys.argv[1]; d = bytearray(open(p, "rb").read())
psize = struct.unpack_from("<I", d, 40)[0]
for m in (0, psize):
    struct.pack_into("<Q", d, m + 128, len(d) // psize + 1000)
open(p, "wb").write(d)' "$S/catalog/data.mdb"
verify_status "$S"
rc=$?
check_run refused '(LMDB cannot open it|LMDB found it damaged while reading it|(opening|reading) it crashed \(signal [0-9]+, [^)]+\))'

# ---- header: damaged meta pages, a truncated file ----
# LMDB trusts the meta pages at the start of data.mdb: a garbage last-page
# number or map size made it map terabytes (ENOMEM, reported as "Cannot
# allocate memory"), a truncated file made it read past the end (SIGBUS in
# find). Each pattern must be named as catalog damage by every command: verify
# reports it and checks the rest (exit 1); find and show say to run `custos
# rebuild` (exit 3); custosd refuses to start saying the same; after a
# rebuild (journal restored) only b's blob is damaged.
# damage_header PATTERN FILE
damage_header() {
	python3 -c 'import struct, sys
pat, p = sys.argv[1], sys.argv[2]
d = bytearray(open(p, "rb").read())
if pat == "meta0-at-64":        # the report: 2000 bytes of 0xaa into the first meta page
    d[64:2064] = b"\xaa" * 2000
elif pat == "meta1-at-64":      # the same in the second one
    d[4096 + 64:4096 + 2064] = b"\xaa" * 2000
elif pat == "both-metas":       # both meta pages overwritten
    d[0:8192] = b"\x55" * 8192
elif pat == "mapsize":          # a map size of 2^60 in both metas
    for m in (0, 4096):
        struct.pack_into("<Q", d, m + 32, 1 << 60)
elif pat == "truncated":        # cut after the meta pages and a bit
    d = d[:9000]
elif pat == "one-page":
    d = d[:4096]
open(p, "wb").write(bytes(d))' "$1" "$2"
}
CONF="$WORK/header.conf"
# daemon_refused: custosd has exited, or it has started (its control socket is there).
daemon_refused() { ! daemon_running || [ -S "$S/custosd.sock" ]; }
for pat in meta0-at-64 meta1-at-64 both-metas mapsize truncated one-page; do
	S="$WORK/hdr-$pat"
	rm -rf "$S" && cp -a "$DAMAGED" "$S"
	damage_header "$pat" "$S/catalog/data.mdb"
	verify_status "$S"
	rc=$?
	check_run "$pat" 'LMDB cannot open it'
	! grep -qi 'allocate memory' "$WORK/v.out" "$WORK/v.err"
	t_ok $? "$pat: verify does not call it a memory shortage"
	for cmd in "find --case C-1" "show $B"; do
		"$CUSTOS" ${cmd} --store "$S" >"$WORK/c.out" 2>"$WORK/c.err"
		rc=$?
		[ $rc -eq 3 ] && grep -q 'catalog .*damaged.*custos rebuild' "$WORK/c.err" &&
			! grep -qi 'allocate memory' "$WORK/c.err"
		t_ok $? "$pat: ${cmd%% *} exits 3 (got $rc) saying the catalog is damaged, run custos rebuild"
		[ $rc -eq 3 ] || sed 's/^/#   /' "$WORK/c.err" | head -5
	done
	# custosd: it must exit by itself; a control socket means it started.
	CUSTOS_STORE="$S" daemon_conf "$CONF" cc inbox "$WORK/hdr-inbox"
	mkdir -p "$WORK/hdr-inbox"
	: >"$WORK/hdr.log"
	CUSTOS_STORE="$S" daemon_spawn "$CONF" "$WORK/hdr.log"
	wait_until 300 daemon_refused
	if daemon_running; then
		daemon_kill
		r=started
	else
		wait "$DPID"
		r=$?
	fi
	[ "$r" = 3 ] && grep -q 'catalog is damaged.*custos rebuild' "$WORK/hdr.log" &&
		! grep -qi 'allocate memory' "$WORK/hdr.log"
	t_ok $? "$pat: custosd refuses to start (exit $r, 3 wanted) saying the catalog is damaged"
	[ "$r" = 3 ] || sed 's/^/#   /' "$WORK/hdr.log" | head -5
	cp "$BASE/ledger/journal" "$S/ledger/journal"
	"$CUSTOS" rebuild --store "$S" >"$WORK/c.out" 2>&1
	t_ok $? "$pat: custos rebuild makes the catalog again"
	"$CUSTOS" verify --store "$S" >"$WORK/v.out" 2>&1
	[ $? -eq 1 ] && [ "$(grep -c '^PROBLEM' "$WORK/v.out")" = 1 ] &&
		grep -q "^PROBLEM blob-damaged: .*$B" "$WORK/v.out"
	t_ok $? "$pat: ... after which verify names only b's blob"
done

t_done
