#!/usr/bin/env bash
# An entry of the change log that cannot be read (here one written by
# hand, of an origin the node has never registered) is left out of the
# feed, said in the log, and passed: `next` moves beyond it, so a reader
# whose cursor stands before it is not held there for good, and the
# changes after it come.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v jq >/dev/null || skip "jq is not installed"

node a
http_node a
start a

feed() {	# feed QUERY: the body; the HTTP status in $T/status
	curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[a]}/v1/changes?$1" >"$T/status"
	cat "$T/body"
}

ctl a put activities act-1 title="Eins" >/dev/null || fail "put act-1"
cursor=$(feed "since=0" | jq -r .next)
assert_eq "$(cat "$T/status")" 200 "the feed"
sql a "INSERT INTO labsync_log(key, hlc, tbl, pk, op, mask, at)
    SELECT 4000 << 40 | 1, hlc, 'activities', 'ghost', 0, 0, at + 1
    FROM labsync_state;
    UPDATE labsync_state SET at = at + 1;" || fail "the hand-written entry"

body=$(feed "since=$cursor")
assert_eq "$(cat "$T/status")" 200 "the feed over the unreadable entry"
assert_eq "$(jq -c .changes <<<"$body")" "[]" "the unreadable entry is not shown"
assert_eq "$(jq -r .next <<<"$body")" "$((cursor + 1))" "next passes it"
ctl a put activities act-2 title="Zwei" >/dev/null || fail "put act-2"
assert_eq "$(feed "since=$(jq -r .next <<<"$body")" | jq -r '[.changes[].id] | join(" ")')" \
    act-2 "the change after it"
assert_eq "$(feed "since=$cursor" | jq -r '[.changes[].id] | join(" ")')" \
    act-2 "read again from before it"
grep -q "unknown origin" "$T/a.log" || fail "a's log does not name the entry"
pass
