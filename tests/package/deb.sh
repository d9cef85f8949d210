#!/bin/bash
# The Debian package (debian/): built with dpkg-buildpackage from a copy of
# the tracked files of this tree (the unit tests run inside the build unless
# NOCHECK=1), checked with lintian, installed on this machine, used (a store
# made, a file secured, a media record made by the installed worker, the
# completion and the manual pages found), then purged: the programs go, the
# evidence under /var/lib/custos stays. Needs root and a machine without
# custos (no package, user or directory of it); removes all of it after.
# Not part of scripts/test.sh (it builds everything once more): run by
# tests/reliability/nightly, or alone: bash tests/package/deb.sh
CUSTOS=/usr/bin/custos
. "$(dirname "$0")/../integration/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (it installs the package)"
	exit 0
fi
# Only on a machine without custos: no package (in any state), no custos
# installed by hand, no user, none of its directories. A run cut short
# leaves some of these behind: the next run names them and does nothing.
there=()
st=$(dpkg-query -W -f '${db:Status-Status}' custos 2>/dev/null)
[ -n "$st" ] && [ "$st" != not-installed ] && there+=("the package custos ($st)")
getent passwd custos >/dev/null && there+=("the user custos")
getent group custos >/dev/null && there+=("the group custos")
for f in /usr/bin/custos /usr/sbin/custosd /usr/libexec/custos /lib/systemd/system/custosd.service \
	/etc/systemd/system/custosd.service /var/lib/custos /srv/custos /etc/custos; do
	[ -e "$f" ] && there+=("$f")
done
if [ ${#there[@]} -gt 0 ]; then
	echo "1..0 # SKIP custos is on this machine already: ${there[*]}"
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v dpkg-buildpackage >/dev/null || ! command -v lintian >/dev/null ||
	! dpkg-query -W debhelper >/dev/null 2>&1; then
	apt-get install -y --no-install-recommends debhelper dpkg-dev lintian >"$WORK/apt.log" 2>&1
fi
# None of these was here (above): all of them are this test's to remove.
put_back() {
	dpkg --purge custos >/dev/null 2>&1
	rm -rf /var/lib/custos /srv/custos /etc/custos
	userdel custos 2>/dev/null
	groupdel custos 2>/dev/null
	t_cleanup
}
trap put_back EXIT

# The tracked files as they are in the work tree (changes not yet committed included).
mkdir "$WORK/src"
(cd "$SRC" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
cd "$WORK/src" || exit 1
dpkg-checkbuilddeps >"$WORK/deps.log" 2>&1
t_ok $? "the build dependencies are installed (scripts/setup.sh installs them)"
[ -s "$WORK/deps.log" ] && sed 's/^/#   /' "$WORK/deps.log"
opts=parallel=$(nproc)
[ "${NOCHECK:-0}" = 1 ] && opts="$opts nocheck"
DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -b -us -uc >"$WORK/build.log" 2>&1
rc=$?
t_ok $rc "dpkg-buildpackage builds the package (DEB_BUILD_OPTIONS=$opts)"
if [ $rc != 0 ]; then
	tail -30 "$WORK/build.log" | sed 's/^/#   /'
	t_done
	exit 1
fi
version=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" meson.build | head -1)
DEB="$WORK/custos_${version}_$(dpkg --print-architecture).deb"
[ -f "$DEB" ] && [ "$(dpkg-deb -f "$DEB" Version)" = "$version" ]
t_ok $? "its version is the project's ($version, debian/changelog = meson.build)"

lintian --fail-on error,warning "$DEB" 2>&1 | grep -v 'root privileges' >"$WORK/lintian.log"
[ "${PIPESTATUS[0]}" = 0 ]
t_ok $? "lintian finds no error or warning"
sed 's/^/#   /' "$WORK/lintian.log" | head -20

dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$WORK/files"
rc=0
for f in /usr/bin/custos /usr/sbin/custosd /usr/libexec/custos/custos-probe \
	/lib/systemd/system/custosd.service /usr/share/man/man1/custos.1.gz \
	/usr/share/man/man8/custosd.8.gz /usr/share/bash-completion/completions/custos \
	/usr/share/doc/custos/examples/custosd.conf /usr/share/doc/custos/copyright \
	/usr/share/doc/custos/operations.md; do
	grep -qxF "$f" "$WORK/files" || { echo "#   missing: $f"; rc=1; }
done
t_ok $rc "it holds the programs, the worker, the unit, the manual pages, the completion"
! grep -qE '^/(srv|var/lib/custos|etc/custos)/.' "$WORK/files"
t_ok $? "it ships nothing under /srv, /var/lib/custos or /etc/custos"

# No systemd runs here as PID 1: what the maintainer scripts do with the
# unit is read from them. Once enabled, an upgrade restarts custosd (no stop
# in preinst, a restart in postinst) and a removal stops it (prerm).
mkdir "$WORK/ctl"
dpkg-deb -e "$DEB" "$WORK/ctl"
grep -q '_dh_action=restart' "$WORK/ctl/postinst" &&
	grep -q "deb-systemd-invoke \$_dh_action 'custosd.service'" "$WORK/ctl/postinst" &&
	! grep -q 'deb-systemd-invoke stop' "$WORK/ctl/preinst" 2>/dev/null &&
	grep -q "deb-systemd-invoke stop 'custosd.service'" "$WORK/ctl/prerm" &&
	awk '/^[[:space:]]*if / { last = $0 }
		/deb-systemd-helper enable/ && last !~ /was-enabled/ { bad = 1 }
		END { exit bad }' "$WORK/ctl/postinst" &&
	! grep -q 'systemctl .*enable' "$WORK/ctl/postinst"
t_ok $? "maintainer scripts: enabled only if it was; restarted after an upgrade; stopped on removal"

dpkg -i "$DEB" >"$WORK/install.log" 2>&1
rc=$?
t_ok $rc "dpkg -i installs it"
[ $rc = 0 ] || sed 's/^/#   /' "$WORK/install.log"
[ "$(/usr/bin/custos --version)" = "custos $version" ]
t_ok $? "the installed custos runs: custos $version"
getent passwd custos | grep -q ':/var/lib/custos:/usr/sbin/nologin$'
t_ok $? "the system user custos exists (home /var/lib/custos, no login shell)"
[ "$(stat -c '%U:%G %a' /var/lib/custos)" = "custos:custos 700" ] &&
	[ "$(stat -c '%U:%G %a' /srv/custos)" = "custos:custos 750" ] &&
	[ "$(stat -c '%U:%G %a' /srv/custos/inbox)" = "custos:custos 2770" ] &&
	[ "$(stat -c '%U:%G %a' /srv/custos/docks)" = "custos:custos 2770" ] &&
	[ "$(stat -c '%U:%G %a' /etc/custos)" = "root:custos 750" ]
t_ok $? "the directories are those of docs/operations.md, with its owners and modes"
[ ! -e /etc/systemd/system/multi-user.target.wants/custosd.service ]
t_ok $? "custosd is not enabled on installation (it needs its configuration first)"
runuser -u custos -- /usr/sbin/custosd --config /usr/share/doc/custos/examples/custosd.conf \
	--check-config >"$WORK/check.log" 2>&1
t_ok $? "the example configuration passes custosd --check-config as user custos"
sed 's/^/#   /' "$WORK/check.log" | head -5

# Used as an operator would: the store of the example configuration.
S=/var/lib/custos/store
runuser -u custos -- /usr/bin/custos --store "$S" init --station PKG >"$WORK/init.log" 2>&1
t_ok $? "custos init makes the store as user custos"
ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=10:duration=1 -c:v libx264 \
	-pix_fmt yuv420p "$WORK/clip.mp4"
install -m 0644 "$WORK/clip.mp4" /srv/custos/clip.mp4
id=$(runuser -u custos -- /usr/bin/custos --store "$S" ingest /srv/custos/clip.mp4 2>/dev/null |
	cut -f1)
[ -n "$id" ]
t_ok $? "custos ingest secures a clip"
runuser -u custos -- /usr/bin/custos --store "$S" media process "$id" >"$WORK/media.log" 2>&1 &&
	runuser -u custos -- /usr/bin/custos --store "$S" show "$id" --json >"$WORK/show.json" &&
	grep -q '"width": *160' "$WORK/show.json"
t_ok $? "the installed worker (/usr/libexec/custos/custos-probe) makes its media record"
runuser -u custos -- /usr/bin/custos --store "$S" verify >"$WORK/verify.log" 2>&1
t_ok $? "custos verify passes"
man -w custos >/dev/null 2>&1 && man -w 8 custosd >/dev/null 2>&1
t_ok $? "man custos and man custosd are found"
(
	. /usr/share/bash-completion/completions/custos
	COMP_WORDS=(custos in)
	COMP_CWORD=1
	_custos
	[ "${COMPREPLY[*]}" = "init ingest" ]
)
t_ok $? "the installed completion completes custos in<TAB>"

dpkg --purge custos >"$WORK/purge.log" 2>&1
t_ok $? "dpkg --purge removes it"
[ ! -e /usr/bin/custos ] && [ ! -e /usr/sbin/custosd ] && [ ! -e /usr/libexec/custos ]
t_ok $? "the programs are gone"
[ -s "$S/ledger/journal" ] && [ -d /srv/custos/inbox ]
t_ok $? "the evidence stays: the store and the inbox are left as they were"
t_done
