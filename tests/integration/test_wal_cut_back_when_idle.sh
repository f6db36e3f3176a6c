#!/usr/bin/env bash
# A WAL file that grew past 64 MiB is cut back once writes pause, by the
# checkpoint thread, not in a commit of the event loop: at the node where
# an application wrote, and at the node that applied the changes. The
# data stays whole and the nodes keep replicating afterwards.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

wal_size() { stat -c %s "$T/$1.db-wal" 2>/dev/null || echo 0; }
wal_small() { [ "$(wal_size "$1")" -le $((64 * 1024 * 1024)) ]; }

# about 80 MB of values in one transaction, and the capture log's copy
sql dortmund "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1
    FROM n WHERE i < 800) INSERT INTO activities(id, summary)
    SELECT 'act-' || i, printf('%.100000c', 'x') FROM n"
wal_small dortmund && fail "dortmund's WAL is $(wal_size dortmund) bytes," \
    "not past 64 MiB: the test writes too little"
wait_for 120 "800 rows at wuppertal" has_rows wuppertal activities 800
converge 30 dortmund wuppertal

wait_for 30 "dortmund's WAL cut back" wal_small dortmund
wait_for 30 "wuppertal's WAL cut back" wal_small wuppertal

ctl dortmund put activities act-after title="After the cut" ||
    fail "put after the cut"
wait_for 20 "act-after at wuppertal" ctl wuppertal get activities act-after
converge 30 dortmund wuppertal
assert_eq "$(sql wuppertal "SELECT count(*), sum(length(summary))
    FROM activities WHERE id LIKE 'act-%' AND id <> 'act-after'")" \
    "800|80000000" "rows and bytes at wuppertal"
pass
