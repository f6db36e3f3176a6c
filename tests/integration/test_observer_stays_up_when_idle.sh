#!/usr/bin/env bash
# An observer only connects in: the city has no endpoint of it to listen
# to. It still shows `up` at the city for a whole minute of idle
# operation (nothing written), because the observer talks to the city's
# catch-up server at least every heartbeat_interval, and the city counts
# every message from it; no `-> down` line appears in the city's log.
. "$(dirname "$0")/lib.sh"

node dortmund
node observer observer
peer observer dortmund
peer_in dortmund observer observer
start dortmund
start observer

state() {
	ctl dortmund status --json |
	    jq -r '.peers[] | select(.name == "observer") | .state'
}
is_up() { [ "$(state)" = up ]; }
wait_for 10 "observer up at dortmund" is_up
# idle for a minute, sampled every second: up at every sample
for i in $(seq 60); do
	s=$(state)
	[ "$s" = up ] || fail "observer $s at dortmund after $i s idle"
	sleep 1
done
grep -q 'peer observer: .*-> down' "$T/dortmund.log" &&
    fail "dortmund logged the observer down: $(grep 'peer observer: .*-> down' "$T/dortmund.log" | head -1)"
pass
