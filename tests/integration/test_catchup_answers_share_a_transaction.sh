#!/usr/bin/env bash
# A node catching up commits several answers in one transaction (with
# random ids a change then dirties fewer pages). While it holds one open,
# writes at that node still go through, by its HTTP API and by another
# SQLite client; killed with SIGKILL while it holds one, it asks again
# from what it committed; every row arrives exactly once on both nodes.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

N=20000		# rows of phases 1 and 2
M=100000	# rows of phase 3: 5,000 answers take seconds
W=20		# writes at wuppertal during phase 2, of each kind
# dortmund answers in batches of 20 changes: 1,000 answers for N
node dortmund city "catchup_changes = 20"
# the end reads every change back from wuppertal's log: no compaction
node wuppertal city "compact_after = 1h"
http_node wuppertal
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal

bulk() {	# bulk DB PREFIX ROWS: in one transaction of a sqlite3 shell
	sqlite3 "$1" ".timeout 10000" "
	WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n
	    WHERE x < $3)
	INSERT INTO activities(id, kind, title, participants)
	SELECT printf('$2-%06d', x), 'workshop', 'Row ' || x, x FROM n;" ||
	    fail "bulk insert into $1"
}
stat() { ctl "$1" status --json | jq -r "$2"; }
stat_is() { [ "$(stat "$1" "$2")" = "$3" ]; }
stat_above() { [ "$(stat "$1" "$2")" -gt "$3" ]; }

# 1. wuppertal down, dortmund writes N; wuppertal starts and catches up
stop wuppertal
bulk "$T/dortmund.db" first $N
wait_for 30 "dortmund stamps its changes" stat_is dortmund .vector.dortmund $N
start wuppertal
converge 60 dortmund wuppertal
batches=$(stat wuppertal .stats.batches)
echo "wuppertal committed $N changes of 1,000 answers in $batches transactions"
[ "$batches" -ge 1 ] && [ "$batches" -lt 100 ] ||
    fail "catch-up answers committed one by one ($batches transactions)"

# 2. dortmund down, N more written to its file; when it comes back,
# wuppertal (running) catches up, and meanwhile takes local writes
stop dortmund
bulk "$T/dortmund.db" second $N
start dortmund
before=$(stat wuppertal .stats.applied)
for i in $(seq "$W"); do
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT \
	    -H "Authorization: Bearer ${HTTP_TOKEN[wuppertal]}" \
	    -H 'Content-Type: application/json' \
	    -d "{\"title\": \"During catch-up $i\"}" \
	    "${HTTP_URL[wuppertal]}/v1/tables/activities/rows/http-$i")
	[ "$code" = 201 ] || fail "HTTP write $i at wuppertal: status $code"
	sqlite3 "$T/wuppertal.db" ".timeout 10000" "INSERT INTO
	    activities(id, title) VALUES ('shell-$i', 'Shell $i')" ||
	    fail "sqlite3 write $i at wuppertal"
done
after=$(stat wuppertal .stats.applied)
echo "wuppertal applied $before -> $after changes while it took $W + $W writes"
converge 60 dortmund wuppertal

# 3. wuppertal down, M more at dortmund; wuppertal killed once it has
# committed a part of them, then started again
stop wuppertal
bulk "$T/dortmund.db" third $M
wait_for 30 "dortmund stamps its changes" \
    stat_is dortmund .vector.dortmund $((2 * N + M))
"$LABSYNCD" -c "$T/wuppertal.conf" >>"$T/wuppertal.log" 2>&1 &
PID[wuppertal]=$!
wait_for 30 "wuppertal commits a first part of the catch-up" \
    stat_above wuppertal .stats.applied 0
kill9 wuppertal
echo "wuppertal killed with $(sqlite3 "$T/wuppertal.db" "SELECT count(*)
    FROM activities WHERE id LIKE 'third-%'") of $M committed"
start wuppertal
converge 60 dortmund wuppertal

rows=$((2 * N + M + 2 * W))
for n in dortmund wuppertal; do
	db=$T/$n.db
	assert_eq "$(sqlite3 "$db" "SELECT count(*), count(DISTINCT id)
	    FROM activities")" "$rows|$rows" "rows at $n"
	assert_eq "$(sqlite3 "$db" "SELECT count(*) FROM activities
	    WHERE id LIKE 'http-%' OR id LIKE 'shell-%'")" $((2 * W)) \
	    "writes made during the catch-up, at $n"
	assert_eq "$(stat "$n" .vector.dortmund)" $((2 * N + M)) \
	    "$n's vector for dortmund"
	assert_eq "$(stat "$n" .vector.wuppertal)" $((2 * W)) \
	    "$n's vector for wuppertal"
done
# wuppertal's log holds each of dortmund's changes once, without gaps
assert_eq "$(sqlite3 "$T/wuppertal.db" "SELECT count(*),
    count(DISTINCT l.key), min(l.key & 1099511627775),
    max(l.key & 1099511627775) FROM labsync_log l JOIN labsync_origin o
    ON l.key >> 40 = o.id WHERE o.name = 'dortmund'")" \
    "$((2 * N + M))|$((2 * N + M))|1|$((2 * N + M))" \
    "dortmund's changes in wuppertal's log"
pass
