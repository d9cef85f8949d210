# Helpers shared by the I/O reliability tests (io-errors.sh, disk-full.sh,
# power-loss.sh); sourced after tests/integration/lib.sh (which has the
# general store checks: set_batch, run_verify, store_consistent, ...). Needs
# CASE, and the store under test in $CUSTOS_STORE, set by the caller.
: "${CSFAULT:?CSFAULT must point at libcsfault.so}"
RELDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The interposer goes ahead of libasan in the sanitizer build.
asan_allow_preload

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

# store_check WHEN FROM PRESENT [ACKED]: the file-level checks of
# store-check.py on $BATCH; FROM may be "-" (no ledger order check). Sets E.
store_check() {
	local line args=(check --custos "$CUSTOS" --store "$CUSTOS_STORE" --case "$CASE" --batch "$BATCH" --prior "$3")
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

# rerun_stores_all L_REC: the ingest of $FILES run again on the recovered
# store (L_REC ledger events) stores every file of $BATCH once, with one new
# event per file; verify passes.
rerun_stores_all() {
	"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >"$WORK/rerun.out" 2>"$WORK/rerun.err" ||
		fail "re-running the ingest failed: $(head -3 "$WORK/rerun.err" | tr '\n' ' ')"
	catalog_digests >"$WORK/rerun.present"
	[ -z "$(uniq -d "$WORK/rerun.present")" ] || fail "after the re-run a digest is stored as two items"
	[ -z "$(cut -d' ' -f2 "$BATCH" | sort -u | comm -23 - "$WORK/rerun.present")" ] ||
		fail "after the re-run a file is not stored"
	[ "$(ledger_size)" -eq $(($1 + N)) ] || fail "the re-run left $(($(ledger_size) - $1)) events for $N files"
	run_verify "verify after the re-run"
}

# after_restart FROM PRESENT: after a failed ingest of $FILES (its stdout in
# $WORK/acked), a normal writer start (custos checkpoint, no fault) succeeds;
# verify passes, store_check FROM PRESENT with the acknowledgements, the
# store is consistent, the sources are intact, and a re-run stores all.
after_restart() {
	"$CUSTOS" checkpoint >"$WORK/cp.out" 2>"$WORK/recover.err" ||
		fail "the restart (custos checkpoint) failed: $(head -3 "$WORK/recover.err" | tr '\n' ' ')"
	run_verify "verify after the restart"
	store_check "after the restart" "$1" "$2" "$WORK/acked"
	store_consistent "after the restart"
	sources_intact "after the restart"
	rerun_stores_all "$(ledger_size)"
}

# sources_kept SUMS DIR: every file of SUMS ("sha256 name" lines, dropped
# into the upload directory DIR) is still in DIR with its bytes, or has left
# it and is secured. Sets KEPT, SECURED, and RELEASED (the names of those
# secured and gone); the catalog's digests are left in $WORK/present.
sources_kept() {
	local sha f
	catalog_digests >"$WORK/present"
	KEPT=0
	RELEASED=()
	while read -r sha f; do
		if [ -e "$2/$f" ]; then
			KEPT=$((KEPT + 1))
			[ "$(digest "$2/$f")" = "$sha" ] || fail "the source $f changed"
		elif grep -qx "$sha" "$WORK/present"; then
			RELEASED+=("$f")
		else
			fail "the source $f left the inbox but is not secured"
		fi
	done <"$1"
	SECURED=${#RELEASED[@]}
}

# stopped_all_secured WHEN SUMS: SIGTERM stops custosd with exit 0; verify
# passes, every file of SUMS is secured and no digest is stored as two items
# (the catalog's digests are left in $WORK/present); the store is consistent.
stopped_all_secured() {
	local sha f
	daemon_stop 15 || fail "custosd did not stop on SIGTERM"
	[ "$DRC" -eq 0 ] || fail "custosd exited $DRC $1"
	run_verify "verify $1"
	catalog_digests >"$WORK/present"
	[ -z "$(uniq -d "$WORK/present")" ] || fail "a digest is stored as two items"
	while read -r sha f; do
		grep -qx "$sha" "$WORK/present" || fail "$f was not secured"
	done <"$2"
	store_consistent "$1"
}
