#!/usr/bin/env bash
# A node restored from a backup counts its feed cursors from where the
# backup stood, so cursors a reader has passed would be given again, to
# other changes (here: a's writes while its only peer was away are lost
# with the restore). A cursor beyond the newest the database gave answers
# 410 with reason cursor_ahead, not an empty page that would lose the next
# changes in silence; since=0 reads what the node holds; labsyncctl watch
# --since that cursor says so and exits 1.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v jq >/dev/null || skip "jq is not installed"

node a city "compact_after = 1h"
node b city "compact_after = 1h"
peer a b
peer b a
http_node a
start a
start b

feed() {	# feed QUERY: the body; the HTTP status in $T/status
	curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[a]}/v1/changes?$1" >"$T/status"
	cat "$T/body"
}

ctl a put activities act-1 title="Vor der Sicherung" >/dev/null || fail "put act-1"
converge 30 a b
sqlite3 "$T/a.db" ".timeout 10000" ".backup $T/a-backup.db" || fail "backup of a"
# b is away while a writes on: nothing can bring these back to a
stop b
for i in 2 3 4; do
	ctl a put activities act-$i title="Nach der Sicherung $i" >/dev/null ||
	    fail "put act-$i"
done
body=$(feed "since=0")
assert_eq "$(cat "$T/status")" 200 "the feed before the restore"
assert_eq "$(jq -r '[.changes[].id] | join(" ")' <<<"$body")" \
    "act-1 act-2 act-3 act-4" "changes before the restore"
cursor=$(jq -r .next <<<"$body")
assert_eq "$(feed "since=$cursor" | jq -c .changes)" "[]" "nothing after the end"
assert_eq "$(cat "$T/status")" 200 "the newest cursor itself"

stop a
rm -f "$T/a.db" "$T/a.db-wal" "$T/a.db-shm"
mv "$T/a-backup.db" "$T/a.db"
start a

# the next changes a logs get cursors the reader has passed already
feed "since=$cursor" >/dev/null
assert_eq "$(cat "$T/status")" 410 "a cursor the restored database never gave"
assert_eq "$(jq -r .reason "$T/body")" cursor_ahead "the 410's reason"
jq -e '.hint | test("read the tables again")' "$T/body" >/dev/null ||
    fail "410 without a hint: $(cat "$T/body")"
body=$(feed "since=0")
assert_eq "$(cat "$T/status")" 200 "since=0 after the restore"
assert_eq "$(jq -r '[.changes[].id] | join(" ")' <<<"$body")" "act-1" \
    "what the restored node holds"

"$LABSYNCCTL" -c "$T/a.conf" watch --since "$cursor" >"$T/watch.out" \
    2>"$T/watch.err" &
PID[watch]=$!
wait_for 10 "watch ends" bash -c "! kill -0 ${PID[watch]}"
wait "${PID[watch]}"
assert_eq "$?" 1 "watch's exit status for a cursor ahead"
unset 'PID[watch]'
grep -q "beyond the newest change" "$T/watch.err" ||
    fail "watch did not say why: $(cat "$T/watch.err")"
[ ! -s "$T/watch.out" ] || fail "watch printed: $(cat "$T/watch.out")"
pass
