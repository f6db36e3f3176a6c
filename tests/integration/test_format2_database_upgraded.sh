#!/usr/bin/env bash
# A database written by format 2 (data/format2-dortmund.sql, a dump of
# one made by that version: five changes through labsyncd, a sixth
# stamped by the triggers while no daemon ran) is upgraded through formats
# 3 4 and 5 to 6 when labsyncd starts. Its log keeps its 63 value columns (format
# 3 gives a new log only as many as the widest synced table needs); the
# clocks of rows there move to labsync_rowid, those of the deleted act-2
# stay by key; old and new changes alike reach the peer.
. "$(dirname "$0")/lib.sh"

node dortmund
node wuppertal
peer dortmund wuppertal
peer wuppertal dortmund
sqlite3 "$T/dortmund.db" <"$ROOT/tests/integration/data/format2-dortmund.sql" ||
    fail "loading the format 2 dump"
width() {
	sqlite3 "$T/$1.db" "SELECT count(*) FROM pragma_table_info('labsync_log')
	    WHERE name GLOB 'v[0-9]*'"
}
assert_eq "$(width dortmund)" 63 "value columns of the format 2 log"

start dortmund
grep -q "upgrading format 2 to 3" "$T/dortmund.log" &&
    grep -q "upgrading format 3 to 4" "$T/dortmund.log" &&
    grep -q "upgrading format 4 to 5" "$T/dortmund.log" &&
    grep -q "upgrading format 5 to 6" "$T/dortmund.log" ||
    fail "no upgrade in dortmund's log"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) FROM labsync_aside")" \
    0 "the keep-aside table after the upgrade"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT value FROM labsync_meta
    WHERE key = 'format'")" 6 "format after the upgrade"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT group_concat(pk, ' ') FROM
    (SELECT pk FROM labsync_row ORDER BY pk)")" "act-2" "clocks by key"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT group_concat(r.pk || ':' ||
    (r.rid = t.rowid), ' ') FROM (SELECT * FROM labsync_rowid ORDER BY pk)
    AS r JOIN (SELECT rowid, id FROM activities UNION ALL
    SELECT rowid, id FROM labs) AS t ON t.id = r.pk")" \
    "act-1:1 act-3:1 lab-1:1" "clocks by rowid"
assert_eq "$(width dortmund)" 63 "value columns after the upgrade"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) || ' ' ||
    count(DISTINCT at) || ' ' || min(at) || ' ' || max(at) FROM labsync_log")" \
    "6 6 1 6" "the feed's cursors of the upgraded log"
assert_eq "$(ctl dortmund status --json | jq -r '.vector.dortmund')" 6 \
    "dortmund's changes"
# a partial update after the upgrade, over the old clocks
ctl dortmund put activities act-1 summary="after the upgrade" ||
    fail "put at dortmund after the upgrade"
assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT mask FROM labsync_log
    WHERE key = 1 << 40 | 7")" 512 "change 7 writes only the summary"

start wuppertal
converge 30 dortmund wuppertal
assert_eq "$(width wuppertal)" 11 "value columns of a new format 3 log"
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .title)" \
    "Demografischer Wandel" "act-1's title at wuppertal"
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .summary)" \
    "after the upgrade" "act-1's summary at wuppertal"
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .participants)" 12 \
    "act-1's participants at wuppertal"
ctl wuppertal get activities act-3 >/dev/null || fail "act-3 not at wuppertal"
ctl wuppertal get activities act-2 >/dev/null 2>&1 &&
    fail "act-2, deleted, is at wuppertal"
pass
