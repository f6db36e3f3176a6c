#!/usr/bin/env bash
# labsyncd speaks systemd's notify protocol: READY=1 once its sockets
# accept connections, WATCHDOG=1 every half of WATCHDOG_USEC, STOPPING=1 on
# SIGTERM, then exit 0. A small python listener stands in for systemd; the
# log carries journald priority prefixes when JOURNAL_STREAM is set.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "no $PY (make deps installs python3)"

node solo
sed -i 's/^log_level = .*/log_level = info/' "$T/solo.conf"

# The listener: one line per datagram, "SECONDS DATAGRAM"; on READY=1 it
# checks at once that both TCP sockets accept and the control socket is
# there, and writes "CHECK ..." with what it found.
cat >"$T/listen.py" <<'PY'
import os, socket, sys, time
path, out, sync_port, pub_port, control = sys.argv[1:6]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        data = s.recv(4096).decode("utf-8", "replace")
        f.write("%.6f %s\n" % (time.monotonic(), data.replace("\n", "\\n")))
        if data == "READY=1":
            res = []
            for name, port in (("sync", sync_port), ("publish", pub_port)):
                c = socket.socket()
                c.settimeout(2)
                try:
                    c.connect(("127.0.0.1", int(port)))
                    res.append(name + "=ok")
                except OSError as e:
                    res.append(name + "=" + type(e).__name__)
                finally:
                    c.close()
            res.append("control=" + ("ok" if os.path.exists(control)
                                     else "missing"))
            f.write("CHECK " + " ".join(res) + "\n")
PY
"$PY" "$T/listen.py" "$T/notify.sock" "$T/notify.txt" \
    "${PORT_SYNC[solo]}" "${PORT_PUB[solo]}" "$T/solo.db.sock" \
    2>"$T/listen.err" &
PID[listener]=$!
wait_for 10 "the notify listener binds" test -S "$T/notify.sock"

# WATCHDOG_PID stays unset: sd_watchdog_enabled then trusts WATCHDOG_USEC.
unset WATCHDOG_PID
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000 JOURNAL_STREAM=8:1234 \
    "$LABSYNCD" -c "$T/solo.conf" >>"$T/solo.log" 2>&1 &
PID[solo]=$!
pid=${PID[solo]}

wait_for 30 "READY=1 arrives" grep -q ' READY=1$' "$T/notify.txt"
wait_for 10 "the listener checks the sockets" grep -q '^CHECK' "$T/notify.txt"
assert_eq "$(grep '^CHECK' "$T/notify.txt")" \
    "CHECK sync=ok publish=ok control=ok" "sockets at READY=1"
assert_eq "$(grep -c ' READY=1$' "$T/notify.txt")" 1 "READY=1 count"

# 1 s watchdog: a ping every 500 ms; at least 3 in the 3 s after READY.
ready=$(awk '/ READY=1$/ { print $1; exit }' "$T/notify.txt")
sleep 3.5
pings=$(awk -v r="$ready" '/ WATCHDOG=1$/ && $1 > r && $1 <= r + 3.2' \
    "$T/notify.txt" | wc -l)
[ "$pings" -ge 3 ] || fail "only $pings WATCHDOG=1 within 3 s of READY=1"
grep -q 'systemd watchdog: pinging every 500 ms' "$T/solo.log" ||
    fail "no watchdog line in the log"
grep -qx '<6>ready' "$T/solo.log" || fail "no '<6>ready' line (JOURNAL_STREAM)"
grep -q '^labsyncd: ' "$T/solo.log" &&
    fail "unprefixed log line although JOURNAL_STREAM is set"

# The node works while it pings.
ctl solo put labs lab-1 city=Dortmund >/dev/null || fail "put"
ctl solo status | grep -q '^node solo (city), running' || fail "status"

kill -TERM "$pid"
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "labsyncd still running 10 s after SIGTERM"
wait "$pid"
rc=$?
unset "PID[solo]"
assert_eq "$rc" 0 "exit status after SIGTERM"
wait_for 5 "STOPPING=1 arrives" grep -q ' STOPPING=1$' "$T/notify.txt"
stopping=$(awk '/ STOPPING=1$/ { print $1; exit }' "$T/notify.txt")
awk -v r="$ready" -v s="$stopping" 'BEGIN { exit !(s > r) }' ||
    fail "STOPPING=1 came before READY=1"
grep -qx '<6>stopped' "$T/solo.log" || fail "no '<6>stopped' line"
[ ! -e "$T/solo.db.sock" ] || fail "control socket left behind"
pass
