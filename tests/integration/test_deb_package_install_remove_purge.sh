#!/usr/bin/env bash
# The Debian package: `make deb` builds it, lintian finds no error or
# warning, and it installs on this machine: the labsync user and
# /var/lib/labsync (labsync, 0750) exist, the unit is installed disabled
# and verified by systemd-analyze, the shipped conffile fails labsyncd -n
# (status 78) until `labsyncctl setup` replaces it, and a node so set up
# runs as the labsync user with the installed schema. `dpkg -r` keeps the
# data and the config; `dpkg -P` keeps the data when nobody answers (the
# debconf default) and removes it when the answer is yes. The package,
# its data and a user the test created are gone at the end.
#
# It installs a package, so it needs root (else it is skipped), and it
# does not touch a labsync that this test did not install.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "not root: the test installs a package"
for c in dpkg-buildpackage dh lintian debconf-set-selections setpriv; do
	command -v "$c" >/dev/null ||
	    skip "no $c (make deps installs debhelper, dpkg-dev, lintian)"
done
if ! command -v systemd-analyze >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd \
	    >"$T/apt.log" 2>&1 || fail "cannot install systemd"
fi

# A run that was killed leaves this marker with its data; anything else
# named labsync on this machine is somebody's node.
MARK=/var/lib/labsync/.labsync-package-test
export DEBIAN_FRONTEND=noninteractive

purge_all() {
	if dpkg-query -W -f='${Status}' labsync 2>/dev/null |
	    grep -qv 'not-installed'; then
		echo "labsync labsync/purge_data boolean true" |
		    debconf-set-selections
		dpkg -P labsync >>"$T/dpkg.log" 2>&1
	fi
	rm -rf /var/lib/labsync /etc/labsync
}

if [ -e "$MARK" ]; then
	purge_all
elif dpkg-query -W -f='${Status}' labsync 2>/dev/null |
    grep -qv 'not-installed' || [ -e /var/lib/labsync ] ||
    [ -e /etc/labsync ]; then
	skip "labsync is installed here and not by this test: left alone"
fi
user_before=0
getent passwd labsync >/dev/null && user_before=1

deb_cleanup() {
	[ -z "${PID[pkg]:-}" ] || kill9 pkg
	purge_all
	if [ "$user_before" = 0 ]; then
		userdel labsync 2>/dev/null
		groupdel labsync 2>/dev/null
	fi
	rm -rf "${CREDS:-}"
}
trap 'rc=$?; deb_cleanup; (exit $rc); cleanup' EXIT

# Build, check, install.
make -C "$ROOT" deb >"$T/make.log" 2>&1 || {
	tail -n 40 "$T/make.log"; fail "make deb"; }
deb=$ROOT/build/deb/labsync_$(dpkg-parsechangelog -l "$ROOT/debian/changelog" \
    -S Version)_$(dpkg --print-architecture).deb
[ -f "$deb" ] || fail "make deb made no $deb: $(ls "$ROOT/build/deb")"
[ -z "$(ls "$ROOT"/../labsync_* "$ROOT"/../labsync-dbgsym_* 2>/dev/null)" ] ||
    fail "make deb left files in the parent folder"
for f in debian/labsync debian/.debhelper debian/files; do
	[ ! -e "$ROOT/$f" ] || fail "make deb left $f"
done
lintian --fail-on error,warning "${deb%.deb}.changes" >"$T/lintian.out" 2>&1 ||
    fail "lintian: $(grep -v 'running with root' "$T/lintian.out")"
apt-get install -y -q --no-install-recommends "$deb" >"$T/apt.log" 2>&1 || {
	tail -n 20 "$T/apt.log"; fail "apt-get install $deb"; }
touch "$MARK" || fail "no /var/lib/labsync after install"

getent passwd labsync >/dev/null || fail "no labsync user"
assert_eq "$(stat -c '%U:%G %a' /var/lib/labsync)" "labsync:labsync 750" \
    "/var/lib/labsync"
for f in /usr/sbin/labsyncd /usr/bin/labsyncctl /usr/share/labsync/schema.sql \
    /usr/lib/sysusers.d/labsync.conf /usr/share/man/man1/labsyncctl.1.gz \
    /usr/share/man/man5/labsync.conf.5.gz /usr/share/man/man8/labsyncd.8.gz \
    /usr/share/doc/labsync/examples/labsync.conf; do
	[ -f "$f" ] || fail "not installed: $f"
done
unit=$(dpkg -L labsync | grep '/systemd/system/labsyncd\.service$') ||
    fail "no labsyncd.service in the package"
systemd-analyze verify "$unit" >"$T/verify.out" 2>&1 ||
    fail "systemd-analyze verify $unit: $(cat "$T/verify.out")"
[ ! -e /etc/systemd/system/multi-user.target.wants/labsyncd.service ] ||
    fail "the unit was enabled at install"
pgrep -f '^/usr/sbin/labsyncd' >/dev/null && fail "labsyncd was started"
grep -q "deb-systemd-invoke stop 'labsyncd.service'" \
    /var/lib/dpkg/info/labsync.prerm || fail "remove would not stop the unit"

# The shipped config: a conffile that configures nothing yet.
conf=/etc/labsync/labsync.conf
dpkg-query -W -f='${Conffiles}' labsync | grep -q " $conf " ||
    fail "$conf is not a conffile"
grep -Eq '^[^;#]*(\.example|public_key)' "$conf" &&
    fail "the shipped config holds a placeholder host or key"
/usr/sbin/labsyncd -n -c "$conf" >/dev/null 2>&1
assert_eq "$?" 78 "labsyncd -n on the shipped config"

# setup replaces it (it names no node) and writes the keys.
pub=$(free_port)
sync=$(free_port)
labsyncctl setup --id debtest --role city --listen 127.0.0.1 \
    --publish-port "$pub" --sync-port "$sync" >"$T/peer.out" \
    2>"$T/setup.log" || fail "labsyncctl setup: $(cat "$T/setup.log")"
assert_eq "$(/usr/sbin/labsyncd -n -c "$conf" 2>&1)" "configuration OK" \
    "labsyncd -n after setup"
assert_eq "$(stat -c %a /etc/labsync/labsync.key)" 600 "secret key mode"
grep -q '^\[peer:debtest\]$' "$T/peer.out" || fail "no peer block printed"

# The node runs as labsync, with the key handed over the way systemd's
# LoadCredential= does and the schema from /usr/share/labsync.
CREDS=$(mktemp -d /tmp/labsync-creds.XXXXXX)
install -o labsync -m 0400 /etc/labsync/labsync.key "$CREDS/labsync.key"
chown labsync "$CREDS"
CREDENTIALS_DIRECTORY=$CREDS setpriv --reuid labsync --regid labsync \
    --clear-groups /usr/sbin/labsyncd -c "$conf" >>"$T/pkg.log" 2>&1 &
PID[pkg]=$!
asl() { setpriv --reuid labsync --regid labsync --clear-groups labsyncctl "$@"; }
running() { asl status --json 2>/dev/null | grep -q '"phase":"running"'; }
wait_for 30 "the packaged labsyncd runs" running
asl put labs l1 city=Dortmund || fail "put as labsync"
asl checksum >/dev/null || fail "checksum as labsync"
stop pkg
assert_eq "$(stat -c %U /var/lib/labsync/labsync.db)" labsync "owner of the database"

# remove: programs gone, data and config kept
dpkg -r labsync >>"$T/dpkg.log" 2>&1 || fail "dpkg -r: $(tail "$T/dpkg.log")"
[ ! -e /usr/sbin/labsyncd ] || fail "labsyncd left after remove"
for f in /var/lib/labsync/labsync.db /etc/labsync/labsync.conf \
    /etc/labsync/labsync.key; do
	[ -e "$f" ] || fail "remove took $f"
done
grep -q '^id = debtest$' /etc/labsync/labsync.conf || fail "config changed by remove"

# purge with nobody to answer: the default keeps the data, and says so
dpkg -P labsync >"$T/purge.out" 2>&1 || fail "dpkg -P: $(cat "$T/purge.out")"
dpkg-query -W -f='${Status}' labsync 2>/dev/null | grep -qv 'not-installed' &&
    fail "still known to dpkg after purge"
for f in /var/lib/labsync/labsync.db /etc/labsync/labsync.key \
    /etc/labsync/labsync.pub; do
	[ -e "$f" ] || fail "purge without an answer took $f"
done
grep -q /var/lib/labsync "$T/purge.out" ||
    fail "purge did not say what it kept: $(cat "$T/purge.out")"

# purge with the answer yes: data and keys gone
apt-get install -y -q --no-install-recommends "$deb" >"$T/apt.log" 2>&1 || {
	tail -n 20 "$T/apt.log"; fail "second install"; }
echo "labsync labsync/purge_data boolean true" | debconf-set-selections
dpkg -P labsync >"$T/purge.out" 2>&1 || fail "dpkg -P: $(cat "$T/purge.out")"
for f in /var/lib/labsync /etc/labsync/labsync.key /etc/labsync/labsync.pub \
    /etc/labsync/labsync.conf; do
	[ ! -e "$f" ] || fail "purge with yes left $f"
done
pass
