#!/usr/bin/env bash
# A hostile but admitted peer cannot hurt a city. "mallory" holds a key
# that dortmund lists, so ZAP lets it in; dortmund subscribes to its live
# feed and mallory talks to dortmund's sync socket. Mallory (Python,
# pyzmq and Google's protobuf, CURVE with its own keypair) sends empty
# frames, random bytes, truncated protobuf, a length field claiming
# gigabytes, batches with a column twice, a delete with columns, a clock
# of zero (protocol faults, each after a valid change: refused whole; a
# change whose content does not fit, such as an unknown column, is kept
# aside instead: test_type_conflict_kept_aside_and_retried), and a change claiming
# dortmund's own origin on the live feed. Dortmund keeps running, counts
# and logs every rejection (naming mallory, rate-limited), applies none of
# it, and still replicates with wuppertal. Messages of 8 MiB (above
# max_message_size) make libzmq drop the connection, on each of the three
# sockets between them: both ends must reconnect and be heard again.
SECURE=1
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip "no /usr/bin/python3"
"$PY" -c 'import zmq, google.protobuf' 2>/dev/null ||
    skip "python3-zmq or python3-protobuf missing (make deps)"
"$PY" -c 'import zmq, sys; sys.exit(0 if zmq.has("curve") else 1)' ||
    skip "python3-zmq has no CURVE"
command -v protoc >/dev/null || skip "protoc missing (protobuf-compiler)"
protoc --python_out="$T" -I "$ROOT/proto" "$ROOT/proto/labsync.proto" ||
    fail "protoc --python_out"

node dortmund
node wuppertal
PORT_PUB[mallory]=$(free_port)
PORT_SYNC[mallory]=$(free_port)
peer dortmund wuppertal
peer wuppertal dortmund
peer dortmund mallory		# writes $T/keys/mallory.key and .pub
[ -s "$T/keys/mallory.key" ] || fail "no key for mallory"

cat >"$T/mallory.py" <<'PY'
# mallory: an admitted peer that sends garbage. It executes commands the
# test drops in $T/mallory.cmd.N and answers in $T/mallory.done.N.
import os, random, sys, time
import zmq
from zmq.utils.monitor import recv_monitor_message

T, pub_ep, my_sync_ep, sync_ep, victim = sys.argv[1:6]
sys.path.insert(0, T)
import labsync_pb2 as pb

def key(path):
    with open(path, "rb") as f:
        return f.read().strip()

my_pub, my_sec = key(T + "/keys/mallory.pub"), key(T + "/keys/mallory.key")
victim_pub = key(T + "/keys/%s.pub" % victim)
ctx = zmq.Context()

# Our live feed, which dortmund subscribes to. XPUB: we see the
# subscription arrive, so nothing we send after it is dropped.
xpub = ctx.socket(zmq.XPUB)
xpub.curve_server = True
xpub.curve_secretkey = my_sec
xpub.sndhwm = 0
xpub.linger = 0
xmon = xpub.get_monitor_socket()
xpub.bind(pub_ep)

# Our catch-up server, which dortmund's DEALER asks.
router = ctx.socket(zmq.ROUTER)
router.curve_server = True
router.curve_secretkey = my_sec
router.linger = 0
rmon = router.get_monitor_socket()
router.bind(my_sync_ep)

# A DEALER to dortmund's catch-up ROUTER, pinned to dortmund's key.
dealer = ctx.socket(zmq.DEALER)
dealer.curve_publickey = my_pub
dealer.curve_secretkey = my_sec
dealer.curve_serverkey = victim_pub
dealer.sndhwm = 0
dealer.linger = 0
dmon = dealer.get_monitor_socket()
dealer.connect(sync_ep)

rng = random.Random(4711)
seq = [0]

def hlc():
    return (int(time.time() * 1000) << 16) | 1

def envelope_bytes(changes):
    e = pb.Envelope(version=1, sender="mallory")
    for c in changes:
        e.batch.changes.add().CopyFrom(c)
    return e.SerializeToString()

def change(pk, cols, table="activities", origin="mallory", seqno=1,
           op=pb.OP_UPSERT, clock=None):
    c = pb.Change(origin=origin, seq=seqno,
                  hlc=hlc() if clock is None else clock, table=table, pk=pk,
                  op=op)
    for name, kind, v in cols:
        col = c.columns.add()
        col.name = name
        setattr(col.value, kind, v)
    return c

def good(pk):	# a valid change, to prove a bad batch is refused whole
    return change(pk, [("title", "text", "looks fine")])

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def garbage_kinds():
    """(name, bytes, rejected) per kind; rejected: on the live feed."""
    seq[0] += 1
    n = seq[0]
    valid = envelope_bytes([good("m-trunc-%d" % n),
                            change("m-trunc2-%d" % n,
                                   [("summary", "text", "x" * 40)])])
    # wire type 7 does not exist: never a protobuf, whatever follows
    rnd = b"\x0f" + bytes(rng.getrandbits(8) for _ in range(200))
    # version 1, then a batch (field 11) claiming 3 GiB
    giga = b"\x08\x01" + b"\x5a" + varint(3 << 30) + b"\x0a\x00"
    return [
        ("empty", b"", True),
        ("random", rnd, True),
        ("truncated", valid[:-7], True),
        ("gigabytes", giga, True),
        ("twice", envelope_bytes([
            good("m-dup-%d" % n),
            change("m-dup-bad-%d" % n, [("title", "text", "a"),
                                        ("title", "text", "b")],
                   seqno=2)]), True),
        ("delete-with-columns", envelope_bytes([
            good("m-del-%d" % n),
            change("m-del-bad-%d" % n, [("title", "text", "c")],
                   op=pb.OP_DELETE, seqno=2)]), True),
        ("clock-zero", envelope_bytes([
            good("m-clk-%d" % n),
            change("m-clk-bad-%d" % n, [("title", "text", "z")],
                   seqno=2, clock=0)]), True),
        # dortmund's origin, far ahead: the live feed must not apply it
        ("own-origin", envelope_bytes([
            change("m-own-%d" % n, [("title", "text", "forged")],
                   origin=victim, seqno=1000 + n)]), False),
    ]

last_hb = [0.0]

def tick():
    """Heartbeats every 200 ms, as a peer should: our feed stays alive."""
    if time.time() - last_hb[0] >= 0.2:
        last_hb[0] = time.time()
        e = pb.Envelope(version=1, sender="mallory")
        e.heartbeat.node_id = "mallory"
        e.heartbeat.hlc = hlc()
        xpub.send(e.SerializeToString())

def events(mon, timeout_ms):
    out = []
    tick()
    while mon.poll(timeout_ms):
        out.append(recv_monitor_message(mon)["event"])
        timeout_ms = 0
    return out

def wait_event(mon, want, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if want in events(mon, 200):
            return True
    return False

def wait_sub(secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        tick()
        if xpub.poll(100) and xpub.recv()[:1] == b"\x01":
            return True
    return False

def request(secs, not_from=None):
    """The routing id of the next request dortmund sends us."""
    deadline = time.time() + secs
    while time.time() < deadline:
        tick()
        if router.poll(100):
            frames = router.recv_multipart()
            if frames[0] != not_from:
                return frames[0]
    return None

def cmd_wait_sub():
    return "ok" if wait_sub(60) else "error: dortmund never subscribed"

def cmd_rounds(k):
    sub = dealer_n = rejected = 0
    for _ in range(k):
        for name, data, rej in garbage_kinds():
            xpub.send(data)
            dealer.send(data)
            sub += 1
            dealer_n += 1
            # the sync socket refuses every one of them
            rejected += (1 if rej else 0) + 1
    return "sub=%d dealer=%d rejected=%d" % (sub, dealer_n, rejected)

def cmd_flood(k):
    kinds = [d for name, d, rej in garbage_kinds()[:4]]
    for i in range(k):
        dealer.send(kinds[i % len(kinds)])
    return "flood=%d" % k

BIG = 8 * 1024 * 1024

def cmd_big_dealer():
    events(dmon, 0)
    dealer.send(os.urandom(BIG))
    if not wait_event(dmon, zmq.EVENT_DISCONNECTED, 30):
        return "error: dortmund did not drop the connection"
    if not wait_event(dmon, zmq.EVENT_HANDSHAKE_SUCCEEDED, 60):
        return "error: no reconnect to dortmund's sync socket"
    dealer.send(b"")	# one rejection to show we are heard again
    return "ok"

def cmd_big_pub():
    events(xmon, 0)
    xpub.send(os.urandom(BIG))
    if not wait_event(xmon, zmq.EVENT_DISCONNECTED, 30):
        return "error: dortmund's subscriber did not drop the connection"
    if not wait_sub(60):
        return "error: dortmund did not subscribe again"
    for _ in range(5):
        xpub.send(b"")
        time.sleep(0.1)
    return "sent=5"

def cmd_big_router():
    while router.poll(0):
        router.recv_multipart()		# old requests
    rid = request(60)
    if rid is None:
        return "error: dortmund sent no catch-up request"
    events(rmon, 0)
    router.send_multipart([rid, os.urandom(BIG)])
    if not wait_event(rmon, zmq.EVENT_DISCONNECTED, 30):
        return "error: dortmund's dealer did not drop the connection"
    rid2 = request(60, not_from=rid)
    if rid2 is None:
        return "error: dortmund never asked again on a new connection"
    router.send_multipart([rid2, b""])	# one rejection: heard again
    return "ok"

def cmd_bad_answer():
    """Answer every catch-up request for 3 s with two good changes of
    ours, then one with a column twice, more to come: a refused
    answer must not make dortmund ask again in a loop."""
    while router.poll(0):
        router.recv_multipart()		# old requests
    e = pb.Envelope(version=1, sender="mallory")
    for c in (change("m-ans-1", [("title", "text", "one")], seqno=1),
              change("m-ans-2", [("title", "text", "two")], seqno=2),
              change("m-ans-3", [("title", "text", "x"),
                                 ("title", "text", "y")], seqno=3)):
        e.batch.changes.add().CopyFrom(c)
    e.batch.more = True
    bad = e.SerializeToString()
    rid = request(60)
    if rid is None:
        return "error: dortmund sent no catch-up request"
    router.send_multipart([rid, bad])
    asked, deadline = 0, time.time() + 3
    while time.time() < deadline:
        tick()
        if router.poll(20):
            frames = router.recv_multipart()
            router.send_multipart([frames[0], bad])
            asked += 1
    return "asked=%d" % asked
n = 1
while True:
    path = "%s/mallory.cmd.%d" % (T, n)
    while not os.path.exists(path):
        tick()
        time.sleep(0.05)
    with open(path) as f:
        words = f.read().split()
    cmd, args = words[0], [int(a) for a in words[1:]]
    try:
        res = {"wait_sub": cmd_wait_sub, "rounds": cmd_rounds,
               "flood": cmd_flood, "big_dealer": cmd_big_dealer,
               "big_pub": cmd_big_pub,
               "big_router": cmd_big_router,
               "bad_answer": cmd_bad_answer}[cmd](*args)
    except Exception as ex:
        res = "error: %s: %r" % (cmd, ex)
    print("mallory: %s -> %s" % (" ".join(words), res), flush=True)
    with open(path + ".tmp", "w") as f:
        f.write(res + "\n")
    os.rename(path + ".tmp", "%s/mallory.done.%d" % (T, n))
    n += 1
PY

# mallory CMD ARGS...: run one command; its answer is in $MOUT.
MSEQ=0
MOUT=
mallory() {
	local deadline=$((SECONDS + 120)) done
	MSEQ=$((MSEQ + 1))
	done=$T/mallory.done.$MSEQ
	echo "$*" >"$T/mallory.cmd.tmp"
	mv "$T/mallory.cmd.tmp" "$T/mallory.cmd.$MSEQ"
	until [ -e "$done" ]; do
		kill -0 "${PID[mallory]}" 2>/dev/null || fail "mallory died ($*)"
		[ "$SECONDS" -lt "$deadline" ] || fail "mallory: '$*' timed out"
		sleep 0.1
	done
	MOUT=$(cat "$done")
	case $MOUT in error*) fail "mallory $*: $MOUT" ;; esac
}

stat_of() {	# stat_of NAME: dortmund's stats.NAME
	ctl dortmund status --json | jq -r ".stats.$1"
}
at_least() {	# at_least NAME N: stats.NAME >= N
	local v
	v=$(stat_of "$1") && [ "$v" != null ] && [ "$v" -ge "$2" ]
}
alive() {
	kill -0 "${PID[dortmund]}" 2>/dev/null || fail "dortmund died"
}
rejected_lines() {
	grep -c "rejected message from" "$T/dortmund.log"
}

start dortmund
start wuppertal
ctl dortmund put activities a-do-1 title="Before the attack" || fail put
ctl wuppertal put labs l-wu-1 city=Wuppertal || fail put
converge 30 dortmund wuppertal
own_before=$(ctl dortmund status --json | jq -r '.vector.dortmund')
assert_eq "$own_before" 1 "dortmund's own sequence before the attack"
base=$(stat_of rejected)
assert_eq "$base" 0 "rejections before the attack"
disc_base=$(stat_of disconnects)
[ "$disc_base" != null ] || fail "status --json has no stats.disconnects"

"$PY" "$T/mallory.py" "$T" "tcp://127.0.0.1:${PORT_PUB[mallory]}" \
    "tcp://127.0.0.1:${PORT_SYNC[mallory]}" \
    "tcp://127.0.0.1:${PORT_SYNC[dortmund]}" dortmund \
    >>"$T/mallory.log" 2>&1 &
PID[mallory]=$!
attack_start=$SECONDS

mallory wait_sub
wait_for 30 "dortmund admits mallory's key" \
    grep -q "zap: admitted peer mallory" "$T/dortmund.log"

# One round first: fewer rejections than the log's budget per minute
# (REJECT_LOG_PER_MIN), so every reason must be logged.
mallory rounds 1
n1=$(echo "$MOUT" | sed -n 's/.*rejected=\([0-9]*\).*/\1/p')
[ "${n1:-0}" -gt 0 ] || fail "mallory said: $MOUT"
[ "$n1" -le 20 ] || fail "round 1 exceeds the log budget: $n1"
wait_for 30 "dortmund counts $n1 rejections" at_least rejected "$n1"
alive
for why in "empty message" "not a protobuf envelope" \
    "column activities.title twice" "delete with columns" "bad hlc" \
    "change claims to originate from this node" \
    "unexpected request on the sync socket"; do
	grep -F "rejected message from mallory: " "$T/dortmund.log" |
	    grep -qF "$why" || fail "dortmund did not log '$why' for mallory"
done
grep -qF "batch refused" "$T/dortmund.log" || fail "no 'batch refused'"
grep -q "rejected message from (sync socket)" "$T/dortmund.log" &&
    fail "a rejection on the sync socket does not name the peer"
# Catch-up answers whose third change is bad: refused whole (the two good
# ones before it are not kept, although a catch-up answer is checked
# change by change as it is applied), and dortmund does not ask again in
# a loop (a heartbeat, 200 ms here, between requests after a refusal).
mallory bad_answer
wait_for 30 "rejection of the bad catch-up answer" at_least rejected \
    $((n1 + 1))
asked=$(echo "$MOUT" | sed -n 's/^asked=\([0-9]*\)$/\1/p')
[ -n "$asked" ] || fail "mallory said: $MOUT"
echo "dortmund asked $asked times in 3 s of refused answers"
[ "$asked" -le 20 ] || fail "dortmund asked $asked times in 3 s after refusing an answer"
grep -F "rejected message from mallory: " "$T/dortmund.log" |
    grep -qF "change 3 of 3 (mallory #3): column activities.title twice" ||
    fail "the bad catch-up answer was not logged with its change"
alive

# More rounds: each kind repeatedly, all of it reaches the application.
mallory rounds 4
n2=$(echo "$MOUT" | sed -n 's/.*rejected=\([0-9]*\).*/\1/p')
expect=$((n1 + 1 + n2))
wait_for 30 "dortmund counts $expect rejections" at_least rejected "$expect"
alive

# 8 MiB to the sync socket: libzmq drops the connection (the monitor logs
# and counts it), mallory reconnects, and is heard again.
drops_before=$(grep -c "sent a message above max_message_size" \
    "$T/dortmund.log")
mallory big_dealer
expect=$((expect + 1))
wait_for 30 "rejection after mallory's reconnect" at_least rejected "$expect"
wait_for 30 "the monitor counts the drop" at_least disconnects \
    $((disc_base + 1))
[ "$(grep -c "sent a message above max_message_size" "$T/dortmund.log")" \
    -gt "$drops_before" ] || fail "the dropped connection was not logged"
[ "$(grep -c "zap: admitted peer mallory" "$T/dortmund.log")" -ge 2 ] ||
    fail "mallory's reconnect was not admitted again"
alive

# 8 MiB on the live feed: dortmund's subscriber drops the connection
# and subscribes again; what mallory sends then is rejected as before.
mallory big_pub
expect=$((expect + 5))
wait_for 30 "live feed rejections after the resubscribe" \
    at_least rejected "$expect"
alive

# 8 MiB as the answer to dortmund's catch-up request: dortmund's DEALER
# loses its session (libzmq does not reconnect after that by itself), so
# dortmund must open a new one and ask again; mallory answers that with
# an empty message, rejected as before.
mallory big_router
expect=$((expect + 1))
wait_for 30 "rejection of the answer on the new catch-up connection" \
    at_least rejected "$expect"
alive

# A flood: counted in full, logged only REJECT_LOG_PER_MIN (20) a minute.
mallory flood 500
expect=$((expect + 500))
wait_for 60 "dortmund counts the flood" at_least rejected "$expect"
alive
lines=$(rejected_lines)
windows=$(( (SECONDS - attack_start) / 60 + 2 ))
[ "$lines" -le $((20 * windows)) ] ||
    fail "rejections not rate-limited: $lines log lines for $expect"
[ "$lines" -lt $((expect / 10)) ] ||
    fail "rejections not rate-limited: $lines log lines for $expect"

# Nothing of mallory's is in dortmund's tables or vector; dortmund's own
# sequence was not moved by the forged changes. (A change of dortmund's
# own origin on the live feed is not rejected: sync_apply counts it as a
# gap, a sign that we lost changes, and leaves it to catch-up; so it must
# simply not be applied.)
kill -9 "${PID[mallory]}" 2>/dev/null
wait "${PID[mallory]}" 2>/dev/null
unset "PID[mallory]"
[ "$(ctl dortmund status --json | jq -r '.phase')" = running ] ||
    fail "dortmund is no longer taking writes"
for pk in m-dup-1 m-del-1 m-clk-1 m-trunc-1 m-own-1 m-ans-1 m-ans-2; do
	ctl dortmund get activities "$pk" >/dev/null 2>&1 &&
	    fail "$pk from mallory's bad batches was applied"
done
[ -z "$(sqlite3 "$T/dortmund.db" "SELECT id FROM activities WHERE id LIKE 'm-%'")" ] ||
    fail "mallory's rows in dortmund's activities"
assert_eq "$(ctl dortmund status --json | jq -r '.vector.mallory')" null \
    "dortmund holds changes of origin mallory"
assert_eq "$(ctl dortmund status --json | jq -r '.vector.dortmund')" \
    "$own_before" "dortmund's own sequence after the attack"

# Replication between the honest cities still works, both ways.
ctl dortmund put activities a-do-2 title="After the attack" participants=7 ||
    fail "put at dortmund after the attack"
ctl wuppertal put activities a-wu-2 title="Also after" || fail "put at wuppertal"
converge 30 dortmund wuppertal
assert_eq "$(rows wuppertal activities)" 3 "activities at wuppertal"
assert_eq "$(ctl wuppertal get activities a-do-2 | jq -r .participants)" 7
ctl dortmund get activities a-wu-2 >/dev/null || fail "a-wu-2 not at dortmund"
alive
echo "attack phase: $((SECONDS - attack_start)) s, $(stat_of rejected)" \
    "rejections, $lines log lines"
pass
