#!/usr/bin/env bash
# The shipped unit stays hardened (systemd-analyze security, offline, with
# the threshold a reviewer would accept), and the man pages are clean mdoc
# (mandoc -T lint -W warning prints nothing).
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null ||
    skip "no systemd-analyze (make deps installs systemd)"
command -v mandoc >/dev/null || skip "no mandoc (make deps installs mandoc)"

sed 's|@SBINDIR@|/usr/sbin|g' "$ROOT/systemd/labsyncd.service" \
    >"$T/labsyncd.service"
(cd "$T" && systemd-analyze security --offline=true --threshold=20 \
    --no-pager labsyncd.service) >"$T/security.out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	cat "$T/security.out"
	fail "systemd-analyze security: exit $rc"
fi
grep -q 'Overall exposure level for labsyncd.service' "$T/security.out" ||
    fail "systemd-analyze printed no overall exposure"

pages=("$ROOT"/man/*)
[ "${#pages[@]}" -eq 3 ] || fail "expected 3 man pages, found ${#pages[@]}"
out=$(mandoc -T lint -W warning "${pages[@]}" 2>&1)
rc=$?
[ -z "$out" ] || fail "mandoc -T lint: $out"
assert_eq "$rc" 0 "mandoc -T lint exit status"
pass
