# lib.sh: helpers for integration tests (sourced). Real daemons as
# processes on 127.0.0.1, each test in its own temp folder, every process
# killed and the folder removed on exit, whatever happens.
#
# A test script calls `node NAME` for each node, `peer A B` to make A
# connect to B, `start NAME`, then asserts with the helpers below; it exits
# through `pass` or `fail MESSAGE`.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LABSYNCD=${LABSYNCD:-$ROOT/build/labsyncd}
LABSYNCCTL=${LABSYNCCTL:-$ROOT/build/labsyncctl}
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/labsync-$TEST_NAME.XXXXXX")
declare -A PID PORT_PUB PORT_SYNC

cleanup() {
	local rc=$?
	for n in "${!PID[@]}"; do
		kill -9 "${PID[$n]}" 2>/dev/null
		wait "${PID[$n]}" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] && [ -z "${KEEP_LOGS:-}" ]; then
		for f in "$T"/*.log; do
			[ -e "$f" ] || continue
			echo "--- $(basename "$f") (last 30 lines)"
			tail -n 30 "$f"
		done
	fi
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL $TEST_NAME: $*"
	exit 1
}

pass() {
	echo "PASS $TEST_NAME"
	exit 0
}

skip() {
	echo "SKIP $TEST_NAME: $*"
	exit 77
}

# A free TCP port on 127.0.0.1 below 32768 (ZeroMQ's own outgoing ports
# use the range above), not handed out before in this test. Callers use
# $(free_port), a subshell, so the ports handed out are kept in a file.
free_port() {
	local p
	while :; do
		p=$(python3 -c '
import random, socket
while True:
    p = random.randint(20000, 32767)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.close(); print(p); break
    except OSError:
        s.close()')
		grep -qx "$p" "$T/.ports" 2>/dev/null && continue
		echo "$p" >>"$T/.ports"
		echo "$p"
		return
	done
}

# With SECURE=1, nodes get CURVE keypairs ($T/keys/NAME.key and .pub) and
# peers each other's public keys; otherwise they run insecure on loopback.
SECURE=${SECURE:-0}

security_lines() {
	if [ "$SECURE" = 1 ]; then
		mkdir -p "$T/keys"
		[ -e "$T/keys/$1.key" ] ||
			"$LABSYNCCTL" keygen "$T/keys/$1" >/dev/null || fail "keygen"
		echo "secret_key_file = $T/keys/$1.key"
	else
		echo "insecure = true"
	fi
}

key_line() {
	[ "$SECURE" = 1 ] || return 0
	[ -e "$T/keys/$1.pub" ] ||
		"$LABSYNCCTL" keygen "$T/keys/$1" >/dev/null || fail "keygen"
	echo "public_key_file = $T/keys/$1.pub"
}

# Tests want quick liveness and full logs; the benchmark sets these
# empty and "info" to run with the daemon's defaults.
NODE_TIMINGS=${NODE_TIMINGS-"heartbeat_interval = 200ms
heartbeat_timeout = 2s
anti_entropy_interval = 5s"}
NODE_LOG_LEVEL=${NODE_LOG_LEVEL:-debug}

# node NAME [ROLE] [EXTRA-SYNC-LINES]: write $T/NAME.conf
node() {
	local name=$1 role=${2:-city} extra=${3:-}
	PORT_PUB[$name]=$(free_port)
	PORT_SYNC[$name]=$(free_port)
	cat >"$T/$name.conf" <<CONF
[node]
id = $name
role = $role
database = $T/$name.db
schema = $ROOT/config/schema.sql
log_level = $NODE_LOG_LEVEL

[listen]
publish = tcp://127.0.0.1:${PORT_PUB[$name]}
sync = tcp://127.0.0.1:${PORT_SYNC[$name]}

[security]
$(security_lines "$name")

[sync]
tables = labs, themes, activities, initiatives, volunteer_offers, observations
local = participants
$NODE_TIMINGS
$extra
CONF
}

# http_node NAME [bare]: give NAME an HTTP API on a free loopback port
# (bare: `listen = PORT`, which must bind 127.0.0.1) with a bearer token
# in a 0600 file; sets HTTP_PORT[NAME], HTTP_TOKEN[NAME] and
# HTTP_URL[NAME] (http://127.0.0.1:PORT).
declare -A HTTP_PORT HTTP_TOKEN HTTP_URL
http_node() {
	local name=$1 host=127.0.0.1:
	[ "${2:-}" = bare ] && host=
	HTTP_PORT[$name]=$(free_port)
	HTTP_URL[$name]=http://127.0.0.1:${HTTP_PORT[$name]}
	HTTP_TOKEN[$name]=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
	(umask 077 && echo "${HTTP_TOKEN[$name]}" >"$T/$name.token")
	printf '\n[http]\nlisten = %s%s\ntoken_file = %s\n' "$host" \
	    "${HTTP_PORT[$name]}" "$T/$name.token" >>"$T/$name.conf"
}

# peer A B [ROLE]: A connects to B (B's section in A's config)
peer() {
	local a=$1 b=$2 role=${3:-city}
	cat >>"$T/$a.conf" <<CONF

[peer:$b]
role = $role
publish = tcp://127.0.0.1:${PORT_PUB[$b]}
sync = tcp://127.0.0.1:${PORT_SYNC[$b]}
$(key_line "$b")
CONF
}

# peer_in A B [ROLE]: B is known to A but only connects in
peer_in() {
	printf '\n[peer:%s]\nrole = %s\n%s\n' "$2" "${3:-city}" \
	    "$(key_line "$2")" >>"$T/$1.conf"
}

# pair A B: two cities that peer with each other, started (the usual
# opening of a test).
pair() {
	node "$1"
	node "$2"
	peer "$1" "$2"
	peer "$2" "$1"
	start "$1"
	start "$2"
}

ctl() {
	local name=$1
	shift
	"$LABSYNCCTL" -c "$T/$name.conf" "$@"
}

# start NAME: run labsyncd, wait until it answers and takes writes.
start() {
	local name=$1 i
	"$LABSYNCD" -c "$T/$name.conf" >>"$T/$name.log" 2>&1 &
	PID[$name]=$!
	for i in $(seq 300); do
		if ! kill -0 "${PID[$name]}" 2>/dev/null; then
			fail "labsyncd $name exited at start-up"
		fi
		case $(ctl "$name" status --json 2>/dev/null) in
		*'"phase":"running"'*) return 0 ;;
		esac
		sleep 0.1
	done
	fail "labsyncd $name not running after 30 s"
}

stop() {
	kill -TERM "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
	unset "PID[$1]"
}

kill9() {
	kill -9 "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
	unset "PID[$1]"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	# `wait_for N WHAT test "$(x)" = y` (or `test -n "$(x)"`) tests a
	# value read once, so it can never change: wait on a function that
	# reads it each time. Only a file test reads anew on each try.
	case "$1" in
	test|\[)
		case "${2-}" in
		-[defprswxLS]) ;;
		*) fail "wait_for '$what' tests a value read once" ;;
		esac ;;
	esac
	deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || fail "timed out ($secs s): $what"
		sleep 0.2
	done
}

same_checksum() {
	local first c
	first=$(ctl "$1" checksum) || return 1
	shift
	for n in "$@"; do
		c=$(ctl "$n" checksum) || return 1
		[ "$c" = "$first" ] || return 1
	done
}

# converge SECONDS NODE...: all nodes end with the same dump.
converge() {
	local secs=$1
	shift
	wait_for "$secs" "nodes $* converge" same_checksum "$@"
}

# sql NAME SQL: run SQL on NAME's database with the sqlite3 shell.
sql() {
	sqlite3 -cmd ".timeout 10000" "$T/$1.db" "$2" ||
	    fail "sqlite3 at $1: $2"
}

rows() {
	ctl "$1" list "$2" | wc -l
}

has_rows() {
	[ "$(rows "$1" "$2")" -eq "$3" ]
}

assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"
}
