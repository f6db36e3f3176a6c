#!/usr/bin/env bash
# With CURVE keys, two cities that list each other converge. A third node
# whose key neither city lists, though it knows their public keys, gets
# nothing from them and injects nothing into them.
SECURE=1
. "$(dirname "$0")/lib.sh"

node dortmund
node wuppertal
node stranger
peer dortmund wuppertal
peer wuppertal dortmund
# the stranger knows both cities' keys and endpoints; they do not know it
peer stranger dortmund
peer stranger wuppertal
start dortmund
start wuppertal
start stranger

ctl dortmund put activities a1 title="Workshop" participants=12 || fail put
ctl wuppertal put labs l1 city=Wuppertal || fail put
ctl stranger put activities evil title="injected" || fail "stranger put"
converge 30 dortmund wuppertal
assert_eq "$(rows dortmund activities)" 1 "dortmund activities"
sleep 3   # several heartbeats and catch-up rounds
assert_eq "$(rows stranger activities)" 1 "stranger got something"
assert_eq "$(rows stranger labs)" 0 "stranger got a lab"
ctl dortmund get activities evil >/dev/null 2>&1 && fail "injected at dortmund"
ctl wuppertal get activities evil >/dev/null 2>&1 && fail "injected at wuppertal"
grep -q "zap: refused connection" "$T/dortmund.log" ||
    fail "dortmund did not log the refused key"
grep -q "zap: admitted peer wuppertal" "$T/dortmund.log" ||
    fail "dortmund did not log the admitted key"
ctl stranger status | grep -q "peer dortmund (city): up" &&
    fail "stranger thinks dortmund is up"
pass
