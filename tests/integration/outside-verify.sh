#!/bin/bash
# Proofs checked without custos: a stdlib-only Python verifier does the
# RFC 9162 inclusion check of the tlog-proof@v1 file and openssl checks the
# checkpoint's Ed25519 signature with a key rebuilt from the verifier key.
# Both accept the real proofs and reject one flipped byte; so does
# `custos check-proof`.
. "$(dirname "$0")/lib.sh"

CASE='平司罚〔2020〕1号'
IN="$WORK/in"
P="$WORK/proofs"
mkdir -p "$IN" "$P"

if ! command -v openssl >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
	echo "1..0 # SKIP needs python3 and openssl"
	exit 0
fi

# The outside verifier: tlogcheck.py PROOF VKEY OUTDIR
#   parses the proof and the verifier key, checks the key hash, computes the
#   leaf hash of the extra bytes and the RFC 9162 inclusion proof against the
#   checkpoint's root; writes OUTDIR/{msg,sig,pub.der,event.json} for openssl.
#   Exit 0: included; 1: not included; 2: malformed.
cat >"$WORK/tlogcheck.py" <<'EOF'
import base64, hashlib, json, os, sys

def fail(code, why):
    print('tlogcheck: ' + why, file=sys.stderr)
    sys.exit(code)

proof_path, vkey, out = sys.argv[1], sys.argv[2].strip(), sys.argv[3]
text = open(proof_path, 'rb').read().decode('utf-8')

# -- the verifier key: <name>+<hex key hash>+<base64(0x01 || ed25519 key)>
name, khex, kb64 = vkey.split('+', 2)  # from the left: the base64 may hold '+'
kraw = base64.b64decode(kb64, validate=True)
if len(kraw) != 33 or kraw[0] != 1:
    fail(2, 'not an Ed25519 verifier key')
pub = kraw[1:]
keyhash = hashlib.sha256(name.encode() + b'\n' + kraw).digest()[:4]
if keyhash.hex() != khex:
    fail(2, 'the verifier key hash does not match its key')

# -- the proof: header, extra, index, hashes, blank line, checkpoint note
head, _, note = text.partition('\n\n')
lines = head.split('\n')
if lines[0] != 'c2sp.org/tlog-proof@v1':
    fail(2, 'not a tlog-proof@v1')
extra, index, hashes = None, None, []
for l in lines[1:]:
    if l.startswith('extra '):
        extra = base64.b64decode(l[6:], validate=True)
    elif l.startswith('index '):
        index = int(l[6:])
    else:
        h = base64.b64decode(l, validate=True)
        if len(h) != 32:
            fail(2, 'a proof hash is not 32 bytes')
        hashes.append(h)
if extra is None or index is None:
    fail(2, 'the proof lacks extra or index')

# -- the checkpoint note: text, blank line, signature lines
body, sep, sigs = note.partition('\n\n')
if not sep:
    fail(2, 'the checkpoint has no signatures')
msg = (body + '\n').encode('utf-8')
cl = body.split('\n')
origin, size, root = cl[0], int(cl[1]), base64.b64decode(cl[2], validate=True)
if origin != name:
    fail(2, 'checkpoint origin %r is not the key name %r' % (origin, name))
sig = None
for l in sigs.split('\n'):
    if not l.startswith('\u2014 '):
        continue
    sname, sb64 = l[2:].rsplit(' ', 1)
    raw = base64.b64decode(sb64)
    if sname == name and raw[:4] == keyhash:
        sig = raw[4:]
if sig is None:
    fail(2, 'no signature line by this key')
os.makedirs(out, exist_ok=True)
open(os.path.join(out, 'msg'), 'wb').write(msg)
open(os.path.join(out, 'sig'), 'wb').write(sig)
open(os.path.join(out, 'pub.der'), 'wb').write(bytes.fromhex('302a300506032b6570032100') + pub)
open(os.path.join(out, 'event.json'), 'wb').write(extra)

# -- RFC 9162 section 2.1.3.2
def node(l, r):
    return hashlib.sha256(b'\x01' + l + r).digest()
r = hashlib.sha256(b'\x00' + extra).digest()
if index >= size:
    fail(1, 'index %d outside a tree of %d' % (index, size))
fn, sn = index, size - 1
for p in hashes:
    if sn == 0:
        fail(1, 'the proof is too long')
    if fn & 1 or fn == sn:
        r = node(p, r)
        if not fn & 1:
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
    else:
        r = node(r, p)
    fn >>= 1
    sn >>= 1
if sn != 0:
    fail(1, 'the proof is too short')
if r != root:
    fail(1, 'the computed root differs from the signed root')
print('included: index %d of %d under %s' % (index, size, origin))
EOF

# outside PROOF VKEY NAME: runs both outside checks; sets INC and SIG to their exit codes.
outside() {
	local d="$WORK/out-$3"
	rm -rf "$d"
	python3 "$WORK/tlogcheck.py" "$1" "$2" "$d" >"$WORK/inc.out" 2>&1
	INC=$?
	SIG=9
	if [ -f "$d/pub.der" ]; then
		openssl pkey -pubin -inform DER -in "$d/pub.der" -out "$d/pub.pem" 2>"$WORK/sig.out" &&
			openssl pkeyutl -verify -pubin -inkey "$d/pub.pem" -rawin -in "$d/msg" \
				-sigfile "$d/sig" >>"$WORK/sig.out" 2>&1
		SIG=$?
	fi
	EVENT="$d/event.json"
}
# edit_proof IN OUT extra|sig|index|hash: one change to a proof, as an attacker would.
edit_proof() {
	python3 - "$1" "$2" "$3" <<'EOF'
import base64, sys
src, dst, what = sys.argv[1:]
t = open(src, encoding='utf-8').read()
head, _, note = t.partition('\n\n')
lines = head.split('\n')
if what == 'extra':
    i = [k for k, l in enumerate(lines) if l.startswith('extra ')][0]
    ev = bytearray(base64.b64decode(lines[i][6:]))
    j = ev.find(b'"size":') + 7
    ev[j] ^= 1                      # one digit of the size
    lines[i] = 'extra ' + base64.b64encode(bytes(ev)).decode()
elif what == 'index':
    i = [k for k, l in enumerate(lines) if l.startswith('index ')][0]
    lines[i] = 'index %d' % (int(lines[i][6:]) ^ 1)
elif what == 'hash':
    h = bytearray(base64.b64decode(lines[-1]))
    h[5] ^= 0x80
    lines[-1] = base64.b64encode(bytes(h)).decode()
elif what == 'sig':
    body, _, sigs = note.partition('\n\n')
    sl = sigs.split('\n')
    pre, b64 = sl[0].rsplit(' ', 1)
    raw = bytearray(base64.b64decode(b64))
    raw[4 + 17] ^= 1                # a byte of the signature, not of the key hash
    sl[0] = pre + ' ' + base64.b64encode(bytes(raw)).decode()
    note = body + '\n\n' + '\n'.join(sl)
open(dst, 'w', encoding='utf-8').write('\n'.join(lines) + '\n\n' + note)
EOF
}

t_run "init" "$CUSTOS" init --station ov
t_run "pubkey" "$CUSTOS" pubkey
VKEY=$(cat "$WORK/last.out")
for i in 0 1 2 3 4 5 6 7; do head -c $((i * 3000 + 17)) /dev/urandom >"$IN/f$i.bin"; done
SHA0=$(sha256sum "$IN/f0.bin" | cut -d' ' -f1)
ID0="ov-${SHA0:0:20}"

# a tree of one: an empty inclusion path
t_run "ingest one file" "$CUSTOS" ingest "$IN/f0.bin" --case "$CASE"
t_run "prove it in a tree of 1" "$CUSTOS" prove "$ID0"
cp "$WORK/last.out" "$P/one.proof"
[ "$(head -1 "$P/one.proof")" = 'c2sp.org/tlog-proof@v1' ] && grep -q '^index 0$' "$P/one.proof"
t_ok $? "the proof is tlog-proof@v1 for index 0"
outside "$P/one.proof" "$VKEY" one
t_ok $INC "outside: inclusion in the tree of 1 holds"
[ $INC -eq 0 ] || sed 's/^/#   /' "$WORK/inc.out"
t_ok $SIG "outside: openssl accepts the checkpoint signature"
[ $SIG -eq 0 ] || sed 's/^/#   /' "$WORK/sig.out"

# a tree of 7 (not a power of two): every index
t_run "ingest six more" "$CUSTOS" ingest "$IN/f1.bin" "$IN/f2.bin" "$IN/f3.bin" "$IN/f4.bin" \
	"$IN/f5.bin" "$IN/f6.bin" --case "$CASE" --stage 取证 --officer 007
inc_ok=0 sig_ok=0 ev_ok=0 cp_ok=0
for i in 0 1 2 3 4 5 6; do
	sha=$(sha256sum "$IN/f$i.bin" | cut -d' ' -f1)
	"$CUSTOS" prove "ov-${sha:0:20}" >"$P/f$i.proof" 2>/dev/null
	outside "$P/f$i.proof" "$VKEY" "f$i"
	[ $INC -eq 0 ] && inc_ok=$((inc_ok + 1))
	[ $SIG -eq 0 ] && sig_ok=$((sig_ok + 1))
	python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); sys.exit(not (e["event"]=="ingest" and e["seq"]==int(sys.argv[4]) and e["item"]["sha256"]==sys.argv[2] and e["item"]["id"]==sys.argv[3]))' \
		"$EVENT" "$sha" "ov-${sha:0:20}" "$i" && ev_ok=$((ev_ok + 1))
	"$CUSTOS" check-proof "$P/f$i.proof" --key "$VKEY" >/dev/null 2>&1 && cp_ok=$((cp_ok + 1))
done
[ $inc_ok = 7 ]
t_ok $? "outside: inclusion holds for all 7 items of the tree of 7 ($inc_ok)"
[ $sig_ok = 7 ]
t_ok $? "outside: openssl accepts the signature of all 7 proofs ($sig_ok)"
[ $ev_ok = 7 ]
t_ok $? "outside: each proven event is the ingest of that file's sha256sum, at its index ($ev_ok)"
[ $cp_ok = 7 ]
t_ok $? "custos check-proof accepts all 7 ($cp_ok)"
grep -q '^7$' "$WORK/out-f3/msg"
t_ok $? "the signed checkpoint is for a tree of 7"

# the tree grows: an old item proven again in the tree of 8
t_run "ingest an eighth" "$CUSTOS" ingest "$IN/f7.bin" --case "$CASE"
"$CUSTOS" prove "$ID0" >"$P/f0-8.proof"
outside "$P/f0-8.proof" "$VKEY" f0-8
[ $INC -eq 0 ] && [ $SIG -eq 0 ] && grep -q '^8$' "$WORK/out-f0-8/msg"
t_ok $? "outside: item 0 proven again in the tree of 8, signature good"
cmp -s "$P/f0-8.proof" "$P/f0.proof"
[ $? -ne 0 ]
t_ok $? "... with a different proof than in the tree of 7"

# custos check-proof on the good proof
GOOD="$P/f5.proof"
SHA5=$(sha256sum "$IN/f5.bin" | cut -d' ' -f1)
t_run "custos check-proof accepts a good proof" "$CUSTOS" check-proof "$GOOD" --key "$VKEY"
t_grep "... and says which event of which tree" '^OK: event 5 is in the tree of 7 events signed by custos/ov$' \
	"$WORK/last.out"
t_run "custos check-proof --json" "$CUSTOS" check-proof "$GOOD" --key "$VKEY" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (j["ok"] and j["index"]==5 and j["tree_size"]==7 and j["event"]["item"]["sha256"]==sys.argv[2]))' \
	"$WORK/last.out" "$SHA5"
t_ok $? "check-proof --json gives index, tree size and the event"
t_run "check-proof reads the proof from stdin" sh -c '"$1" check-proof - --key "$2" <"$3"' sh \
	"$CUSTOS" "$VKEY" "$GOOD"

# ---- one byte of the extra line's decoded event flipped ----
edit_proof "$GOOD" "$P/bad-extra.proof" extra
cmp -s "$GOOD" "$P/bad-extra.proof"
[ $? -eq 1 ]
t_ok $? "bad extra: the proof differs from the good one"
outside "$P/bad-extra.proof" "$VKEY" bad-extra
[ $INC -eq 1 ]
t_ok $? "bad extra: the outside inclusion check fails (exit $INC)"
t_ok $SIG "bad extra: the checkpoint signature itself still verifies"
t_status 1 "bad extra: custos check-proof rejects it" "$CUSTOS" check-proof "$P/bad-extra.proof" --key "$VKEY"
t_grep "bad extra: ... saying the event is not in the tree" 'FAILED: the event is not included' "$WORK/last.err"

# ---- one byte of the checkpoint signature flipped ----
edit_proof "$GOOD" "$P/bad-sig.proof" sig
outside "$P/bad-sig.proof" "$VKEY" bad-sig
t_ok $INC "bad signature: the inclusion still computes to the (unsigned) root"
[ $SIG -eq 1 ]
t_ok $? "bad signature: openssl rejects the signature (exit $SIG)"
t_status 1 "bad signature: custos check-proof rejects it" "$CUSTOS" check-proof "$P/bad-sig.proof" --key "$VKEY"
t_grep "bad signature: ... saying the checkpoint is not signed" 'FAILED: the checkpoint is not signed' "$WORK/last.err"

# ---- other single changes ----
edit_proof "$GOOD" "$P/bad-index.proof" index
outside "$P/bad-index.proof" "$VKEY" bad-index
[ $INC -eq 1 ]
t_ok $? "another index: the outside inclusion check fails"
t_status 1 "another index: custos check-proof rejects it" "$CUSTOS" check-proof "$P/bad-index.proof" --key "$VKEY"
edit_proof "$GOOD" "$P/bad-hash.proof" hash
outside "$P/bad-hash.proof" "$VKEY" bad-hash
[ $INC -eq 1 ]
t_ok $? "a proof hash changed: the outside inclusion check fails"
t_status 1 "a proof hash changed: custos check-proof rejects it" "$CUSTOS" check-proof "$P/bad-hash.proof" --key "$VKEY"

# ---- another store's key ----
OTHER="$WORK/other-store"
CUSTOS_STORE="$OTHER" "$CUSTOS" init --station ov >/dev/null 2>&1
OKEY=$(CUSTOS_STORE="$OTHER" "$CUSTOS" pubkey)
[ -n "$OKEY" ] && [ "$OKEY" != "$VKEY" ]
t_ok $? "another store with the same station name has another key"
t_status 1 "custos check-proof rejects the proof under the other key" "$CUSTOS" check-proof "$GOOD" --key "$OKEY"
outside "$GOOD" "$OKEY" other-key
[ $INC -eq 2 ]
t_ok $? "outside: no signature line matches the other key's hash (exit $INC)"
# the same checkpoint under the other key's raw Ed25519 key: openssl must reject it
python3 - "$WORK/out-f5/pub.der" "$OKEY" <<'EOF'
import base64, sys
raw = base64.b64decode(sys.argv[2].split('+', 2)[2])
open(sys.argv[1] + '.other', 'wb').write(bytes.fromhex('302a300506032b6570032100') + raw[1:])
EOF
outside "$GOOD" "$VKEY" f5
openssl pkey -pubin -inform DER -in "$WORK/out-f5/pub.der.other" -out "$WORK/other.pem" 2>/dev/null &&
	openssl pkeyutl -verify -pubin -inkey "$WORK/other.pem" -rawin -in "$WORK/out-f5/msg" \
		-sigfile "$WORK/out-f5/sig" >/dev/null 2>&1
[ $? -eq 1 ]
t_ok $? "openssl rejects the signature under the other store's key"

t_status 2 "check-proof with a malformed key is a usage error" "$CUSTOS" check-proof "$GOOD" --key 'not-a-key'
t_status 2 "check-proof of a file that is not a proof" "$CUSTOS" check-proof "$IN/f1.bin" --key "$VKEY"
t_status 2 "prove of an unknown id" "$CUSTOS" prove ov-00000000000000000000
t_run "verify passes" "$CUSTOS" verify

t_done
