#!/usr/bin/env bash
# With CURVE keys, two cities that list each other converge. A third node
# whose key neither city lists, though it knows their public keys, gets
# nothing from them and injects nothing into them. Its own log says why,
# peer by peer: Dortmund refused its key; for Wuppertal it holds a wrong
# public key, so that handshake fails before any admission.
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
"$LABSYNCCTL" keygen "$T/keys/not-wuppertal" >/dev/null || fail keygen
sed -i "s#^public_key_file = $T/keys/wuppertal.pub\$#public_key_file = $T/keys/not-wuppertal.pub#" \
    "$T/stranger.conf"
grep -q "keys/not-wuppertal.pub" "$T/stranger.conf" ||
    fail "the stranger's wrong key for wuppertal is not in its config"
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

# the stranger's side: each failure logged once, and shown as last error
assert_eq "$(grep -c "peer dortmund: it refused our key" "$T/stranger.log")" \
    1 "the stranger's log lines on dortmund's refusal"
ctl stranger status | grep "peer dortmund" | grep -q "refused our key" ||
    fail "the stranger's status lacks dortmund's refusal"
grep -q "peer wuppertal: handshake failed (.*): check the public_key we" \
    "$T/stranger.log" || fail "the stranger did not log the wrong key"
grep -q "handshake failed on .*(cannot decrypt: one side holds a wrong" \
    "$T/wuppertal.log" || fail "wuppertal did not log the undecryptable hello"
pass
