#!/usr/bin/env bash
# A throw-away single-node Ceph RGW (S3) on 127.0.0.1 for custos's S3 tests:
# one monitor, one OSD (memstore, data in RAM; OSD_STORE=bluestore for a
# sparse file on disk), pool size 1, no cephx, radosgw (beast) on a loopback
# port. Everything lives under DIR; the daemons are stopped by the pids in
# DIR/run only (and only when their command line names DIR's ceph.conf).
#
#   tests/s3/rgw.sh up DIR      start (finds free ports below the ephemeral
#                               range; three tries); writes DIR/s3.env:
#                               S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY
#   tests/s3/rgw.sh down DIR    stop by pid files, remove DIR (KEEP_DIR=1 keeps it)
#
# The Debian packages ceph-mon, ceph-osd and radosgw must be installed
# (scripts/setup.sh installs them; RGW_INSTALL=1 lets `up` install them,
# as root, with --no-install-recommends). Knobs: MEMSTORE_BYTES (default
# 1 GiB), OSD_STORE, RGW_PORT (default: a free port). Every wait is bounded.
set -euo pipefail

cmd=${1:?usage: rgw.sh up|down DIR}
DIR=${2:?usage: rgw.sh up|down DIR}
CONF=$DIR/ceph.conf

log() { echo "rgw.sh: $*" >&2; }
die() { log "$*"; exit 1; }

running() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

stop_one() {
	local f=$1 pid
	[ -s "$f" ] || return 0
	pid=$(cat "$f")
	case $pid in '' | *[!0-9]*) rm -f "$f"; return 0 ;; esac
	if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF"; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
		running "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$f"
}

down() {
	[ -d "$DIR" ] || return 0
	for n in client.rgw.a osd.0 mon.a; do stop_one "$DIR/run/$n.pid"; done
	[ "${KEEP_DIR:-0}" = 1 ] || rm -rf "$DIR"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A port below the kernel's ephemeral range: a port in that range may be taken
# by any outgoing connection (this machine's tests make thousands) between the
# check and the bind, and radosgw then fails with "Address already in use".
free_port() {
	local p lo hi
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "${lo:-0}" -gt 12000 ] || lo=32768
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10002)))
		port_free "$p" && port_free $((p + 1)) && { echo "$p"; return 0; }
	done
	return 1
}

up() {
	local missing=() p
	for p in ceph-mon ceph-osd radosgw; do command -v "$p" >/dev/null || missing+=("$p"); done
	if [ ${#missing[@]} -gt 0 ]; then
		[ "${RGW_INSTALL:-0}" = 1 ] || die "missing ${missing[*]}: run scripts/setup.sh (as root)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			ceph-mon ceph-osd radosgw >"$DIR.apt.log" 2>&1 || die "apt-get failed: $DIR.apt.log"
	fi
	down
	mkdir -p "$DIR"/{run,log,mon,osd/osd.0,rgw}
	local rgw_port=${RGW_PORT:-$(free_port)} mon_port
	mon_port=$(free_port) || die "no free port"
	local fsid uuid
	fsid=$(cat /proc/sys/kernel/random/uuid)
	uuid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$CONF" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$((mon_port + 1)),v1:127.0.0.1:$mon_port]
public_network = 127.0.0.0/8
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_supported = none
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.ceph.pid
log_file = $DIR/log/\$name.log
crash_dir = $DIR/crash
keyring = /dev/null
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
log_to_stderr = false
err_to_stderr = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[mon]
mon_data = $DIR/mon/\$name
paxos_propose_interval = 0.1
paxos_min_wait = 0.01
mon_cluster_log_file = $DIR/log/cluster.log
[osd]
osd_data = $DIR/osd/\$name
osd_objectstore = ${OSD_STORE:-memstore}
memstore_device_bytes = ${MEMSTORE_BYTES:-1073741824}
bluestore_block_path = $DIR/osd/block
bluestore_block_size = 10737418240
bluestore_block_create = true
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
[client.rgw.a]
auth_client_required = none
ms_mon_client_mode = crc
keyring = /dev/null
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port
rgw_data = $DIR/rgw
rgw_dns_name = localhost
rgw_enable_usage_log = false
rgw_thread_pool_size = 64
CONF
	local C=(-c "$CONF")
	start() {
		local n=$1
		shift
		setsid "$@" -f </dev/null >>"$DIR/log/$n.stdout" 2>&1 &
		echo $! >"$DIR/run/$n.pid"
	}
	monmaptool --create --clobber --fsid "$fsid" \
		--addv a "[v2:127.0.0.1:$((mon_port + 1)),v1:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
	ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap"
	start mon.a ceph-mon "${C[@]}" -i a
	for _ in $(seq 1 300); do
		timeout 10 ceph "${C[@]}" --connect-timeout 2 mon stat >/dev/null 2>&1 && break
		sleep 0.2
	done
	timeout 20 ceph "${C[@]}" --connect-timeout 5 mon stat >/dev/null 2>&1 || die "no monitor ($DIR/log)"
	[ "$(timeout 30 ceph "${C[@]}" osd new "$uuid")" = 0 ] || die "osd new failed"
	timeout 120 ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$uuid" >"$DIR/log/osd.mkfs.log" 2>&1 ||
		die "ceph-osd --mkfs failed ($DIR/log/osd.mkfs.log)"
	start osd.0 ceph-osd "${C[@]}" -i 0
	for _ in $(seq 1 600); do
		timeout 10 ceph "${C[@]}" osd dump 2>/dev/null | grep -q '^osd.0 up' && break
		sleep 0.2
	done
	timeout 10 ceph "${C[@]}" osd dump 2>/dev/null | grep -q '^osd.0 up' || die "osd.0 not up ($DIR/log)"
	local pools=".rgw.root default.rgw.log default.rgw.control default.rgw.meta
		default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec"
	{
		for p in $pools; do echo "osd pool create $p 8 8 replicated --autoscale-mode=off"; done
		for p in $pools; do echo "osd pool application enable $p rgw"; done
	} | timeout 120 ceph "${C[@]}" >"$DIR/log/pools.log" 2>&1 || die "pools ($DIR/log/pools.log)"
	start client.rgw.a radosgw "${C[@]}" -n client.rgw.a
	for _ in $(seq 1 900); do
		[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$rgw_port/")" = 200 ] && break
		# a frontend that could not bind its port never answers: give up now
		grep -q "failed initializing frontend" "$DIR/log/client.rgw.a.log" 2>/dev/null && break
		running "$(cat "$DIR/run/client.rgw.a.pid")" || break
		sleep 0.2
	done
	[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$rgw_port/")" = 200 ] || {
		grep -E -- "-1 |ERROR" "$DIR/log/client.rgw.a.log" 2>/dev/null | tail -5 >&2 || true
		die "radosgw does not answer on port $rgw_port ($DIR/log)"
	}
	local ak=CUSTOSTESTKEY0000001 sk=custostestsecret00000000000000000000001
	timeout 60 radosgw-admin "${C[@]}" user create --uid=custos --display-name=custos-test \
		--access-key=$ak --secret-key=$sk >"$DIR/user.json" 2>"$DIR/log/admin.log" ||
		die "radosgw-admin user create failed ($DIR/log/admin.log)"
	cat >"$DIR/s3.env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$rgw_port
S3_REGION=us-east-1
S3_ACCESS_KEY=$ak
S3_SECRET_KEY=$sk
ENV
}

# up, tried three times with fresh ports: another test's server may take a
# port between the check and the bind. Each failure is reported.
up_retry() {
	local i
	for i in 1 2 3; do
		# a process of its own, where set -e holds (it does not in `(up) && ...`)
		"$BASH" "$0" up-once "$DIR" && return 0
		for f in mon.a osd.0 client.rgw.a; do
			[ -s "$DIR/log/$f.log" ] && { echo "== $f.log" && tail -n 3 "$DIR/log/$f.log"; } >&2
		done
		log "attempt $i of 3 failed"
		down
	done
	return 1
}

case $cmd in
up) up_retry ;;
up-once) up ;;
down) down ;;
*) die "usage: rgw.sh up|down DIR" ;;
esac
