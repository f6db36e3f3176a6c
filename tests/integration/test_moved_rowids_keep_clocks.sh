#!/usr/bin/env bash
# labsync keeps a row's clocks by its rowid, and rows that get another
# rowid keep them: act-1 moved by an UPDATE of its rowid, act-2 replaced
# by INSERT OR REPLACE (its triggers never see the old row go), every
# row after a dump is loaded into a new file (which numbers rows anew),
# and two rows whose clocks were swapped behind the running daemon's
# back. Each title was written at wuppertal, then later at dortmund
# (all but act-6's), while the two were apart: once they meet, the newer
# title must win on both nodes, which it can only if dortmund knows which
# clocks are whose.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal
for i in 1 2 3 4 5 6; do
	ctl dortmund put activities "act-$i" kind=workshop title=first \
	    participants="$i" >/dev/null || fail "put act-$i"
done
converge 30 dortmund wuppertal
stop dortmund
stop wuppertal

# rows whose clocks labsync_rowid has at a rowid that is not theirs
misplaced() {
	sql dortmund "SELECT count(*) FROM labsync_rowid AS e LEFT JOIN
	    activities AS a ON a.rowid = e.rid WHERE e.tbl = 'activities' AND
	    a.id IS NOT e.pk"
}

sql wuppertal "UPDATE activities SET title = 'wuppertal'"
sleep 0.05	# dortmund's clocks are later
sql dortmund "DELETE FROM activities WHERE id = 'act-3'"
sql dortmund "UPDATE activities SET title = 'dortmund' WHERE id <> 'act-6'"
sql dortmund "UPDATE activities SET rowid = 1000 WHERE id = 'act-1'"
assert_eq "$(misplaced)" 0 "clocks left behind by act-1's new rowid"
sql dortmund "INSERT OR REPLACE INTO activities(id, kind, title,
    participants) SELECT id, kind, title, participants FROM activities
    WHERE id = 'act-2'"
assert_eq "$(misplaced)" 1 "the clocks of act-2's old row"

# a dump loaded into a new file: rows are numbered 1, 2, ... again
sqlite3 "$T/dortmund.db" .dump >"$T/dortmund.sql" || fail "dump"
rm -f "$T/dortmund.db" "$T/dortmund.db-wal" "$T/dortmund.db-shm"
sqlite3 "$T/dortmund.db" <"$T/dortmund.sql" || fail "loading the dump"
[ "$(misplaced)" -gt 0 ] || fail "the dump kept every rowid: nothing tested"
start dortmund
grep -q "table activities: rows have other rowids than their clocks say" \
    "$T/dortmund.log" || fail "no remap at dortmund's start-up"
assert_eq "$(misplaced)" 0 "clocks misplaced after dortmund's start-up"

# the clocks of act-2 (newer than wuppertal's title) and act-6 (older)
# swapped while the daemon runs: the merge finds out
sql dortmund "UPDATE labsync_rowid SET rid = -1 WHERE pk = 'act-2';
    UPDATE labsync_rowid SET rid = (SELECT rowid FROM activities WHERE
    id = 'act-2') WHERE pk = 'act-6';
    UPDATE labsync_rowid SET rid = (SELECT rowid FROM activities WHERE
    id = 'act-6') WHERE pk = 'act-2'"
assert_eq "$(misplaced)" 2 "clocks swapped"
start wuppertal
converge 30 dortmund wuppertal
assert_eq "$(grep -c "rows have other rowids" "$T/dortmund.log")" 2 \
    "remaps at dortmund"
assert_eq "$(misplaced)" 0 "clocks misplaced after the merge"
for n in dortmund wuppertal; do
	assert_eq "$(ctl $n list activities | jq -r '.id + ":" + .title' |
	    sort | tr '\n' ' ')" "act-1:dortmund act-2:dortmund act-4:dortmund \
act-5:dortmund act-6:wuppertal " "titles at $n"
	ctl $n get activities act-3 >/dev/null 2>&1 &&
	    fail "act-3, deleted at dortmund, is at $n"
done
pass
