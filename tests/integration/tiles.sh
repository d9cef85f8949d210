#!/bin/bash
# `custos tiles --to DIR`: the ledger published as C2SP tlog-tiles, checked
# by a stdlib-only Python reader that knows nothing of custos: it reads the
# checkpoint, every hash tile and entry bundle, checks each against the level
# below, recomputes the root and the RFC 9162 inclusion proofs from the tiles
# alone and compares them with what `custos prove` prints. Then the log grows
# and is published again: full tiles stay as they were (same inode, mtime and
# bytes), new ones appear, superseded partial tiles go, the checkpoint moves.
# A flipped byte in any tile makes the reader fail; a directory holding
# another log, or a tile that cannot be written, leaves the checkpoint alone.
. "$(dirname "$0")/lib.sh"
need_python3

IN="$WORK/in"
PUB="$WORK/pub"
mkdir -p "$IN" "$PUB"

# tilecheck.py DIR VKEY [PROOF-FILE...]: exit 0 if the tiles give the signed
# root and every proof's hashes; 1 if something does not match; 2 if
# something is missing or malformed. Writes DIR's checkpoint msg/sig/pub.der
# to $TC_OUT for openssl.
cat >"$WORK/tilecheck.py" <<'EOF'
import base64, hashlib, os, sys

def fail(code, why):
    print('tilecheck: ' + why, file=sys.stderr)
    sys.exit(code)

def sha(b):
    return hashlib.sha256(b).digest()

def node(l, r):
    return sha(b'\x01' + l + r)

d, vkey, proofs = sys.argv[1], sys.argv[2].strip(), sys.argv[3:]

# -- the checkpoint (c2sp.org/tlog-checkpoint in a c2sp.org/signed-note)
name, khex, kb64 = vkey.split('+', 2)
kraw = base64.b64decode(kb64, validate=True)
keyhash = sha(name.encode() + b'\n' + kraw)[:4]
note = open(os.path.join(d, 'checkpoint'), 'rb').read().decode('utf-8')
body, sep, sigs = note.partition('\n\n')
if not sep:
    fail(2, 'the checkpoint has no signature')
cl = body.split('\n')
origin, size, root = cl[0], int(cl[1]), base64.b64decode(cl[2], validate=True)
if origin != name:
    fail(1, 'origin %r is not the key name %r' % (origin, name))
sig = None
for l in sigs.split('\n'):
    if l.startswith('\u2014 '):
        sname, sb64 = l[2:].rsplit(' ', 1)
        raw = base64.b64decode(sb64)
        if sname == name and raw[:4] == keyhash:
            sig = raw[4:]
if sig is None:
    fail(1, 'no signature by the key')
out = os.environ.get('TC_OUT')
if out:
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, 'msg'), 'wb').write((body + '\n').encode())
    open(os.path.join(out, 'sig'), 'wb').write(sig)
    open(os.path.join(out, 'pub.der'), 'wb').write(
        bytes.fromhex('302a300506032b6570032100') + kraw[1:])

# -- tiles, as c2sp.org/tlog-tiles names them
def path(level, n, w):
    s = '%03d' % (n % 1000)
    while n >= 1000:
        n //= 1000
        s = 'x%03d/%s' % (n % 1000, s)
    p = os.path.join(d, 'tile', str(level), s)
    return p + ('.p/%d' % w if w < 256 else '')

cache = {}
def tile(level, n):
    """Tile n of `level` as the tree of `size` has it: full, or partial at the edge."""
    if (level, n) in cache:
        return cache[(level, n)]
    hashes = size >> (8 * level) if level != 'entries' else size
    if n < hashes // 256:
        w = 256
    elif n == hashes // 256 and hashes % 256:
        w = hashes % 256
    else:
        fail(2, 'tile %s/%d is not in a tree of %d' % (level, n, size))
    p = path(level, n, w)
    try:
        data = open(p, 'rb').read()
    except OSError as e:
        fail(2, 'missing %s (%s)' % (p, e))
    if level == 'entries':
        ents, i = [], 0
        while i < len(data):
            if i + 2 > len(data):
                fail(1, '%s: a torn length prefix' % p)
            ln = int.from_bytes(data[i:i + 2], 'big')
            if i + 2 + ln > len(data):
                fail(1, '%s: an entry runs past the end' % p)
            ents.append(data[i + 2:i + 2 + ln])
            i += 2 + ln
        if len(ents) != w:
            fail(1, '%s holds %d entries, not %d' % (p, len(ents), w))
        val = ents
    else:
        if len(data) != 32 * w:
            fail(1, '%s is %d bytes, not %d' % (p, len(data), 32 * w))
        val = [data[32 * i:32 * i + 32] for i in range(w)]
    cache[(level, n)] = val
    return val

def tile_hash(level, i):
    """Hash i of tile level `level`: MTH of leaves [i*256^level, (i+1)*256^level)."""
    return tile(level, i // 256)[i % 256]

def perfect(h, i):
    """Hash of the perfect subtree at tree height h, index i, from the tiles."""
    if h % 8 == 0:
        return tile_hash(h // 8, i)
    return node(perfect(h - 1, 2 * i), perfect(h - 1, 2 * i + 1))

def mth(lo, hi):
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        return perfect(n.bit_length() - 1, lo // n)
    k = 1 << ((n - 1).bit_length() - 1)
    return node(mth(lo, lo + k), mth(lo + k, hi))

def inclusion(m, lo, hi):
    n = hi - lo
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < lo + k:
        return inclusion(m, lo, lo + k) + [mth(lo + k, hi)]
    return inclusion(m, lo + k, hi) + [mth(lo, lo + k)]

# every entry hashes to its level-0 hash; every higher hash is its full tile's root
levels = 0
while levels < 8 and size >> (8 * levels):
    levels += 1
for n in range((size + 255) // 256):
    ents = tile('entries', n)
    for i, e in enumerate(ents):
        if sha(b'\x00' + e) != tile(0, n)[i]:
            fail(1, 'entry %d does not hash to its level-0 tile hash' % (n * 256 + i))
for level in range(1, levels):
    for i in range(size >> (8 * level)):
        below = tile(level - 1, i)
        if len(below) != 256:
            fail(1, 'a level-%d hash stands for a partial tile' % level)
        hs = list(below)
        while len(hs) > 1:
            hs = [node(hs[j], hs[j + 1]) for j in range(0, len(hs), 2)]
        if hs[0] != tile_hash(level, i):
            fail(1, 'hash %d of level %d is not the root of the tile below' % (i, level))
if size == 0 or mth(0, size) != root:
    fail(1, 'the tiles do not give the signed root')

# -- each proof (c2sp.org/tlog-proof@v1, the first in the file) against the tiles
for pf in proofs:
    text = open(pf, encoding='utf-8').read()
    head, _, pnote = text.partition('\n\n')
    lines = head.split('\n')
    if lines[0] != 'c2sp.org/tlog-proof@v1':
        fail(2, '%s is not a tlog-proof' % pf)
    extra, index, hashes = None, None, []
    for l in lines[1:]:
        if l.startswith('extra '):
            extra = base64.b64decode(l[6:], validate=True)
        elif l.startswith('index '):
            index = int(l[6:])
        else:
            hashes.append(base64.b64decode(l, validate=True))
    if not pnote.startswith(body + '\n'):
        fail(1, '%s: its checkpoint is not the published one' % pf)
    if tile('entries', index // 256)[index % 256] != extra:
        fail(1, '%s: the entry bundle does not hold the event bytes' % pf)
    if inclusion(index, 0, size) != hashes:
        fail(1, '%s: the tiles give another inclusion proof for %d' % (pf, index))
print('ok: tree of %d, root and %d proof(s) from the tiles' % (size, len(proofs)))
EOF

# check DIR [PROOF...]: the reader's verdict in TC (its output in $WORK/tc.out),
# and openssl's on the checkpoint signature in SIGOK.
check() {
	local dir=$1
	shift
	rm -rf "$WORK/tc"
	TC_OUT="$WORK/tc" python3 "$WORK/tilecheck.py" "$dir" "$VKEY" "$@" >"$WORK/tc.out" 2>&1
	TC=$?
	SIGOK=9
	if [ -f "$WORK/tc/pub.der" ] && command -v openssl >/dev/null 2>&1; then
		openssl pkey -pubin -inform DER -in "$WORK/tc/pub.der" -out "$WORK/tc/pub.pem" \
			2>/dev/null &&
			openssl pkeyutl -verify -pubin -inkey "$WORK/tc/pub.pem" -rawin \
				-in "$WORK/tc/msg" -sigfile "$WORK/tc/sig" >/dev/null 2>&1
		SIGOK=$?
	fi
}
show_tc() { [ "$TC" -eq 0 ] || sed 's/^/#   /' "$WORK/tc.out"; }

# prove_files NAME...: `custos prove` of the items of files $IN/NAME into $WORK/proofs.
PROOFS=()
prove_files() {
	local f sha
	PROOFS=()
	mkdir -p "$WORK/proofs"
	for f in "$@"; do
		sha=$(digest "$IN/$f")
		"$CUSTOS" prove "tl-${sha:0:20}" >"$WORK/proofs/$f.proof" 2>>"$WORK/prove.err" ||
			echo "prove $f failed" >>"$WORK/prove.err"
		PROOFS+=("$WORK/proofs/$f.proof")
	done
}

# snapshot DIR: "inode mtime sha256 path" of every full tile (no .p/ in the path).
snapshot() {
	(cd "$1" && find tile -type f ! -path '*.p/*' | sort | while read -r f; do
		echo "$(stat -c '%i %.9Y' "$f") $(digest "$f") $f"
	done) | sort
}
cp_size() { sed -n 2p "$1/checkpoint"; }

t_run "init" "$CUSTOS" init --station tl
t_run "pubkey" "$CUSTOS" pubkey
VKEY=$(cat "$WORK/last.out")
t_run "tiles --help" "$CUSTOS" tiles --help
t_grep "the help names the layout" 'tile/entries' "$WORK/last.out"
t_status 2 "tiles without --to is a usage error" "$CUSTOS" tiles
t_run "publish the empty log (init signs its checkpoint)" "$CUSTOS" tiles --to "$PUB"
[ "$(sed -n 2p "$PUB/checkpoint")" = 0 ] && [ ! -e "$PUB/tile" ]
t_ok $? "the empty tree: a checkpoint of size 0 and no tile"

# 600 events: level-0 tiles 000 and 001 full, 002 partial; level 1 partial.
for i in $(seq 1 600); do printf 'tile test file %d\n' "$i" >"$IN/a$i.txt"; done
t_run "ingest 600 small files in one run" "$CUSTOS" ingest "$IN"/a*.txt
t_run "publish the tiles" "$CUSTOS" tiles --to "$PUB"
N1=$(cp_size "$PUB")
[ "$N1" -gt 512 ] && [ $((N1 % 256)) -ne 0 ] && [ $((N1 / 256)) -lt 256 ]
t_ok $? "the published tree has partial tiles at levels 0 and 1 ($N1 events)"
missing=""
for f in tile/0/000 tile/0/001 "tile/0/002.p/$((N1 % 256))" "tile/1/000.p/$((N1 / 256))" \
	tile/entries/000 tile/entries/001 "tile/entries/002.p/$((N1 % 256))"; do
	[ -f "$PUB/$f" ] || missing="$missing $f"
done
[ -z "$missing" ]
t_ok $? "the tlog-tiles paths are there (missing:${missing:- none})"
[ "$(stat -c %s "$PUB/tile/0/000")" = 8192 ]
t_ok $? "a full hash tile is 256 hashes, 8192 bytes"
cmp -s "$PUB/checkpoint" <("$CUSTOS" checkpoint 2>/dev/null)
t_ok $? "DIR/checkpoint is the store's latest signed checkpoint"

prove_files a1.txt a2.txt a256.txt a257.txt a300.txt a513.txt a599.txt a600.txt
check "$PUB" "${PROOFS[@]}"
t_ok $TC "the outside reader recomputes the signed root and 8 custos proofs from the tiles"
show_tc
[ ! -s "$WORK/prove.err" ] || sed 's/^/#   prove: /' "$WORK/prove.err"
if command -v openssl >/dev/null 2>&1; then
	t_ok $SIGOK "openssl accepts the published checkpoint's Ed25519 signature"
fi

# tampering with any tile: the reader fails
tamper() { # tamper FILE OFFSET: a copy of the tiles with one bit flipped at OFFSET
	rm -rf "$WORK/bad"
	cp -a "$PUB" "$WORK/bad"
	python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[o] ^= 1; open(p, "wb").write(b)' "$WORK/bad/$1" "$2"
	check "$WORK/bad"
}
tamper tile/0/001 4000
[ "$TC" -eq 1 ]
t_ok $? "a flipped bit in a full level-0 tile: the reader fails ($TC)"
tamper "tile/0/002.p/$((N1 % 256))" 40
[ "$TC" -eq 1 ]
t_ok $? "a flipped bit in the partial level-0 tile: the reader fails ($TC)"
tamper "tile/1/000.p/$((N1 / 256))" 33
[ "$TC" -eq 1 ]
t_ok $? "a flipped bit in the level-1 tile: the reader fails ($TC)"
tamper tile/entries/000 100
[ "$TC" -eq 1 ]
t_ok $? "a flipped bit in an entry bundle: the reader fails ($TC)"

# publishing again with nothing new writes nothing
snapshot "$PUB" >"$WORK/snap1"
CPINO=$(stat -c %i "$PUB/checkpoint")
t_run "publish again, nothing new" "$CUSTOS" tiles --to "$PUB" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (j["written"]==0 and not j["checkpoint_written"] and j["kept"]==7))' "$WORK/last.out"
t_ok $? "nothing written, 7 tiles kept, the checkpoint left alone"
[ "$(stat -c %i "$PUB/checkpoint")" = "$CPINO" ]
t_ok $? "the checkpoint file is the same file"

# grow past 768: tile 002 becomes full, its partial goes; 003 is partial
for i in $(seq 1 300); do printf 'second batch file %d\n' "$i" >"$IN/b$i.txt"; done
t_run "ingest 300 more" "$CUSTOS" ingest "$IN"/b*.txt
t_run "publish incrementally" "$CUSTOS" tiles --to "$PUB" --json
cp "$WORK/last.out" "$WORK/inc.json"
N2=$(cp_size "$PUB")
[ "$N2" -gt "$N1" ] && [ $((N2 / 256)) -gt $((N1 / 256)) ]
t_ok $? "the checkpoint moved on to $N2 events, past a tile boundary"
snapshot "$PUB" >"$WORK/snap2"
gone=$(comm -23 "$WORK/snap1" "$WORK/snap2")
[ -z "$gone" ]
t_ok $? "every full tile of the first run is unchanged: inode, mtime and bytes"
[ -n "$gone" ] && echo "$gone" | sed 's/^/#   changed: /'
new=$(comm -13 "$WORK/snap1" "$WORK/snap2" | awk '{print $4}' | sort | tr '\n' ' ')
[ "$new" = "tile/0/002 tile/entries/002 " ]
t_ok $? "the new full tiles are there: $new"
[ ! -e "$PUB/tile/0/002.p" ] && [ ! -e "$PUB/tile/entries/002.p" ] &&
	[ -f "$PUB/tile/0/003.p/$((N2 % 256))" ] && [ -f "$PUB/tile/1/000.p/$((N2 / 256))" ]
t_ok $? "the superseded partial tiles are gone, the new partial ones are there"
[ -f "$PUB/tile/1/000.p/$((N1 / 256))" ]
t_ok $? "the level-1 partial tile of the earlier checkpoint stays (its full tile is not there)"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (j["written"]==5 and j["pruned"]==2 and j["checkpoint_written"] and j["previous_size"]==int(sys.argv[2])))' "$WORK/inc.json" "$N1"
t_ok $? "the run wrote 5 tiles, removed 2 partial ones, wrote the checkpoint"
[ $? -eq 0 ] || sed 's/^/#   /' "$WORK/inc.json"
prove_files a1.txt a300.txt a600.txt b1.txt b150.txt b300.txt
check "$PUB" "${PROOFS[@]}"
t_ok $TC "the outside reader checks the grown tree and 6 proofs, old and new items"
show_tc

# a directory that holds another log is refused and left as it was
OTHER="$WORK/other"
"$CUSTOS" init --store "$OTHER" --station tl >/dev/null 2>&1
printf 'other\n' >"$WORK/other.txt"
"$CUSTOS" ingest --store "$OTHER" "$WORK/other.txt" >/dev/null 2>&1
cp "$PUB/checkpoint" "$WORK/cp.before"
t_status 1 "publishing another store (same station name) into DIR: refused" \
	"$CUSTOS" tiles --store "$OTHER" --to "$PUB"
t_grep "it says the checkpoint is not this store's" "not a checkpoint signed by this store" \
	"$WORK/last.err"
cmp -s "$WORK/cp.before" "$PUB/checkpoint" && [ ! -e "$PUB/tile/entries/000.p" ]
t_ok $? "DIR is unchanged"

# a tile that cannot be written: the checkpoint stays the old one (it goes last)
for i in $(seq 1 250); do printf 'third batch file %d\n' "$i" >"$IN/c$i.txt"; done
t_run "ingest 250 more" "$CUSTOS" ingest "$IN"/c*.txt
N3=$(("$CUSTOS" checkpoint 2>/dev/null || true) | sed -n 2p)
mkdir -p "$PUB/tile/0/003" # a directory where the next full tile must go
t_status 1 "publishing with a tile path blocked: refused" "$CUSTOS" tiles --to "$PUB"
[ "$(cp_size "$PUB")" = "$N2" ]
t_ok $? "the checkpoint is still the one of $N2 events, not $N3"
check "$PUB"
t_ok $TC "the directory still checks out for its checkpoint"
show_tc
rmdir "$PUB/tile/0/003"
t_run "publish after the path is cleared" "$CUSTOS" tiles --to "$PUB"
[ "$(cp_size "$PUB")" = "$N3" ]
t_ok $? "now the checkpoint is the one of $N3 events"
check "$PUB"
t_ok $TC "and the outside reader checks it"
show_tc

t_status 2 "a --to that is not a directory: usage error" "$CUSTOS" tiles --to "$WORK/nope"
t_grep "it says so" 'not a directory' "$WORK/last.err"
t_done
