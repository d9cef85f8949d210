#!/bin/bash
# custosd on upload directories, with a real daemon process and real files:
# a file written slowly in chunks is taken once and complete; files that
# arrived while custosd was stopped are taken at start; hostile entries
# (symlinks, hard links, FIFOs) neither hang it nor leak outside files; a
# folder more than 32 deep is named in a warning, not silently skipped;
# a broken configuration on SIGHUP keeps it running; SIGTERM exits cleanly.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"

IN="$WORK/inbox"
mkdir -p "$IN" "$WORK/outside"
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" DTEST inbox "$IN" settle_seconds=1 rescan_seconds=2 max_file_size=2M

# wait_events N: until the catalog holds N ledger events (or 30 s).
wait_events() { wait_until 30 events_at_least "$1"; }

t_run "custosd --check-config accepts a valid file" "$CUSTOSD" --config "$CONF" --check-config
printf '[ingest]\nconcurrency = lots\n' >"$WORK/bad.conf"
t_status 2 "custosd --check-config refuses a bad value" "$CUSTOSD" --config "$WORK/bad.conf" --check-config --store "$WORK/x" --inbox "$IN"
t_grep "the error names the line and the setting" "line 2: concurrency" "$WORK/last.err"

daemon_start "$CONF" "$WORK/daemon.log"
t_ok $? "custosd starts and opens its control socket"

# A slow writer: 6 chunks of 200 KiB, 0.7 s apart (longer than the settle time).
head -c 1228800 /dev/urandom >"$WORK/slow.src"
(
	for i in 0 1 2 3 4 5; do
		dd if="$WORK/slow.src" of="$IN/slow.bin" bs=204800 skip=$i seek=$i count=1 conv=notrunc status=none
		sleep 0.7
	done
) &
WRITER=$!
wait $WRITER
wait_events 1
want=$(sha256sum <"$WORK/slow.src" | cut -d' ' -f1)
"$CUSTOS" find --sha256 "$want" --json >"$WORK/found.json"
t_grep "the slowly written file is secured complete" "\"size\": 1228800" "$WORK/found.json"
sleep 2.5
n=$(n_events)
t_ok $([ "$n" -eq 1 ] && echo 0 || echo 1) "it was taken exactly once, never half (ledger has $n event)"

# Hostile entries.
echo "outside secret" >"$WORK/outside/secret"
ln -s "$WORK/outside/secret" "$IN/link-to-file"
ln -s "$WORK/outside" "$IN/link-to-dir"
ln "$WORK/outside/secret" "$IN/hardlink"
mkfifo "$IN/fifo"
echo "good file" >"$IN/good.txt"
wait_events 2
sleep 3
secret=$(sha256sum <"$WORK/outside/secret" | cut -d' ' -f1)
"$CUSTOS" find --sha256 "$secret" --json >"$WORK/leak.json"
t_grep "no file from outside the inbox was taken" '^\[\]$' "$WORK/leak.json"
daemon_running
t_ok $? "custosd is still running after the hostile entries"
t_grep "the refusals are logged by name" "refused .*link-to-file" "$WORK/daemon.log"
daemon_status >"$WORK/status.json"
t_grep "status over the control socket answers" '"ok": true' "$WORK/status.json"

# A file over max_file_size is refused once and the refusal recorded in its
# job (as every refusal is), so that a rescan does not take and refuse it
# again and again.
refused_jobs() { daemon_status | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"].get("refused", 0))'; }
r0=$(refused_jobs)
head -c 3000000 /dev/urandom >"$WORK/big.src"
mv "$WORK/big.src" "$IN/big.bin"
wait_until 20 grep -q "refused $IN/big.bin: .*too large" "$WORK/daemon.log"
t_ok $? "a file over max_file_size (2M) is refused, the log says it is too large"
wait_until 20 test "$(refused_jobs)" = $((r0 + 1))
t_ok $? "... and its refusal is recorded in its job ($r0 refused jobs before, $(refused_jobs) after)"

# A folder more than 32 deep is not entered, and the operator is told which.
deep="$WORK/deepstage"
for i in $(seq 1 33); do deep="$deep/d$i"; done
mkdir -p "$deep"
echo "too deep" >"$deep/file.txt"
mv "$WORK/deepstage/d1" "$IN/d1"
deep33=$(cd "$WORK/deepstage" && echo "$deep" | sed "s|^$WORK/deepstage/||")
wait_until 20 grep -q "$IN/$deep33 is more than 32 folders deep: custosd does not look inside" "$WORK/daemon.log"
t_ok $? "a folder 33 deep in an upload directory is named in a warning"
rm -rf "$IN/d1"

# SIGHUP with a broken configuration keeps the daemon running on the old one.
cp "$CONF" "$CONF.good"
echo "this is not ini" >>"$CONF"
kill -HUP $DPID
sleep 0.5
daemon_running
t_ok $? "custosd survives SIGHUP with a broken configuration"
t_grep "the refused reload is explained" "reload refused" "$WORK/daemon.log"
cp "$CONF.good" "$CONF"

# Stop; files that arrive while it is down are taken at the next start.
daemon_stop
t_ok $DRC "SIGTERM stops custosd cleanly (exit 0)"
echo "arrived while stopped 1" >"$IN/offline1.txt"
echo "arrived while stopped 2" >"$IN/offline2.txt"
before=$(n_events)
daemon_start "$CONF" "$WORK/daemon.log"
wait_events $((before + 2))
t_ok $? "files created while custosd was stopped are taken at start"
daemon_stop
t_run "custos verify passes afterwards" "$CUSTOS" verify
t_done
