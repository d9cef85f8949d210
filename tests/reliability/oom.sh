#!/bin/bash
# Out of memory: the Nth allocation fails, for N = 1, 2, ... until the
# operation completes without reaching it, once (only that allocation fails)
# and persistently (it and every later one fail), through the LD_PRELOAD
# interposer failmalloc (tests/reliability/failmalloc.c). Swept commands:
#   custos ingest  of three files (a new small one, a new one larger than the
#                  1 MiB copy chunk, so the writer thread runs, and one already
#                  stored, a sighting) into a fresh copy of a prepared store;
#   custos verify  of an intact store and of a store with one damaged blob;
#   custos find    by case number;
#   custosd        on an upload directory and a docked recorder (see the
#                  custosd section below).
# Besides failmalloc, which fails the Nth allocation of the whole process,
# the test builds (custos-failpoint, custosd-failpoint) fail the Nth
# allocation of one library through the allocator hook it offers
# (custos/failpoint.h): OpenSSL's (CRYPTO_set_mem_functions) for the CLI and
# custosd, libuv's (uv_replace_allocator) for custosd. libcurl's
# (curl_global_init_mem) and FFmpeg's (av_max_alloc) will join when custos
# uses those libraries; it does not yet.
# Every run must end cleanly (exit 0, or 1/2/3 with a message; never a signal,
# a hang or a sanitizer report) and leave the store consistent (see
# oomsweep.py for the checks after each run: checkpoint and verify pass, every
# ledger event complete with all the metadata given, each file fully present or
# absent, a file acknowledged by exit 0 present).
#
# Sampling: every N up to 300, then every 10th (CI; custosd and the hooks
# more sparsely, see below); NIGHTLY=1 runs every N.
#
# Leaks: the sanitizer build (meson -Db_sanitize=address,undefined) runs the
# same sweep with leak detection. ASan brings its own malloc, so failmalloc
# cannot call glibc's __libc_malloc there: with FAILMALLOC_NEXT=1 it is
# preloaded ahead of libasan (ASAN_OPTIONS=verify_asan_link_order=0) and
# forwards every allocation it lets through to the next malloc, libasan's, so
# LeakSanitizer still tracks every block. In the normal build there is no leak
# check (only crash and consistency checks).
#
# Environment: CUSTOS (the CLI), FAILMALLOC (path of libfailmalloc.so),
# CUSTOSD and CUSTOSD_FP (the daemon and its test build; no daemon sweeps
# without them), OOM_PART=cli or daemon (only those sweeps).
. "$(dirname "$0")/../integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

if [ -z "${FAILMALLOC:-}" ] || [ ! -r "$FAILMALLOC" ]; then
	echo "1..0 # SKIP FAILMALLOC (libfailmalloc.so) not given"
	exit 77
fi
ASAN=()
SAMPLE=(--dense 300 --step 10)
# custosd: ~8,000 allocations in a run (~5,600 of them starting and
# stopping; ~5,700 of OpenSSL's), ~1 s a run with its checks: sampled more
# sparsely (~3 minutes in all)
DSAMPLE=(--dense 40 --step 40)
DSAMPLE_CRYPTO=(--dense 40 --step 120)
CSAMPLE=(--dense 100 --step 60) # the CLI through OpenSSL's hook
LSAN_SUPP=
if ldd "$CUSTOS" 2>/dev/null | grep -q libasan; then
	ASAN=(--asan)
	# each run costs ~4x more under the sanitizers: sample more sparsely
	SAMPLE=(--dense 100 --step 40)
	DSAMPLE=(--dense 20 --step 60)
	DSAMPLE_CRYPTO=(--dense 20 --step 150)
	CSAMPLE=(--dense 50 --step 250)
	# Leaks that are OpenSSL's own: when an allocation fails while OpenSSL
	# builds its default library context or fetches an algorithm (the
	# implicit fetch behind EVP_sha256() and EVP_PKEY_new_raw_*), it loses
	# the half-built cache entries; nothing was handed to custos to free.
	# custos never calls these fetch functions itself, so a leak of an
	# object custos owns (an EVP_PKEY, an EVP_MD_CTX) is still reported.
	LSAN_SUPP="$WORK/lsan.supp"
	cat >"$LSAN_SUPP" <<'SUPP'
leak:OSSL_LIB_CTX_get0_global_default
leak:EVP_MD_fetch
leak:EVP_KEYMGMT_fetch
SUPP
fi
# The stores of the sweep live on tmpfs (/dev/shm) when there is one: fsync
# costs nothing there, which makes the sweep ~6x faster (the order of durable
# writes is not what this test is about; crash-kill.sh and crash-points.sh
# test that). OOM_WORKDIR=DIR puts them elsewhere.
SW="${OOM_WORKDIR:-}"
if [ -z "$SW" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	SW=$(mktemp -d /dev/shm/custos-oom.XXXXXX) || SW=
	oom_cleanup() {
		local s=$?
		[ "${KEEP:-0}" = 1 ] || rm -rf "$SW"
		(exit $s)
		t_cleanup
	}
	trap oom_cleanup EXIT
fi
[ -n "$SW" ] || SW="$WORK"
T0=$(date +%s)
CASE='C-1'
IN="$WORK/in"
BASE="$WORK/base"
mkdir -p "$IN"
head -c 3000 /dev/urandom >"$IN/new-small.bin"
head -c $((1300 * 1024)) /dev/urandom >"$IN/new-large.bin"
head -c 5000 /dev/urandom >"$IN/old.bin"
export CUSTOS_STORE="$BASE"
"$CUSTOS" init --station oom >/dev/null &&
	"$CUSTOS" ingest "$IN/old.bin" --case C-0 >/dev/null
t_ok $? "a prepared store: one item, one ledger event, one checkpoint"

files_json() {
	python3 - "$@" <<'EOF'
import hashlib, json, os, sys
out = []
for p in sys.argv[1:]:
    base = p.startswith('base:')
    p = p[5:] if base else p
    d = open(p, 'rb').read()
    out.append({'name': os.path.basename(p), 'size': len(d), 'sha256': hashlib.sha256(d).hexdigest(), 'base': base})
print(json.dumps(out))
EOF
}
FILES=$(files_json "$IN/new-small.bin" "$IN/new-large.bin" "base:$IN/old.bin")
META='{"case":"C-1","stage":"取证","officers":["7"],"device":"D-1","source":"cli"}'

# sweep NAME KIND ARGS... -- CMD...: runs oomsweep.py, prints TAP lines.
TOTAL_RUNS=0
TOTAL_FAIL=0
SWEEP_N=0
sweep() {
	local name=$1
	shift
	SWEEP_N=$((SWEEP_N + 1))
	python3 "$HERE/oomsweep.py" --work "$SW/sw$SWEEP_N" --failmalloc "$FAILMALLOC" \
		"${ASAN[@]}" "${SAMPLE[@]}" ${LSAN_SUPP:+--lsan-supp "$LSAN_SUPP"} "$@" >"$WORK/sweep.json" 2>"$WORK/sweep.err"
	local rc=$?
	cat "$WORK/sweep.err"
	if [ $rc -ne 0 ]; then
		t_ok 1 "$name: the sweep ran"
		return
	fi
	for mode in once persist; do
		IFS=$'\t' read -r runs fails hits last done codes strays harness supp uvab uvwhere < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))[sys.argv[2]]
codes = ",".join("%s:%d" % kv for kv in sorted(r["exit_codes"].items()))
where = ", ".join("N=%d in %s" % (a["n"], a["where"]) for a in r["uv_abort_at"][:12]) or "-"
print("\t".join(str(x) for x in (r["runs"], r["failures"], r["hits"], r["last_n"], int(r["completed"]), codes,
      r["strays"], r["harness"], r["suppressed"], r["uv_aborts"], where)))' \
			"$WORK/sweep.json" "$mode")
		TOTAL_RUNS=$((TOTAL_RUNS + runs))
		TOTAL_FAIL=$((TOTAL_FAIL + fails))
		echo "# $name ($mode): $runs runs up to N=$last, $hits reached N; exit codes $codes;" \
			"$strays left an unreferenced blob in objects/"
		[ "$harness" = 0 ] || echo "#   ($harness run(s) not judged: ASan's runtime stopped on the failed allocation itself)"
		[ "$supp" = 0 ] || echo "#   ($supp run(s) leaked only inside OpenSSL's own fetch/initialisation: suppressed)"
		[ "$uvab" = 0 ] || echo "#   ($uvab run(s) ended in libuv's or glibc NSS's own abort() on a failed allocation, a known limit:" \
			"$uvwhere; the store checked as after a crash)"
		[ "$done" = 1 ]
		t_ok $? "$name ($mode): the sweep reached a run that completes (N=$last)"
		[ "$fails" = 0 ]
		t_ok $? "$name ($mode): every run ended cleanly and left a consistent store ($fails failure(s))"
	done
}

if [ "${OOM_PART:-all}" != daemon ]; then
	sweep "ingest" --kind ingest --store "$BASE" --files "$FILES" --meta "$META" --base-events 1 -- \
		ingest "$IN/new-small.bin" "$IN/new-large.bin" "$IN/old.bin" --case "$CASE" --stage 取证 \
		--officer 7 --device D-1

	sweep "verify (intact store)" --kind verify --store "$BASE" -- verify

	# A damaged copy: one byte of old.bin's blob flipped.
	DAM="$WORK/damaged"
	cp -a "$BASE" "$DAM"
	OLD_SHA=$(sha256sum "$IN/old.bin" | cut -d' ' -f1)
	p="$DAM/objects/sha256/${OLD_SHA:0:2}/${OLD_SHA:2:2}/$OLD_SHA"
	chmod u+w "$p" && flip_byte "$p" 100 && chmod 0444 "$p"
	OLD_ID="oom-${OLD_SHA:0:20}"
	CUSTOS_STORE="$DAM" "$CUSTOS" verify >/dev/null 2>&1
	t_ok $([ $? = 1 ] && echo 0 || echo 1) "the damaged copy fails verify without failures injected"
	sweep "verify (damaged store)" --kind verify --store "$DAM" --damaged --expect "$OLD_ID" -- verify

	sweep "find" --kind find --store "$BASE" --expect "$OLD_SHA" -- find --case C-0 --json

	# An allocation failing in a batch's commit, deep in a long run, stops the
	# run. FAILMALLOC_SIZE=8192 counts only allocations of 8,192 bytes: one
	# per batch made durable (the fan-out bitmap of cs_batch_sync) and one
	# per full batch of 128 files recorded (its event arrays); the 2nd is in
	# the commit of the first or second batch. The files already taken then
	# are finished (secured and printed, or reported), none is begun after:
	# at most the batches open at once (6 x 128 files) of 3,000. A run that
	# went on printed every later file as secured after saying that nothing
	# more is ingested.
	MANY="$WORK/many"
	MS="$SW/many-store"
	mkdir -p "$MANY"
	for i in $(seq -w 1 3000); do printf 'many %s\n' "$i" >"$MANY/m$i"; done
	CUSTOS_STORE="$MS" "$CUSTOS" init --station oom >/dev/null 2>&1
	fm_env=(LD_PRELOAD="$FAILMALLOC" FAILMALLOC_SIZE=8192 FAILMALLOC_AT=2
		FAILMALLOC_REPORT="$WORK/many.hit" CUSTOS_STORE="$MS")
	if [ ${#ASAN[@]} -gt 0 ]; then
		fm_env+=(FAILMALLOC_NEXT=1
			ASAN_OPTIONS=detect_leaks=1:exitcode=86:abort_on_error=0:verify_asan_link_order=0)
	fi
	env "${fm_env[@]}" "$CUSTOS" ingest "$MANY"/m* >"$WORK/many.out" 2>"$WORK/many.err"
	rc=$?
	n=$(grep -c . "$WORK/many.out")
	[ -s "$WORK/many.hit" ] && [ $rc = 3 ] &&
		grep -q "could not secure '.*/m[0-9]*': .*no file not begun yet is ingested" "$WORK/many.err"
	t_ok $? "an allocation failing in a batch's commit ends the run with exit 3 and says so (exit $rc)"
	[ "$n" -lt 1000 ]
	t_ok $? "no file is begun after it: $n of 3000 printed as secured (at most 6 batches of 128 taken)"
	python3 - "$WORK/many.out" "$MS" "$CUSTOS" <<'PY'
import json, subprocess, sys, os
printed = [l.rstrip('\n').split('\t')[2].rsplit('/', 1)[-1] for l in open(sys.argv[1]) if l.strip()]
env = dict(os.environ, CUSTOS_STORE=sys.argv[2])
env.pop('LD_PRELOAD', None)
log = json.loads(subprocess.run([sys.argv[3], 'log', '--json'], env=env, capture_output=True,
                                text=True, check=True).stdout)
names = [e['item']['name'] for e in log if e.get('event') == 'ingest']
nums = [int(p[1:]) for p in printed]
# the printed files: in command-line order, and exactly the ledger's ingests
sys.exit(0 if names == printed and nums == sorted(nums) else 1)
PY
	t_ok $? "the files printed as secured are exactly the ledger's events, in command-line order"
	CUSTOS_STORE="$MS" "$CUSTOS" verify >/dev/null 2>&1
	t_ok $? "verify passes on that store"

	# OpenSSL's allocations alone, through its allocator hook in the test
	# build custos-failpoint (~5,500 in ingest and verify: most of them
	# OpenSSL building its default context and fetching its algorithms).
	if [ -n "${CUSTOS_FP:-}" ]; then
		sweep "ingest, OpenSSL's allocator" --inject crypto "${CSAMPLE[@]}" --kind ingest \
			--store "$BASE" --files "$FILES" --meta "$META" --base-events 1 -- \
			ingest "$IN/new-small.bin" "$IN/new-large.bin" "$IN/old.bin" --case "$CASE" \
			--stage 取证 --officer 7 --device D-1
		sweep "verify (damaged store), OpenSSL's allocator" --inject crypto "${CSAMPLE[@]}" \
			--kind verify --store "$DAM" --damaged --expect "$OLD_ID" -- verify
		sweep "find, OpenSSL's allocator" --inject crypto --kind find --store "$BASE" \
			--expect "$OLD_SHA" -- find --case C-0 --json
	fi
fi

# ---- custosd ----
# The daemon with the Nth allocation failing, started on a copy of the same
# store with an upload directory holding the same three files (each with a
# sidecar: its metadata) and a docked recorder (DEVICE.json and two files);
# release = delete, settle_seconds = 0, rescan_seconds = 1. A run ends when
# custosd exits by itself, or when the inbox is empty and the recorder's
# receipt written (then SIGTERM), or after 30 s (a hang: a failure).
# oomsweep.py --kind daemon then checks the sources (each in its place
# untouched, or secured), the receipt (only once both recorder files are
# secured, listing them, signed), restarts a custosd without faults on the
# same store until everything is taken, and checks that each file was
# secured exactly once with all its metadata and that verify passes.
# Three injectors: failmalloc (every allocation of the process), and in the
# test build custosd-failpoint the allocator hooks of libuv
# (uv_replace_allocator) and of OpenSSL (CRYPTO_set_mem_functions).
if [ "${OOM_PART:-all}" != cli ] && [ -n "${CUSTOSD:-}" ] && [ -n "${CUSTOSD_FP:-}" ]; then
	D_T0=$(date +%s)
	DIN="$WORK/d-inbox"
	DREC="$WORK/d-recorder"
	mkdir -p "$DIN" "$DREC"
	cp "$IN"/*.bin "$DIN"/
	SIDE='{"case":"C-1","stage":"取证","officers":["7"],"device":"D-1"}'
	for f in "$DIN"/*.bin; do printf '%s\n' "$SIDE" >"$f.json"; done
	head -c 4000 /dev/urandom >"$DREC/BWC7_OF1_20261128083101_0001.mp4"
	head -c 300000 /dev/urandom >"$DREC/BWC7_OF1_20261128083201_0002.mp4"
	printf '{"device_id": "BWC7", "model": "BWC-X2", "officer_id": "OF1", "clock": "%s"}\n' \
		"$(date -u -d '-90 sec' +%Y-%m-%dT%H:%M:%SZ)" >"$DREC/DEVICE.json"
	DFILES=$(python3 - "$DIN" "$DREC" <<'EOF'
import hashlib, json, os, sys
inbox = {"case": "C-1", "stage": "取证", "officers": ["7"], "device": "D-1", "source": "inbox"}
dock = {"source": "dock", "device": "BWC7", "officers": ["OF1"], "keys": ["recorded_start"],
        "extra_keys": ["dock_session", "recorder_model", "recorder_clock_at_docking",
                       "clock_offset_ms", "seq", "recorded_start_reported"]}
out = []
for where, d in (("inbox", sys.argv[1]), ("dock", sys.argv[2])):
    for n in sorted(os.listdir(d)):
        if n.endswith(".json"):
            continue
        b = open(os.path.join(d, n), "rb").read()
        out.append({"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest(),
                    "where": where, "base": n == "old.bin",
                    "meta": dict(inbox if where == "inbox" else dock, name=n)})
print(json.dumps(out, ensure_ascii=False))
EOF
)
	DARGS=(--kind daemon --store "$BASE" --files "$DFILES" --base-events 1 --inbox-src "$DIN"
		--dock-src "$DREC" --bound 30)
	sweep "custosd" "${DARGS[@]}" "${DSAMPLE[@]}"
	sweep "custosd, libuv's allocator" "${DARGS[@]}" --inject uv --dense 100000
	sweep "custosd, OpenSSL's allocator" "${DARGS[@]}" --inject crypto "${DSAMPLE_CRYPTO[@]}"
	echo "# custosd sweeps: $(($(date +%s) - D_T0)) s"
fi

echo "# oom: runs $TOTAL_RUNS, failures $TOTAL_FAIL ($(($(date +%s) - T0)) s)"
t_done
