#!/usr/bin/env bash
# vs_pg.sh: labsync side by side with PostgreSQL 15 logical replication
# (make bench-vs-pg), the yardstick of DESIGN.md "Speed". As root.
#
# Runs tests/bench/bench.sh, then the same three measurements on two
# private PostgreSQL 15 clusters (PUBLICATION on A, SUBSCRIPTION on B,
# durable defaults: fsync=on, synchronous_commit=on; 127.0.0.1 only;
# initdb in a temp folder, stopped and removed at exit; a system cluster
# is never used or touched), with the same sizes, rows, seeds, writers'
# transaction size, schedule and probe:
#   replication: ROWS rows at A as COPY blocks of WRITE_BATCH rows (one
#                durable transaction each, psql), until B has the last;
#   lag:         LAT_RATE single-row autocommit INSERTs/s for LAT_SECS
#                (bench_pgwriter, one connection, the same fixed schedule
#                as bench_writer); an AFTER INSERT trigger on B (ENABLE
#                ALWAYS, only in this phase) notes clock_timestamp() as
#                the apply worker inserts the row, before its commit:
#                PostgreSQL's lag is taken a little earlier than
#                labsync's, which is when the row is seen committed at B
#                (labsyncd runs no triggers while it applies);
#   catch-up:    B's cluster stopped, CATCHUP_ROWS rows loaded at A, B's
#                cluster started: until B has the last.
# B is probed for the last row every POLL_MS ms, by index, as in bench.sh.
# Prints labsync's and PostgreSQL's figures, then per id style
#   vs_pg_replication  labsync rows/s / PostgreSQL rows/s
#   vs_pg_lag_p99      PostgreSQL p99 / labsync p99
#   vs_pg_catchup      labsync changes/s / PostgreSQL rows/s
# (above 1: labsync is ahead), what bounds the first and the third
#   floor_replication_vs_pg  the same writer without labsync / PostgreSQL
#   floor_catchup_vs_pg      bench.sh's apply model / PostgreSQL
# and both memory footprints: labsync's two
# daemons (sum of their peak RSS), PostgreSQL's two clusters (RSS and PSS
# of every process, the larger of the samples after replication and
# after catch-up; PSS counts shared_buffers once).
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if [ "${TINY:-0}" = 1 ]; then
	: "${ROWS:=2000}" "${CATCHUP_ROWS:=2000}" "${LAT_SECS:=2}"
	: "${IDLE_SECS:=2}" "${CEIL_RUNS:=1}" "${ZMQ_MSGS:=500}"
fi
export ROWS=${ROWS:-200000} CATCHUP_ROWS=${CATCHUP_ROWS:-1000000}
export LAT_SECS=${LAT_SECS:-10} LAT_RATE=${LAT_RATE:-1000}
export IDS=${IDS:-v4 v7} WRITE_BATCH=${WRITE_BATCH:-1000}
export POLL_MS=${POLL_MS:-20}
PGBIN=/usr/lib/postgresql/15/bin
BIN=${BENCH_BIN:-$ROOT/build}

log() { printf '[%(%T)T] %s\n' -1 "$*" >&2; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", ($1) }"; }
[ "$(id -u)" = 0 ] || { echo "vs_pg.sh: run as root (runuser, apt-get)" >&2; exit 1; }

# PostgreSQL 15 and libpq from Debian, if missing. (Debian's postinst may
# create and start its own "main" cluster on 5432; nothing here uses it.)
missing=""
[ -x "$PGBIN/initdb" ] || missing="postgresql-15"
pkg-config --exists libpq 2>/dev/null || missing="$missing libpq-dev"
if [ -n "$missing" ]; then
	log "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y $missing >/dev/null 2>&1 ||
	    { apt-get update >/dev/null && apt-get install -y $missing >/dev/null; }
fi
# (make bench-vs-pg has built the daemon and the other helpers)
make -s -C "$ROOT" build/bench_pgwriter >&2
PGWRITER=$ROOT/build/bench_pgwriter

TMP=$(mktemp -d "${TMPDIR:-/tmp}/labsync-vs-pg.XXXXXX")
chown postgres: "$TMP"	# logs and sockets of both clusters live here
cleanup() {
	local rc=$? n
	cd /
	if [ "$rc" -ne 0 ]; then tail -n 20 "$TMP"/*.log >&2 2>/dev/null || true; fi
	for n in A B; do	# pg_ctl stops the postmaster of that data dir only
		[ -f "$TMP/$n/postmaster.pid" ] &&
		    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/$n" -m immediate \
		    -w stop >/dev/null 2>&1 || true
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- labsync first, the same sizes ---------------------------------------
log "labsync: tests/bench/bench.sh"
"$HERE/bench.sh" >"$TMP/labsync.out"
declare -A LS
while read -r name value _; do LS[$name]=$value; done <"$TMP/labsync.out"

# --- two private clusters -------------------------------------------------
read -r PORT_A PORT_B < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
for n in A B; do
	port=PORT_$n
	install -d -o postgres -m 700 "$TMP/$n"
	runuser -u postgres -- "$PGBIN/initdb" -D "$TMP/$n" -U postgres \
	    --auth=trust -E UTF8 --locale=C >/dev/null
	cat >>"$TMP/$n/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = ${!port}
unix_socket_directories = '$TMP'
wal_level = logical
EOF
done
pg_ctl() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/$1" "${@:2}" >/dev/null; }
pg_start() { pg_ctl "$1" -l "$TMP/$1.log" -w start; }
pg_stop() { pg_ctl "$1" -m fast -w stop; }
pg_start A
pg_start B
CONN_A="host=127.0.0.1 port=$PORT_A user=postgres dbname=postgres"
CONN_B="host=127.0.0.1 port=$PORT_B user=postgres dbname=postgres"
psqlA() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$CONN_A" "$@"; }
psqlB() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$CONN_B" "$@"; }
log "PostgreSQL: A on 127.0.0.1:$PORT_A, B on 127.0.0.1:$PORT_B" \
    "($("$PGBIN/postgres" -V))"

# The same table as config/schema.sql's activities.
DDL="CREATE TABLE activities(id TEXT PRIMARY KEY, lab_id TEXT, theme_id TEXT,
    kind TEXT, title TEXT, starts_at TEXT, ends_at TEXT, location TEXT,
    participants INTEGER, stakeholders TEXT, summary TEXT, status TEXT);"
psqlA -c "$DDL" -c "CREATE PUBLICATION pub FOR TABLE activities"
psqlB <<SQL
$DDL
CREATE TABLE lag_arrival(id TEXT, arrived_us BIGINT);
CREATE FUNCTION note_arrival() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO public.lag_arrival VALUES (NEW.id,
      (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
  RETURN NULL;
END \$\$;
CREATE TRIGGER arrival AFTER INSERT ON activities FOR EACH ROW
    EXECUTE FUNCTION note_arrival();
ALTER TABLE activities DISABLE TRIGGER arrival;
CREATE SUBSCRIPTION sub CONNECTION '$CONN_A' PUBLICATION pub
    WITH (copy_data = false);
SQL
slot_active() {
	[ "$(psqlA -c "SELECT active FROM pg_replication_slots
	    WHERE slot_name = 'sub'")" = t ]
}
for _ in $(seq 600); do slot_active && break; sleep 0.05; done
slot_active || { echo "vs_pg.sh: subscription did not start" >&2; exit 1; }

copy_file() {	# copy_file STYLE SEED N FILE: the rows as COPY blocks
	"$BIN/bench_writer" tsv "$1" "$2" "$3" | awk -v b="$WRITE_BATCH" '
	    (NR - 1) % b == 0 { if (NR > 1) print "\\."
	        print "COPY activities(id, location, title, kind, " \
	            "starts_at, participants, summary) FROM STDIN;" }
	    { print }
	    END { print "\\." }' >"$4"
}
pg_wait() {	# pg_wait ID TIMEOUT: prints W_SEEN_US=...
	"$PGWRITER" wait -t "$2" -i "$POLL_MS" "$CONN_B" "$1"
}
pg_mem() {	# pg_mem: "RSS PSS" in MiB, every process of both clusters
	local rss=0 pss=0 n pm p k
	for n in A B; do
		pm=$(head -1 "$TMP/$n/postmaster.pid")
		for p in $pm $(pgrep -P "$pm"); do
			k=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || true
			rss=$((rss + ${k:-0}))
			k=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || true
			pss=$((pss + ${k:-0}))
		done
	done
	echo "$(calc "$rss / 1024" 1) $(calc "$pss / 1024" 1)"
}
max() { calc "$1 > $2 ? $1 : $2" 1; }

declare -A PG
for s in $IDS; do
	psqlA -c "TRUNCATE activities"	# replicates
	for _ in $(seq 1200); do
		[ "$(psqlB -c "SELECT count(*) FROM activities")" = 0 ] && break
		sleep 0.05
	done
	psqlA -c CHECKPOINT
	psqlB -c CHECKPOINT

	# replication
	copy_file "$s" 20 "$ROWS" "$TMP/repl.sql"
	last=$("$BIN/bench_writer" id "$s" 20 $((ROWS - 1)))
	log "PostgreSQL replication ($s): $ROWS rows at A, until B has $last"
	pg_wait "$last" 600 >"$TMP/seen" &
	waiter=$!
	t0=${EPOCHREALTIME/./}
	psqlA -f "$TMP/repl.sql"
	t1=${EPOCHREALTIME/./}
	wait "$waiter"
	eval "$(cat "$TMP/seen")"
	[ "$(psqlB -c "SELECT count(*) FROM activities")" = "$ROWS" ] ||
	    { echo "vs_pg.sh: B does not have $ROWS rows" >&2; exit 1; }
	PG[pg_write_rows_per_s_$s]=$(calc "$ROWS * 1e6 / ($t1 - $t0)")
	PG[pg_replication_rows_per_s_$s]=$(calc "$ROWS * 1e6 / ($W_SEEN_US - $t0)")
	read -r rss pss < <(pg_mem)

	# lag
	psqlB -c "TRUNCATE lag_arrival" \
	    -c "ALTER TABLE activities ENABLE ALWAYS TRIGGER arrival"
	log "PostgreSQL lag ($s): $LAT_RATE single-row commits/s at A for $LAT_SECS s"
	eval "$("$PGWRITER" steady "$CONN_A" "$s" 30 "$LAT_RATE" "$LAT_SECS")"
	pg_wait "$W_LAST_ID" 60 >/dev/null
	read -r n p50 p99 pmax < <(psqlB -F ' ' -c "
	    SELECT count(*), percentile_cont(0.50) WITHIN GROUP (ORDER BY ms),
	        percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
	    FROM (SELECT (l.arrived_us - a.starts_at::bigint) / 1000.0 AS ms
	        FROM lag_arrival l JOIN activities a USING (id)) lag")
	psqlB -c "ALTER TABLE activities DISABLE TRIGGER arrival"
	[ "$n" = "$W_ROWS" ] ||
	    { echo "vs_pg.sh: lag: $W_ROWS written, $n arrived" >&2; exit 1; }
	log "PostgreSQL lag ($s): $n rows; the writer slipped at most" \
	    "$((W_LATE_MAX_US / 1000)) ms behind its schedule"
	PG[pg_lag_p50_ms_$s]=$(calc "$p50" 2)
	PG[pg_lag_p99_ms_$s]=$(calc "$p99" 2)
	PG[pg_lag_max_ms_$s]=$(calc "$pmax" 2)

	# catch-up: B's cluster down while A takes CATCHUP_ROWS
	copy_file "$s" 40 "$CATCHUP_ROWS" "$TMP/catchup.sql"
	last=$("$BIN/bench_writer" id "$s" 40 $((CATCHUP_ROWS - 1)))
	pg_stop B
	log "PostgreSQL catch-up ($s): B stopped; $CATCHUP_ROWS rows at A"
	t0=${EPOCHREALTIME/./}
	psqlA -f "$TMP/catchup.sql"
	t1=${EPOCHREALTIME/./}
	PG[pg_norepl_write_rows_per_s_$s]=$(calc "$CATCHUP_ROWS * 1e6 / ($t1 - $t0)")
	log "PostgreSQL catch-up ($s): starting B"
	t0=${EPOCHREALTIME/./}
	pg_start B
	eval "$(pg_wait "$last" 1800)"
	PG[pg_catchup_seconds_$s]=$(calc "($W_SEEN_US - $t0) / 1e6" 3)
	PG[pg_catchup_rows_per_s_$s]=$(calc "$CATCHUP_ROWS * 1e6 / ($W_SEEN_US - $t0)")
	read -r rss2 pss2 < <(pg_mem)
	PG[pg_rss_mib_$s]=$(max "$rss" "$rss2")
	PG[pg_pss_mib_$s]=$(max "$pss" "$pss2")
	rm -f "$TMP/repl.sql" "$TMP/catchup.sql"
done

# --- side by side --------------------------------------------------------
vs() {	# vs NAME RATIO: print the figure; the target (>= 1) on stderr
	echo "$1 $2 x"
	if awk "BEGIN { exit !($2 >= 1) }"; then
		log "target $1 >= 1: $2, met"
	else
		log "target $1 >= 1: $2, missed"
	fi
}
cat "$TMP/labsync.out"
for s in $IDS; do
	for k in pg_write_rows_per_s pg_replication_rows_per_s \
	    pg_norepl_write_rows_per_s pg_catchup_rows_per_s; do
		echo "${k}_$s ${PG[${k}_$s]} rows/s"
	done
	for k in pg_lag_p50_ms pg_lag_p99_ms pg_lag_max_ms; do
		echo "${k}_$s ${PG[${k}_$s]} ms"
	done
	echo "pg_catchup_seconds_$s ${PG[pg_catchup_seconds_$s]} s"
	echo "pg_rss_mib_$s ${PG[pg_rss_mib_$s]} MiB"
	echo "pg_pss_mib_$s ${PG[pg_pss_mib_$s]} MiB"
	repl=$(calc "${LS[rss_peak_repl_a_$s]} + ${LS[rss_peak_repl_b_$s]}" 1)
	catch=$(calc "${LS[rss_peak_catchup_a_$s]} + ${LS[rss_peak_catchup_b_$s]}" 1)
	echo "labsync_rss_mib_$s $(max "$repl" "$catch") MiB"
	ls=${LS[replication_rows_per_s_$s]} pg=${PG[pg_replication_rows_per_s_$s]}
	vs "vs_pg_replication_$s" "$(calc "$ls / $pg" 3)"
	vs "vs_pg_lag_p99_$s" "$(calc "${PG[pg_lag_p99_ms_$s]} / ${LS[lat_p99_ms_$s]}" 3)"
	ls=${LS[catchup_changes_per_s_$s]} pg=${PG[pg_catchup_rows_per_s_$s]}
	vs "vs_pg_catchup_$s" "$(calc "$ls / $pg" 3)"
	# where no labsync daemon gets, whatever it does (RESULTS.md,
	# "Targets"): the application writing without labsync, and the SQL
	# of applying alone (bench.sh's apply model)
	echo "floor_replication_vs_pg_$s $(calc \
	    "${LS[writer_raw_rows_per_s_$s]} / ${PG[pg_replication_rows_per_s_$s]}" 3) x"
	echo "floor_catchup_vs_pg_$s $(calc \
	    "${LS[sqlite_apply_model_$s]} / $pg" 3) x"
done
log "done; PostgreSQL clusters removed"
