#!/usr/bin/env bash
# SIGHUP reloads peers and the log level without a restart: two nodes that
# start apart converge once each gets the other's [peer] section and a
# SIGHUP; a broken file is refused with file:line and the running config
# stays (the node keeps syncing); log_level = debug takes effect; a peer
# removed on reload is gone from `labsyncctl status`.
. "$(dirname "$0")/lib.sh"

# Priority prefixes in the log (<7> debug), as under journald.
export JOURNAL_STREAM=8:1234

node a
node b
sed -i 's/^log_level = .*/log_level = info/' "$T/a.conf" "$T/b.conf"
start a
start b
pid_a=${PID[a]}
pid_b=${PID[b]}

ctl a put labs lab-a city=Dortmund name="Lab A" || fail "put on a"
ctl b put labs lab-b city=Wuppertal name="Lab B" || fail "put on b"
sleep 2
assert_eq "$(rows a labs)" 1 "a has only its own row before the reload"
assert_eq "$(rows b labs)" 1 "b has only its own row before the reload"
grep -q '^<7>' "$T/a.log" && fail "debug lines at log_level = info"

# Each learns of the other, and a turns on debug logging.
peer a b
peer b a
sed -i 's/^log_level = .*/log_level = debug/' "$T/a.conf"
kill -HUP "$pid_a" "$pid_b"
converge 30 a b
assert_eq "$(rows a labs)" 2 "a's labs after the reload"
kill -0 "$pid_a" 2>/dev/null || fail "a died on SIGHUP"
kill -0 "$pid_b" 2>/dev/null || fail "b died on SIGHUP"
assert_eq "$(grep -c 'starting: node a' "$T/a.log")" 1 "a started once"
assert_eq "$(grep -c 'starting: node b' "$T/b.log")" 1 "b started once"
grep -q 'peer b: added' "$T/a.log" || fail "a did not log the new peer"
grep -q 'configuration reloaded: 1 peers, log level debug' "$T/a.log" ||
    fail "a did not log the reload"
ctl a status | grep -q '^peer b (city): up' || fail "a does not show b up"

# The new log level holds: a write on a is logged at debug level.
ctl a put labs lab-a2 city=Dortmund || fail "put on a"
wait_for 10 "a logs at debug level" grep -q '^<7>' "$T/a.log"
converge 30 a b

# A broken file: refused with file:line, the running config stays.
# labsyncctl reads the file too, so it uses a good copy ("a-ok") meanwhile.
cp "$T/a.conf" "$T/a-ok.conf"
sed -i '/^anti_entropy_interval/a bogus_key = 1' "$T/a.conf"
line=$(grep -n '^bogus_key' "$T/a.conf" | cut -d: -f1)
kill -HUP "$pid_a"
wait_for 10 "a refuses the reload" grep -q 'reload refused' "$T/a.log"
grep -qF "$T/a.conf:$line: unknown key 'bogus_key' in section [sync]" \
    "$T/a.log" || fail "no file:line error for bogus_key in a's log"
kill -0 "$pid_a" 2>/dev/null || fail "a died on a broken reload"
ctl a status >/dev/null 2>&1 && fail "labsyncctl accepted the broken file"
ctl b put labs lab-b2 city=Wuppertal || fail "put on b"
ctl a-ok put labs lab-a3 city=Dortmund || fail "put on a"
converge 30 a-ok b
assert_eq "$(rows b labs)" 5 "b's labs after the broken reload"
ctl a-ok status | grep -q '^peer b (city): up' ||
    fail "a lost b on a broken reload"

# Removing a peer: fix the file, drop [peer:b] (the last section).
sed -i '/^bogus_key/d; /^\[peer:b\]/,$d' "$T/a.conf"
kill -HUP "$pid_a"
wait_for 10 "a drops b" grep -q 'peer b: removed' "$T/a.log"
wait_for 10 "a reloads with no peers" \
    grep -q 'configuration reloaded: 0 peers' "$T/a.log"
ctl a status | grep -q '^peer b' && fail "a still shows b after removing it"
assert_eq "$(ctl a status --json | jq -c .peers)" "[]" "a's peers (JSON)"
kill -0 "$pid_a" 2>/dev/null || fail "a died removing a peer"
kill -0 "$pid_b" 2>/dev/null || fail "b died"
ctl a status | grep -q '^node a (city), running' || fail "a not running"
pass
