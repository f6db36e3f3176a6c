#!/usr/bin/env bash
# The change feed is the change log: what compaction removes leaves the
# feed, and a cursor from before it answers 410 (since=0 starts again at
# the oldest change held); what an erasure takes out of the log is not in
# the feed either, which shows the erasure as a delete with "erased".
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v jq >/dev/null || skip "jq is not installed"

node a city "compact_after = 1s"
node b
peer a b
peer b a
http_node a
http_node b
start a
start b

feed() {	# feed NODE QUERY: the body; the HTTP status in $T/status
	curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[$1]}/v1/changes?$2" >"$T/status"
	cat "$T/body"
}

# erasure: b's feed keeps the erasure, not the erased values
ctl a put activities act-x title="GEHEIM-Wert-1" >/dev/null || fail "put act-x"
ctl a put activities act-x title="GEHEIM-Wert-2" >/dev/null || fail "put act-x again"
ctl a put activities act-y title="bleibt" >/dev/null || fail "put act-y"
converge 30 a b
feed b "since=0" | grep -q GEHEIM || fail "b's feed lacks the values before the erasure"
ctl a erase activities act-x >/dev/null || fail "erase act-x at a"
wait_for 30 "the erasure in b's feed" sh -c \
    "curl -s '${HTTP_URL[b]}/v1/changes?since=0' | jq -e '.changes[] | select(.id == \"act-x\" and .erased == true and .op == \"delete\")' >/dev/null"
feed b "since=0" | grep -q GEHEIM && fail "b's feed still shows erased values: $(cat "$T/body")"
assert_eq "$(feed b "since=0" | jq -r '.changes[] | select(.id == "act-y") | .columns.title')" \
    bleibt "an unrelated row in b's feed"

# compaction: a drops what b confirmed after a second
wait_for 60 "a's log compacted" sh -c \
    "'$LABSYNCCTL' -c '$T/a.conf' status --json | jq -e '.log.changes == 0' >/dev/null"
feed a "since=1" >/dev/null
assert_eq "$(cat "$T/status")" 410 "a cursor from before compaction"
jq -e '.hint' "$T/body" >/dev/null || fail "410 without a hint: $(cat "$T/body")"
assert_eq "$(feed a "since=0" | jq -c .changes)" "[]" "a's feed after compaction"
[ "$(cat "$T/status")" = 200 ] || fail "since=0 after compaction: $(cat "$T/status")"
# and it goes on: a new change is there from since=0 and from the floor
floor=$(sqlite3 "$T/a.db" "SELECT at_floor FROM labsync_state")
ctl a put activities act-z title="neu" >/dev/null || fail "put act-z"
assert_eq "$(feed a "since=0" | jq -r '.changes[0].id')" act-z "since=0 after a new write"
assert_eq "$(feed a "since=$floor" | jq -r '.changes[0].id')" act-z "since=floor"
pass
