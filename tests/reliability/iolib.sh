# Helpers shared by the I/O reliability tests (io-errors.sh, disk-full.sh,
# power-loss.sh); sourced after tests/integration/lib.sh. Needs CASE and S
# (the store under test) set by the caller.
: "${CSFAULT:?CSFAULT must point at libcsfault.so}"
RELDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The interposer goes ahead of libasan in the sanitizer build.
[ "${CUSTOS_ASAN:-0}" = 1 ] && export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
digest() { sha256sum "$1" | cut -c1-64; }

ERRS=()
fail() { ERRS+=("$*"); }
RUNS=0
FAILURES=0
# report DESCRIPTION: one TAP line for the run just checked, with its problems.
report() {
	local e
	RUNS=$((RUNS + 1))
	if [ ${#ERRS[@]} -eq 0 ]; then
		t_ok 0 "$1"
	else
		FAILURES=$((FAILURES + 1))
		t_ok 1 "$1"
		for e in "${ERRS[@]}"; do echo "#   $e"; done
		[ -n "${REPORT_EXTRA:-}" ] && [ -f "$REPORT_EXTRA" ] && sed 's/^/#   | /' "$REPORT_EXTRA" | head -20
		[ "${KEEP:-0}" = 1 ] && [ -d "$S" ] && cp -a "$S" "$WORK/failed-$T_N"
	fi
	ERRS=()
}

# The Python helpers (durable-image.py, store-check.py) run in one process
# for the whole test: `py TOOL ARG...` sets PY_OUT (its output) and PY_RC.
coproc PYS { exec python3 -S "$RELDIR/pyserve.py"; }
py() {
	local IFS=$'\t' line
	printf '%s\n' "$*" >&"${PYS[1]}"
	PY_OUT=""
	PY_RC=255
	while IFS= read -r line <&"${PYS[0]}"; do
		case $line in
		$'\tEND\t'*)
			PY_RC=${line##*$'\t'}
			return 0
			;;
		esac
		PY_OUT+="$line"$'\n'
	done
	return 1
}

# set_batch NAME FILE...: the files of a scenario, in order, and their
# "path sha256 size" lines in $BATCH.
set_batch() {
	local f
	BATCH="$WORK/$1.batch"
	shift
	FILES=("$@")
	N=${#FILES[@]}
	: >"$BATCH"
	for f in "${FILES[@]}"; do
		echo "$f $(digest "$f") $(stat -c %s "$f")" >>"$BATCH"
	done
}

run_verify() {
	"$CUSTOS" verify --store "$S" >"$WORK/verify.out" 2>&1 ||
		fail "$1: custos verify failed: $(head -3 "$WORK/verify.out" | tr '\n' ' ')"
}

# catalog_digests: the digest of every item (from its ingest event), sorted.
catalog_digests() {
	"$CUSTOS" log --store "$S" --json | sed -n 's/^ *"sha256": "\([0-9a-f]*\)".*/\1/p' | sort
}

ledger_size() { "$CUSTOS" log --store "$S" | wc -l; }

# store_consistent WHEN: after a writer ran: tmp/ empty, objects/ == catalog,
# orphans/ holds only whole blobs named by their digest.
store_consistent() {
	local when=$1 left f d
	left=$(ls -A "$S/tmp" 2>/dev/null)
	[ -z "$left" ] || fail "$when: tmp/ not empty: $(echo $left)"
	d=$(diff <(catalog_digests) <(find "$S/objects/sha256" -type f -printf '%f\n' | sort) | grep '^[<>]')
	[ -z "$d" ] || fail "$when: catalog and objects/ differ (< record without blob, > blob without record): $(echo $d | head -c 300)"
	if [ -d "$S/orphans" ]; then
		for f in "$S"/orphans/*; do
			[ -e "$f" ] || continue
			[ "$(digest "$f")" = "${f##*/}" ] || fail "$when: orphans/${f##*/} does not hold the bytes its name says"
		done
	fi
}

# store_check WHEN FROM PRESENT [ACKED]: the file-level checks of
# store-check.py on $BATCH; FROM may be "-" (no ledger order check). Sets E.
store_check() {
	local line args=(check --custos "$CUSTOS" --store "$S" --case "$CASE" --batch "$BATCH" --prior "$3")
	[ "$2" = - ] || args+=(--from "$2")
	[ -z "${4:-}" ] || args+=(--acked "$4")
	py "${args[@]}"
	E=$(printf '%s' "$PY_OUT" | sed -n 's/^E //p')
	E=${E:-0}
	while IFS= read -r line; do
		case $line in
		"problem: "*) fail "$1: ${line#problem: }" ;;
		"") ;;
		"E "*) ;;
		*) fail "$1: store-check: $line" ;;
		esac
	done <<<"$PY_OUT"
	[ "$PY_RC" -le 1 ] || fail "$1: store-check exited $PY_RC"
}

# sources_intact: every file of $BATCH still has its bytes.
sources_intact() {
	local path sha size
	while read -r path sha size; do
		[ -f "$path" ] && [ "$(digest "$path")" = "$sha" ] || fail "$1: source $path changed or is gone"
	done <"$BATCH"
}
