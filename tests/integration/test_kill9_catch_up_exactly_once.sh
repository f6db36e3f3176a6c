#!/usr/bin/env bash
# A node killed with SIGKILL misses 10,000 changes; restarted, it catches
# up from what it committed: every row arrives exactly once, and its
# change log holds each of the origin's changes exactly once.
. "$(dirname "$0")/lib.sh"

N=10000
node dortmund
# the end reads every change back from wuppertal's log: no compaction
node wuppertal city "compact_after = 1h"
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal

ctl dortmund put activities act-before-1 title="Before the crash" || fail "put"
ctl wuppertal put activities act-before-2 title="Also before" || fail "put"
ctl dortmund put labs lab-do city=Dortmund name="KoSI-Lab Dortmund" || fail "put"
converge 30 dortmund wuppertal
before_rows=$(sqlite3 "$T/wuppertal.db" "SELECT count(*) FROM activities")
before_do=$(ctl dortmund status --json | jq -r '.vector.dortmund')
assert_eq "$before_rows" 2 "activities before the crash"
assert_eq "$before_do" 2 "dortmund's changes before the crash"

kill9 wuppertal

# 10,000 rows in one transaction of a plain sqlite3 shell: the capture
# triggers record them like any other writer's.
sqlite3 "$T/dortmund.db" ".timeout 10000" "
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $N)
INSERT INTO activities(id, kind, title, participants)
SELECT printf('bulk-%05d', x), 'workshop', 'Bulk row ' || x, x FROM n;" ||
    fail "bulk insert at dortmund"
expect_do=$((before_do + N))
stamped() {
	[ "$(ctl dortmund status --json | jq -r '.vector.dortmund')" = "$expect_do" ]
}
wait_for 30 "dortmund stamps its $N new changes" stamped

start wuppertal
converge 60 dortmund wuppertal

db=$T/wuppertal.db
assert_eq "$(sqlite3 "$db" "SELECT count(*) FROM activities")" \
    $((N + before_rows)) "rows at wuppertal"
assert_eq "$(sqlite3 "$db" "SELECT count(DISTINCT id) FROM activities")" \
    $((N + before_rows)) "distinct ids at wuppertal"
assert_eq "$(sqlite3 "$db" "SELECT count(*) FROM activities
    WHERE id LIKE 'bulk-%' AND title = 'Bulk row ' || participants
    AND id = printf('bulk-%05d', participants)")" "$N" "bulk rows intact"

# The change log of the restarted node: each of dortmund's changes once,
# no gaps, and as many as its vector says.
vec=$(ctl wuppertal status --json | jq -r '.vector.dortmund')
assert_eq "$vec" "$expect_do" "wuppertal's vector for dortmund"
read -r cnt lo hi <<<"$(sqlite3 -separator ' ' "$db" "
    SELECT count(*), min(l.key & 1099511627775), max(l.key & 1099511627775)
    FROM labsync_log l JOIN labsync_origin o ON l.key >> 40 = o.id
    WHERE o.name = 'dortmund'")"
assert_eq "$cnt" "$expect_do" "dortmund's changes in wuppertal's log"
assert_eq "$lo $hi" "1 $expect_do" "sequence range of dortmund's changes"
own=$(sqlite3 "$db" "SELECT count(*) FROM labsync_log l
    JOIN labsync_origin o ON l.key >> 40 = o.id WHERE o.name = 'wuppertal'")
assert_eq "$own" "$(ctl wuppertal status --json | jq -r '.vector.wuppertal')" \
    "wuppertal's own changes in its log"
assert_eq "$(ctl wuppertal status --json | jq -r .phase)" running "phase"
pass
