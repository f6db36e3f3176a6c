#!/usr/bin/env bash
# A database written by a newer labsync (a higher format in labsync_meta)
# is refused at start-up with a clear message and exit status 78, and left
# untouched.
. "$(dirname "$0")/lib.sh"

node dortmund
start dortmund
ctl dortmund put labs lab-1 city=Dortmund || fail put
stop dortmund
sqlite3 "$T/dortmund.db" "UPDATE labsync_meta SET value = 99 WHERE key = 'format'"
timeout 20 "$LABSYNCD" -c "$T/dortmund.conf" >"$T/out" 2>&1
rc=$?
assert_eq "$rc" 78 "exit status"
grep -q "written by a newer labsync (format 99" "$T/out" ||
    { cat "$T/out"; fail "no clear message"; }
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT value FROM labsync_meta WHERE key = 'format'")" 99 \
    "format changed"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT city FROM labs")" Dortmund "data"
pass
