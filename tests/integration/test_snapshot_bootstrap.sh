#!/usr/bin/env bash
# A node that lacks changes its peer's log no longer holds (compacted
# away) gets a snapshot of the peer's state instead of the history, and
# converges: (a) a new node added by reload after compaction; (b) a node
# restored from a backup older than the oldest entry its peer kept, which
# then writes on with new sequences; (c) a snapshot served while the
# server takes writes is still exact; (d) status shows one coming in.
#
# Compaction is simulated on a stopped node: its log loses every entry
# and each origin's floor is set to its sequence (labsync_origin.floor:
# the log may lack that origin's entries up to it).
SECURE=1	# c is refused until a's reload gives a its key
. "$(dirname "$0")/lib.sh"

vec() { ctl "$1" status --json | jq -r ".vector.$2 // 0"; }
floor() { sql "$1" "SELECT coalesce((SELECT floor FROM labsync_origin
    WHERE name = '$2'), 0)"; }

# compact NAME: a stopped node's log goes, its floors rise to its vector
compact() {
	sql "$1" "UPDATE labsync_origin SET floor = CASE id WHEN
	    (SELECT self FROM labsync_state) THEN max(seq,
	    (SELECT seq FROM labsync_state)) ELSE seq END;
	    DELETE FROM labsync_log;"
	assert_eq "$(sql "$1" "SELECT count(*) FROM labsync_log")" 0 \
	    "log entries left at $1"
}

# Rows of two origins: inserts, updates of single columns (rows whose
# columns carry different clocks), deletes (tombstones) and a revive.
pair a b
for i in $(seq 1 20); do
	ctl a put activities "act-$i" title="a $i" participants="$i" ||
	    fail "put at a"
done
converge 30 a b
for i in $(seq 1 20 | grep '[02468]$'); do
	ctl b put activities "act-$i" title="b $i" || fail "put at b"
done
for i in 3 7 11; do
	ctl b delete activities "act-$i" || fail "delete at b"
done
ctl a put activities act-7 title="revived" || fail "revive at a"
ctl b put labs lab-b city=Wuppertal name="Lab B" || fail "put at b"
ctl b erase activities act-9 || fail "erase at b"
converge 30 a b
erased_at_b=$(sql b "SELECT origin || ' ' || seq || ' ' || requested_by
    FROM labsync_erasure WHERE pk = 'act-9'")
[ -n "$erased_at_b" ] || fail "b has no audit row of its erasure"

# --- (a) a node added by reload after compaction -----------------------
stop a
compact a
start a
node c
peer c a
start c
sleep 1
assert_eq "$(rows c activities)" 0 "c's rows before a knows it"
peer a c
kill -HUP "${PID[a]}"
converge 60 a b c
grep -q "snapshot for c: sent" "$T/a.log" || fail "a sent no snapshot to c"
grep -q "peer a: snapshot taken in" "$T/c.log" ||
    fail "c took in no snapshot from a"
for o in a b; do
	assert_eq "$(vec c $o)" "$(vec a $o)" "c's vector for $o"
	assert_eq "$(floor c $o)" "$(vec a $o)" "c's floor for $o"
done
assert_eq "$(sql c "SELECT count(*) FROM labsync_log")" 0 \
    "c logged the snapshot's rows"
assert_eq "$(ctl c get activities act-7 | jq -r .title)" "revived" \
    "the revived row at c"
ctl c get activities act-3 >/dev/null 2>&1 && fail "a deleted row at c"
assert_eq "$(sql c "SELECT count(*) FROM labsync_row WHERE d_hlc > 0 AND
    pk IN ('act-3', 'act-11')")" 2 "tombstones at c"
# an erasure comes as an erasure: c records it as b did
assert_eq "$(sql c "SELECT origin || ' ' || seq || ' ' || requested_by
    FROM labsync_erasure WHERE pk = 'act-9'")" "$erased_at_b" \
    "the erasure of act-9 at c"
assert_eq "$(ctl c status --json | jq -c '.peers[0].snapshot')" null \
    "c's status once the snapshot is in"
# the feed goes on from the snapshot's vector, both ways
ctl a put activities act-after title="after the snapshot" || fail "put at a"
ctl c put activities act-c title="from c" || fail "put at c"
converge 30 a b c

# --- (b) a restored backup older than the oldest entry the peer kept ---
stop c
sqlite3 "$T/a.db" ".timeout 10000" ".backup $T/a-backup.db" ||
    fail "backup of a"
seq_backup=$(vec a a)
sql a "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n
    WHERE x < 30) INSERT INTO activities(id, title, participants)
    SELECT printf('act-late-%02d', x), 'after the backup', x FROM n;"
full=$((seq_backup + 30))
a_stamped() { [ "$(vec a a)" = "$full" ]; }
wait_for 20 "a stamps its 30 rows" a_stamped
converge 30 a b
stop b
compact b
assert_eq "$(floor b a)" "$full" "b's floor for a"
start b
stop a
rm -f "$T/a.db" "$T/a.db-wal" "$T/a.db-shm"
mv "$T/a-backup.db" "$T/a.db"
start a
grep -q "peer b: snapshot taken in" "$T/a.log" ||
    fail "the restored a took in no snapshot"
assert_eq "$(vec a a)" "$full" "a's own sequence after the snapshot"
assert_eq "$(sql a "SELECT seq FROM labsync_state")" "$full" \
    "a's sequence counter after the snapshot"
assert_eq "$(sql a "SELECT count(*) FROM activities
    WHERE id LIKE 'act-late-%'")" 30 "late rows back at a"
converge 30 a b
ctl a put activities act-a-new title="after the restore" || fail "put at a"
new_seq() { [ "$(vec a a)" = "$((full + 1))" ]; }
wait_for 20 "a stamps its new write as $((full + 1))" new_seq
converge 30 a b
assert_eq "$(vec b a)" "$((full + 1))" "b's vector for a"
assert_eq "$(ctl b get activities act-a-new | jq -r .title)" \
    "after the restore" "a's new write at b"

# --- (c) a snapshot served while the server takes writes ---------------
# a holds 2,000 more rows, its log compacted, and serves in batches of 50
stop a
sql a "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n
    WHERE x < 2000) INSERT INTO activities(id, title, participants)
    SELECT printf('bulk-%04d', x), 'bulk', x FROM n;"
compact a
sed -i 's/^\[sync\]$/[sync]\ncatchup_changes = 50/' "$T/a.conf"
start a
node d
peer d a
peer a d
# puts, updates and deletes at a until told to stop
(
	i=0
	while [ ! -e "$T/stop-writes" ]; do
		i=$((i + 1))
		k=$(( (i * 37) % 2000 + 1 ))
		ctl a put activities "$(printf 'bulk-%04d' "$k")" \
		    title="w $i" >/dev/null 2>&1
		ctl a put activities "new-$i" title="new $i" >/dev/null 2>&1
		[ $((i % 5)) -eq 0 ] && ctl a delete activities \
		    "$(printf 'bulk-%04d' $((k + 1)))" >/dev/null 2>&1
		echo "$i" >"$T/writes"
	done
) &
writer=$!
writing() { [ "$(sql a "SELECT count(*) FROM activities
    WHERE title LIKE 'w %'")" -gt 0 ]; }
wait_for 20 "a takes writes" writing
kill -HUP "${PID[a]}"
start d
wait_for 60 "d takes in a snapshot" grep -q "peer a: snapshot taken in" \
    "$T/d.log"
# the writer went on all along: a few more rounds after it, then quiet
n0=$(cat "$T/writes")
more_writes() { [ "$(cat "$T/writes")" -ge $((n0 + 5)) ]; }
wait_for 30 "a takes more writes" more_writes
touch "$T/stop-writes"
wait "$writer"
converge 60 a b d
grep -q "snapshot for d: sent" "$T/a.log" || fail "a sent no snapshot to d"
# in bounded batches, one at a time
batches=$(grep -c "snapshot for d: a batch of" "$T/a.log")
[ "$batches" -ge 40 ] || fail "the snapshot for d came in $batches batches"
grep "snapshot for d: a batch of" "$T/a.log" | awk '$8 > 60 { exit 1 }' ||
    fail "a snapshot batch above catchup_changes (50) and a row's changes"
assert_eq "$(vec d a)" "$(vec a a)" "d's vector for a"
assert_eq "$(ctl d dump | sha256sum)" "$(ctl a dump | sha256sum)" \
    "d's dump against a's"

# --- (d) status shows a snapshot coming in -------------------------------
# a serves one row per batch; once e says it takes a snapshot, a is
# stopped, and e's status must show the rows so far of the total
sed -i 's/^catchup_changes = 50$/catchup_changes = 1/' "$T/a.conf"
node e
peer e a
peer a e
kill -HUP "${PID[a]}"
reloads() { [ "$(grep -c 'configuration reloaded' "$T/a.log")" -ge 3 ]; }
wait_for 10 "a reloads" reloads
"$LABSYNCD" -c "$T/e.conf" >>"$T/e.log" 2>&1 &
PID[e]=$!
deadline=$((SECONDS + 60))
until grep -q "peer a: it no longer holds" "$T/e.log"; do
	[ "$SECONDS" -lt "$deadline" ] || fail "e took no snapshot from a"
done
kill -STOP "${PID[a]}"
if grep -q "peer a: snapshot taken in" "$T/e.log"; then
	echo "note: e took the whole snapshot before a was stopped"
else
	p=$(ctl e status --json | jq -c '.peers[] | select(.name == "a") |
	    .snapshot')
	rows=$(echo "$p" | jq -r '.rows // -1')
	total=$(echo "$p" | jq -r '.rows_total // -1')
	[ "$total" -gt 2000 ] && [ "$rows" -lt "$total" ] ||
	    fail "e's status during the snapshot: $p"
	ctl e status | grep -q "^peer a (city): .*snapshot: $rows of $total rows" ||
	    fail "labsyncctl status does not show the snapshot: $(ctl e status)"
fi
kill -CONT "${PID[a]}"
converge 60 a e
pass
