#!/usr/bin/env bash
# Liveness by the protocol's own heartbeats: a peer that stops answering
# (SIGSTOP: its sockets stay open, nothing is closed, so only missing
# heartbeats can tell) is shown "down" within heartbeat_timeout; once it
# runs again (SIGCONT) it is shown "up" again by itself, and a write made
# while it was stopped reaches it.
. "$(dirname "$0")/lib.sh"

# A stopped process is killed by cleanup's kill -9 as well, but wake it
# first anyway, whatever way this script ends.
STOPPED=
wake_stopped() {
	[ -n "$STOPPED" ] && kill -CONT "$STOPPED" 2>/dev/null
	STOPPED=
}
# lib.sh's cleanup is the EXIT trap: run it after, with the same status
trap 'rc=$?; wake_stopped; (exit $rc); cleanup' EXIT

pair dortmund wuppertal

ctl dortmund put activities a-before title="Before the stop" || fail put
converge 30 dortmund wuppertal

state_of() {	# state_of NODE PEER: how NODE sees PEER
	ctl "$1" status --json |
	    jq -r --arg p "$2" '.peers[] | select(.name == $p) | .state'
}
shows() {	# shows NODE PEER STATE (in both status outputs)
	[ "$(state_of "$1" "$2")" = "$3" ] &&
	    ctl "$1" status | grep -q "^peer $2 (city): $3,"
}
wait_for 30 "dortmund sees wuppertal up" shows dortmund wuppertal up
wait_for 30 "wuppertal sees dortmund up" shows wuppertal dortmund up

# heartbeat_timeout is 2 s (lib.sh); allow a generous margin
kill -STOP "${PID[wuppertal]}" || fail "SIGSTOP"
STOPPED=${PID[wuppertal]}
t0=$SECONDS
wait_for 15 "dortmund sees the stopped wuppertal down" \
    shows dortmund wuppertal down
down_after=$((SECONDS - t0))
# not before the timeout: 2 s, the clock of $SECONDS has 1 s steps
[ "$down_after" -ge 1 ] || fail "down after $down_after s, before the timeout"
grep -q "peer wuppertal: up -> down (no heartbeat within heartbeat_timeout)" \
    "$T/dortmund.log" || fail "dortmund did not log wuppertal going down"

# dortmund keeps taking writes while its peer is stopped
ctl dortmund put activities a-during title="While wuppertal was stopped" \
    participants=3 || fail "put while wuppertal is stopped"
ctl dortmund put labs l-during city=Dortmund || fail "put while stopped"
sleep 2
shows dortmund wuppertal down || fail "wuppertal came up while stopped"

kill -CONT "${PID[wuppertal]}" || fail "SIGCONT"
STOPPED=
t1=$SECONDS
wait_for 30 "dortmund sees the resumed wuppertal up" \
    shows dortmund wuppertal up
up_after=$((SECONDS - t1))
grep -q "peer wuppertal: down -> up (heard again)" "$T/dortmund.log" ||
    fail "dortmund did not log wuppertal coming back"
wait_for 30 "wuppertal sees dortmund up" shows wuppertal dortmund up

# the writes made during the stop reach wuppertal
converge 30 dortmund wuppertal
assert_eq "$(ctl wuppertal get activities a-during | jq -r .participants)" 3 \
    "a-during at wuppertal"
ctl wuppertal get labs l-during >/dev/null || fail "l-during not at wuppertal"
assert_eq "$(rows wuppertal activities)" 2 "activities at wuppertal"

# and replication goes on both ways afterwards
ctl wuppertal put activities a-after title="After the stop" || fail put
converge 30 dortmund wuppertal
ctl dortmund get activities a-after >/dev/null || fail "a-after not at dortmund"
kill -0 "${PID[dortmund]}" 2>/dev/null || fail "dortmund died"
kill -0 "${PID[wuppertal]}" 2>/dev/null || fail "wuppertal died"
echo "down after ${down_after} s, up again after ${up_after} s"
pass
