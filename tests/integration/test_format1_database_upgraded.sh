#!/usr/bin/env bash
# A database written by labsync's first format (data/format1-dortmund.sql,
# a dump of one made by that version: six changes logged, three writes
# still queued by its triggers because no daemon ran) is upgraded when
# labsyncd starts, through formats 2, 3 4 and 5 to 6: the queued writes become
# changes 7-9 (one of a table no longer synced is dropped, and the log
# says so), the column clocks keep their values (kept by rowid for rows
# there, by key for deleted ones), and the peer gets everything.
. "$(dirname "$0")/lib.sh"

node dortmund
node wuppertal
peer dortmund wuppertal
peer wuppertal dortmund
sqlite3 "$T/dortmund.db" <"$ROOT/tests/integration/data/format1-dortmund.sql" ||
    fail "loading the format 1 dump"
# and a queued write of a table this config no longer syncs
sqlite3 "$T/dortmund.db" "INSERT INTO labsync_pending(tbl, pk, op, mask)
    VALUES ('old_projects', 'p-1', 1, 0)" || fail "queueing an orphan"
# act-1: inserted (change 1), then its title updated (change 2); its
# clocks, 12 bytes per column in format 1, say so
hlc1=$(sqlite3 "$T/dortmund.db" "SELECT hlc FROM labsync_log WHERE key = 1 << 40 | 1")
hlc2=$(sqlite3 "$T/dortmund.db" "SELECT hlc FROM labsync_log WHERE key = 1 << 40 | 2")

start dortmund
grep -q "upgrading format 1 to 2" "$T/dortmund.log" &&
    grep -q "upgrading format 2 to 3" "$T/dortmund.log" &&
    grep -q "upgrading format 3 to 4" "$T/dortmund.log" &&
    grep -q "upgrading format 4 to 5" "$T/dortmund.log" &&
    grep -q "upgrading format 5 to 6" "$T/dortmund.log" ||
    fail "no upgrade in dortmund's log"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) FROM labsync_aside")" \
    0 "the keep-aside table after the upgrade"
grep -q "upgrade: 1 queued writes of table old_projects, which is no longer synced, are dropped" \
    "$T/dortmund.log" || fail "the dropped orphan is not in dortmund's log"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT value FROM labsync_meta
    WHERE key = 'format'")" 6 "format after the upgrade"
# the log rebuilt in format 2 keeps no more value columns than the
# widest synced table (activities: 11) needs
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) FROM
    pragma_table_info('labsync_log') WHERE name GLOB 'v[0-9]*'")" 11 \
    "the log's value columns"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) FROM sqlite_schema
    WHERE name = 'labsync_pending'")" 0 "the old queue"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT seq FROM labsync_origin
    WHERE name = 'dortmund'")" 9 "dortmund's changes"
# the queued writes, in order: act-3 inserted, act-4's participants, lab-1
# deleted; each newer than everything before it
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT group_concat(tbl || ':' || pk
    || ':' || op || ':' || mask, ' ') FROM (SELECT * FROM labsync_log
    WHERE key > 1 << 40 | 6 ORDER BY key)")" \
    "activities:act-3:0:2047 activities:act-4:0:128 labs:lab-1:1:0" \
    "changes 7-9"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) FROM labsync_log a
    JOIN labsync_log b ON b.key = a.key + 1 WHERE b.hlc <= a.hlc")" 0 \
    "HLCs not increasing"
# act-1's clocks as text: title (column 3) from change 2, kind (2) from 1
clock_of() {	# clock_of COLUMN-INDEX: act-1's clock of that column
	sqlite3 "$T/dortmund.db" "SELECT substr(clocks, $1 * 24 + 1, 24)
	    FROM labsync_rowid WHERE tbl = 'activities' AND pk = 'act-1' AND
	    rid = (SELECT rowid FROM activities WHERE id = 'act-1')"
}
assert_eq "$(clock_of 2)" "$(printf '%016x%08x' "$hlc1" 1)" "act-1's kind clock"
assert_eq "$(clock_of 3)" "$(printf '%016x%08x' "$hlc2" 1)" "act-1's title clock"
# act-4's participants (column 7) from change 8
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT substr(r.clocks, 7 * 24 + 1, 16)
    = printf('%016x', l.hlc) FROM labsync_rowid r, labsync_log l WHERE
    r.tbl = 'activities' AND r.pk = 'act-4' AND l.key = 1 << 40 | 8")" 1 \
    "act-4's participants clock"
# by key: only the deleted keys (act-2, and lab-1 deleted by change 9)
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT group_concat(pk || ':' ||
    (d_hlc > r_hlc), ' ') FROM (SELECT * FROM labsync_row ORDER BY pk)")" \
    "act-2:1 lab-1:1" "clocks kept by key"

start wuppertal
converge 30 dortmund wuppertal
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .title)" \
    "First, renamed" "act-1 at wuppertal"
assert_eq "$(ctl wuppertal get activities act-4 | jq -r .participants)" 5 \
    "act-4 at wuppertal"
ctl wuppertal get activities act-3 >/dev/null || fail "act-3 not at wuppertal"
ctl wuppertal get activities act-2 >/dev/null 2>&1 &&
    fail "act-2, deleted, is at wuppertal"
ctl wuppertal get labs lab-1 >/dev/null 2>&1 &&
    fail "lab-1, deleted, is at wuppertal"
# a partial update after the upgrade, over the converted clocks
ctl dortmund put activities act-1 summary="after the upgrade" ||
    fail "put at dortmund after the upgrade"
converge 30 dortmund wuppertal
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .summary)" \
    "after the upgrade" "act-1's summary at wuppertal"
pass
