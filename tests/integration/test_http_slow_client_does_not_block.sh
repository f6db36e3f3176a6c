#!/usr/bin/env bash
# Slow and half-open HTTP clients never block the daemon's loop: while
# dortmund's HTTP port holds connections that send nothing, half a request
# line, half the headers, a large body a byte at a time, or pipelined
# requests whose answers they never read, writes at dortmund and at
# wuppertal still replicate within a few seconds and other HTTP requests
# are answered at once. (evhttp's own idle timeout is 10 s: everything
# below must be done well before it could have freed the loop.)
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

node dortmund
node wuppertal
http_node dortmund
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal

U=${HTTP_URL[dortmund]}
TOK="Authorization: Bearer ${HTTP_TOKEN[dortmund]}"

cat >"$T/slow.py" <<'PY'
# slow.py MODE PORT STATEFILE TOKEN: one misbehaving HTTP client; writes
# "open" to STATEFILE once it holds its connection(s), "closed" when the
# server closed one of them.
import os, select, socket, sys, time

mode, port, state, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    sys.argv[4].encode()

def mark(s):
    with open(state + ".tmp", "w") as f:
        f.write(s)
    os.rename(state + ".tmp", state)

def conn(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s

head = (b"Host: 127.0.0.1\r\nAuthorization: Bearer " + token +
    b"\r\nContent-Type: application/json\r\n")
socks = []
if mode == "silent":            # many connections that never say a word
    socks = [conn() for _ in range(50)]
elif mode == "partial-line":    # half a request line
    socks = [conn()]
    socks[0].sendall(b"GET /heal")
elif mode == "partial-headers":  # a request line and half the headers
    socks = [conn()]
    socks[0].sendall(b"PUT /v1/tables/activities/rows/slow-headers "
        b"HTTP/1.1\r\n" + head[:-10])
elif mode == "slow-body":       # 1 MB announced, sent a byte at a time
    socks = [conn()]
    socks[0].sendall(b"PUT /v1/tables/activities/rows/slow-body HTTP/1.1\r\n"
        + head + b"Content-Length: 1000000\r\n\r\n{\"title\":\"")
elif mode == "no-read":         # pipelined requests, answers never read
    socks = [conn(rcvbuf=4096)]
    socks[0].setblocking(False)
    req = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2000
    try:
        socks[0].send(req)
    except BlockingIOError:
        pass
mark("open")
while True:
    if mode == "no-read":
        time.sleep(1)
        continue
    r, _, _ = select.select(socks, [], [], 0.2)
    for s in r:
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        mark("closed" if data == b"" else
            "answered " + data[:60].decode(errors="replace"))
        sys.exit(0)
    if mode == "slow-body":
        try:
            socks[0].send(b"x")
        except OSError:
            mark("closed")
            sys.exit(0)
PY

MODES="silent partial-line partial-headers slow-body no-read"
for m in $MODES; do
	"$PY" "$T/slow.py" "$m" "${HTTP_PORT[dortmund]}" "$T/slow-$m.state" \
	    "${HTTP_TOKEN[dortmund]}" 2>>"$T/slow.log" &
	PID[slow-$m]=$!
done
state_is() { [ "$(cat "$T/slow-$1.state" 2>/dev/null)" = "$2" ]; }
for m in $MODES; do
	wait_for 10 "slow client $m connects" state_is "$m" open
done
held=$SECONDS

# While they hold their connections: replication both ways, and HTTP.
title_is() {
	[ "$(ctl "$1" get activities "$2" 2>/dev/null | jq -r .title)" = "$3" ]
}
http_code() {
	curl -s -o "$T/body" -w '%{http_code}' --max-time 2 "$@"
}
for round in 1 2 3; do
	ctl dortmund put activities do-$round title="Dortmund $round" ||
	    fail "put at dortmund (round $round)"
	ctl wuppertal put activities wu-$round title="Wuppertal $round" ||
	    fail "put at wuppertal (round $round)"
	assert_eq "$(http_code "$U/healthz")" 200 "/healthz while clients hang"
	assert_eq "$(http_code "$U/metrics")" 200 "/metrics while clients hang"
	assert_eq "$(http_code -X PUT -H "$TOK" -d "{\"title\":\"HTTP $round\"}" \
	    "$U/v1/tables/activities/rows/http-$round")" 201 \
	    "PUT while clients hang"
	wait_for 5 "dortmund's write $round reaches wuppertal" \
	    title_is wuppertal do-$round "Dortmund $round"
	wait_for 5 "the HTTP write $round reaches wuppertal" \
	    title_is wuppertal http-$round "HTTP $round"
	wait_for 5 "wuppertal's write $round reaches dortmund" \
	    title_is dortmund wu-$round "Wuppertal $round"
	assert_eq "$(http_code "$U/v1/tables/activities/rows/wu-$round")" 200 \
	    "wuppertal's write read over HTTP at dortmund"
done
took=$((SECONDS - held))
echo "writes replicated and HTTP answered while held ($took s)"
[ "$took" -lt 9 ] ||
    fail "the checks took $took s: as long as evhttp's idle timeout"
# the clients were still hanging there all along (not closed early)
for m in $MODES; do
	state_is "$m" open ||
	    fail "slow client $m did not hold its connection: $(cat "$T/slow-$m.state")"
done
kill -0 "${PID[dortmund]}" || fail "dortmund died"

# close the slow clients; nothing of theirs was written, the node is fine
for m in $MODES; do
	kill "${PID[slow-$m]}" 2>/dev/null
	wait "${PID[slow-$m]}" 2>/dev/null
	unset "PID[slow-$m]"
done
assert_eq "$(http_code "$U/healthz")" 200 "/healthz after the slow clients"
assert_eq "$(http_code "$U/v1/tables/activities/rows/slow-body")" 404 \
    "the slow body was not written"
assert_eq "$(http_code "$U/v1/tables/activities/rows/slow-headers")" 404 \
    "the half request was not written"
ctl dortmund put activities do-final title="Final" || fail "final put"
wait_for 5 "the final write reaches wuppertal" title_is wuppertal do-final Final
converge 30 dortmund wuppertal
pass
