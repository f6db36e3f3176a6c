#!/usr/bin/env bash
# A peer that is down holds the log only while it is configured: removed
# by a reload, what it confirmed is forgotten (labsync_peer_seen) and the
# entries it held back go. A peer added later that lacks compacted
# entries gets no gapped range from catch-up (the origin is left out, and
# the serving node says so once). compact_after = 1s here.
. "$(dirname "$0")/lib.sh"

node a city "compact_after = 1s"
node b city "compact_after = 1s"
node c city "compact_after = 1s"
peer a b
peer b a
peer a c
peer c a
start a
start b
start c

log_a() {
	sql "$1" "SELECT count(*) FROM labsync_log l JOIN labsync_origin o
	    ON l.key >> 40 = o.id WHERE o.name = 'a'"
}
vec() { ctl "$1" status --json | jq -r ".vector.$2 // 0"; }

for i in 1 2 3 4 5; do
	ctl a put labs lab-$i city=Dortmund || fail "put at a"
done
converge 30 a b c
seen_c() {
	[ "$(sql a "SELECT seq FROM labsync_peer_seen WHERE peer = 'c' AND
	    origin = 'a'")" = 5 ]
}
wait_for 20 "a records that c holds a's 5 changes" seen_c
stop c
for i in 6 7 8 9 10; do
	ctl a put labs lab-$i city=Dortmund || fail "put at a"
done
converge 30 a b

# b's only peer is a: b drops them; a keeps what c has not confirmed
b_done() { [ "$(log_a b)" = 0 ]; }
wait_for 30 "b compacts a's entries" b_done
a_five() { [ "$(log_a a)" = 5 ]; }
wait_for 30 "a compacts what c confirmed" a_five
sleep 3
assert_eq "$(log_a a)" 5 "a's entries of a while c is down"
ctl a status | grep '^peer c ' | grep -q 'holds back 5 log entries' ||
    fail "status: $(ctl a status | grep '^peer c ')"

# c leaves the configuration (its section is the last of a.conf)
sed -i '/^\[peer:c\]/,$d' "$T/a.conf"
kill -HUP "${PID[a]}"
wait_for 10 "a reloads" grep -q 'configuration reloaded: 1 peers' "$T/a.log"
grep -q 'compaction: c is no longer a peer' "$T/a.log" ||
    fail "a does not say c no longer holds the log"
assert_eq "$(sql a "SELECT count(*) FROM labsync_peer_seen WHERE
    peer = 'c'")" 0 "what c confirmed, at a"
a_none() { [ "$(log_a a)" = 0 ]; }
wait_for 30 "a compacts the entries c held back" a_none
assert_eq "$(sql a "SELECT floor FROM labsync_origin WHERE name = 'a'")" 10 \
    "a's floor of a"
assert_eq "$(vec a a)" 10 "a's vector of a"

# d joins now: the log lacks a's changes 1..10; d gets a snapshot of the
# state instead (test_snapshot_bootstrap.sh), never a gapped range
node d city "compact_after = 1s"
peer d a
peer a d
kill -HUP "${PID[a]}"
wait_for 10 "a adds d" grep -q 'peer d: added' "$T/a.log"
start d
wait_for 20 "a sends d a snapshot" \
    grep -q "snapshot for d: it holds a's changes up to 0, our log none up to 10" \
    "$T/a.log"
ctl a put labs lab-11 city=Dortmund || fail "put at a"
d_eleven() { [ "$(vec d a)" = 11 ]; }
wait_for 20 "d holds a's changes up to 11" d_eleven
kill -0 "${PID[a]}" 2>/dev/null || fail "a died serving d"
assert_eq "$(ctl d get labs lab-11 | jq -r .city)" Dortmund "lab-11 at d"
pass
