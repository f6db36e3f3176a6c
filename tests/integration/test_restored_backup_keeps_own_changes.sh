#!/usr/bin/env bash
# A node restored from an older backup of its own database has lost the
# tail of its history; before it takes local writes again it fetches its
# own later changes back from its peer, so no sequence number is reused
# and no row is lost.
. "$(dirname "$0")/lib.sh"

# b holds a's changes (compaction would drop them 30 s after a confirmed
# them; a backup older than what b keeps needs a snapshot instead), and
# the end reads a's own log back
node a city "compact_after = 1h"
node b city "compact_after = 1h"
peer a b
peer b a
start a
start b

sql_a() { sqlite3 "$T/a.db" ".timeout 10000" "$@"; }
vec() { ctl "$1" status --json | jq -r ".vector.$2 // 0"; }

ctl a put activities act-a0 title="Before the backup" || fail "put"
ctl b put activities act-b0 title="From b" || fail "put"
converge 30 a b
seq_backup=$(vec a a)

sqlite3 "$T/a.db" ".timeout 10000" ".backup $T/a-backup.db" || fail "backup of a"

# 50 more rows at a after the backup (one transaction of the shell)
sql_a "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50)
INSERT INTO activities(id, title, participants)
SELECT printf('act-late-%02d', x), 'After the backup', x FROM n;" ||
    fail "50 rows at a"
full=$((seq_backup + 50))
a_stamped() { [ "$(vec a a)" = "$full" ]; }
wait_for 20 "a stamps its 50 rows" a_stamped
converge 30 a b
assert_eq "$(vec b a)" "$full" "b holds a's changes"

# restore a from the backup
stop a
rm -f "$T/a.db" "$T/a.db-wal" "$T/a.db-shm"
mv "$T/a-backup.db" "$T/a.db"
assert_eq "$(sqlite3 "$T/a.db" "SELECT count(*) FROM activities
    WHERE id LIKE 'act-late-%'")" 0 "late rows in the restored file"
start a

# a's own history is whole again
assert_eq "$(vec a a)" "$full" "a's vector for itself after the restore"
assert_eq "$(sql_a "SELECT count(*) FROM activities
    WHERE id LIKE 'act-late-%' AND title = 'After the backup'")" 50 \
    "late rows back at a"
grep -q "fetched back [0-9]* of our own changes from b" "$T/a.log" ||
    fail "a's log does not say it fetched its own changes back"
grep -q "peer b holds our changes up to $full, we have $seq_backup" \
    "$T/a.log" || fail "a's log does not say what it lost"

# a new write gets the next sequence, not a reused one
ctl a put activities act-a-new title="After the restore" || fail "put at a"
new_seq() { [ "$(vec a a)" = "$((full + 1))" ]; }
wait_for 20 "a stamps its new write as $((full + 1))" new_seq
converge 30 a b
assert_eq "$(vec b a)" "$((full + 1))" "b's vector for a"
assert_eq "$(ctl b get activities act-a-new | jq -r .title)" \
    "After the restore" "the new write at b"
for n in a b; do
	assert_eq "$(rows $n activities)" 53 "activities at $n"
done
assert_eq "$(sql_a "SELECT count(*) FROM labsync_log l
    JOIN labsync_origin o ON l.key >> 40 = o.id WHERE o.name = 'a'")" \
    "$((full + 1))" "a's own changes in its log"
pass
