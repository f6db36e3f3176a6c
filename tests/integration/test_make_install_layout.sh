#!/usr/bin/env bash
# `make install DESTDIR=... PREFIX=/usr` lays out every file a city needs
# (binaries, schema, systemd unit, sysusers entry, config, man pages); a
# second install keeps a modified config; `make uninstall` removes what it
# installed and leaves the config. The build goes to its own folder, so it
# also proves that PREFIX reaches the compiled-in schema path.
. "$(dirname "$0")/lib.sh"

command -v make >/dev/null || skip "no make"
R=$T/root
mk() {
	make -C "$ROOT" B="$T/build" DESTDIR="$R" PREFIX=/usr "$@" \
	    >>"$T/make.log" 2>&1
}
mk install || { tail -n 30 "$T/make.log"; fail "make install"; }

# file PATH MODE: installed with this mode
file_mode() {
	[ -f "$R/$1" ] || fail "not installed: $1"
	assert_eq "$(stat -c %a "$R/$1")" "$2" "mode of $1"
}
file_mode usr/sbin/labsyncd 755
file_mode usr/bin/labsyncctl 755
file_mode usr/share/labsync/schema.sql 644
file_mode usr/lib/systemd/system/labsyncd.service 644
file_mode usr/lib/sysusers.d/labsync.conf 644
file_mode etc/labsync/labsync.conf 640
file_mode usr/share/man/man1/labsyncctl.1 644
file_mode usr/share/man/man5/labsync.conf.5 644
file_mode usr/share/man/man8/labsyncd.8 644

unit=$R/usr/lib/systemd/system/labsyncd.service
grep -qx 'ExecStart=/usr/sbin/labsyncd -c /etc/labsync/labsync.conf' "$unit" ||
    fail "ExecStart does not run /usr/sbin/labsyncd: $(grep ExecStart= "$unit")"
grep -q '@[A-Z]*@' "$unit" && fail "placeholder left in the unit"
cmp -s "$ROOT/config/schema.sql" "$R/usr/share/labsync/schema.sql" ||
    fail "schema.sql differs from config/schema.sql"
cmp -s "$ROOT/systemd/labsync.sysusers" "$R/usr/lib/sysusers.d/labsync.conf" ||
    fail "sysusers entry differs"
for m in man1/labsyncctl.1 man5/labsync.conf.5 man8/labsyncd.8; do
	cmp -s "$ROOT/man/$(basename "$m")" "$R/usr/share/man/$m" ||
	    fail "man page $m differs from man/"
done

# The installed programs run, check the installed config, and look for the
# schema where PREFIX put it.
assert_eq "$("$R/usr/sbin/labsyncd" -V)" "labsyncd 0.1" "labsyncd -V"
# The secret key is not installed: handed over as systemd would.
mkdir "$T/creds"
"$LABSYNCCTL" keygen "$T/creds/labsync" >/dev/null || fail keygen
assert_eq "$(CREDENTIALS_DIRECTORY=$T/creds "$R/usr/sbin/labsyncd" -n \
    -c "$R/etc/labsync/labsync.conf")" \
    "configuration OK" "labsyncd -n on the installed config"
grep -aq /usr/share/labsync/schema.sql "$R/usr/sbin/labsyncd" ||
    fail "labsyncd does not look for /usr/share/labsync/schema.sql"

# A second install keeps a config the administrator changed.
echo '; edited by the administrator' >>"$R/etc/labsync/labsync.conf"
sum=$(sha256sum <"$R/etc/labsync/labsync.conf")
mk install || { tail -n 30 "$T/make.log"; fail "second make install"; }
assert_eq "$(sha256sum <"$R/etc/labsync/labsync.conf")" "$sum" \
    "the config after a second install"

mk uninstall || { tail -n 30 "$T/make.log"; fail "make uninstall"; }
for f in usr/sbin/labsyncd usr/bin/labsyncctl usr/share/labsync/schema.sql \
    usr/lib/systemd/system/labsyncd.service usr/lib/sysusers.d/labsync.conf \
    usr/share/man/man1/labsyncctl.1 usr/share/man/man5/labsync.conf.5 \
    usr/share/man/man8/labsyncd.8; do
	[ ! -e "$R/$f" ] || fail "left after uninstall: $f"
done
[ ! -e "$R/usr/share/labsync" ] || fail "left after uninstall: usr/share/labsync"
assert_eq "$(sha256sum <"$R/etc/labsync/labsync.conf")" "$sum" \
    "the config after uninstall"
pass
