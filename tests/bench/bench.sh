#!/usr/bin/env bash
# bench.sh: labsync's benchmark (make bench). One run, one disk, the same
# rows everywhere; every labsync figure comes with the ceiling it is
# divided by, measured in the same run.
#
#   tests/bench/bench.sh            full size (about 10 minutes here)
#   TINY=1 tests/bench/bench.sh     a few seconds (make check)
#
# Figures go to stdout, one per line, "name value unit"; progress and the
# method go to stderr. Per id style (IDS: v4 random, v7 time-ordered),
# figures end in _v4 or _v7:
#   1. ceilings: raw SQLite insert and upsert with the daemon's settings,
#      with SQLite's defaults, and raw ZeroMQ with CURVE (bench_sqlite,
#      bench_zmq); and the apply model: what a catching-up node writes per
#      change (the row, its clocks, its log entry) in SQL alone, on the
#      tables of a database labsyncctl made, CATCHUP_ROWS rows;
#   2. capture: ROWS rows written by an application (bench_writer, its own
#      SQLite connection, WRITE_BATCH rows per transaction) through the
#      capture triggers of a lone node (which log and stamp each write in
#      the writer's transaction), until the daemon has read them all; and
#      the same writer into the same tables without labsync, for what
#      capturing costs the application;
#   3. replication: two nodes with CURVE, ROWS rows written at A as fast
#      as A takes them, until B has applied the last;
#   4. latency: one row per transaction at LAT_RATE/s for LAT_SECS at A,
#      each row carrying the writer's clock just before its INSERT; B's
#      database is watched (PRAGMA data_version every WATCH_US us, then
#      the new rows by rowid): latency = first seen at B - written at A,
#      so it includes A's commit, and B's commit, and up to WATCH_US;
#   5. catch-up: B stopped, CATCHUP_ROWS rows written at A, B started,
#      until B has the last;
#   6. memory: peak RSS of each daemon in 3 and 5 (next to its page
#      cache, CACHE_MIB), A's RSS growth over 5 (the same process before
#      and after the CATCHUP_ROWS changes; includes filling its page
#      cache), B's RSS once it has applied them (a fresh process); and
#      the CPU an idle pair uses in IDLE_SECS;
#   7. storage and bootstrap: BOOT_ROWS rows written by the writer into
#      a plain SQLite file of the same tables (its insert rate: the
#      baseline), and into a lone node S, whose log is then compacted
#      away as compaction leaves it (every entry dropped, each origin's
#      floor at its sequence, S stopped); live pages per row of S over
#      the plain file's (storage_overhead_ratio); then a fresh node F
#      joins S and bootstraps from a snapshot, timed from starting F
#      until it has the last row (bootstrap_rows_per_s).
# Daemons run on free loopback ports in a temp folder (tests/integration/
# lib.sh, SECURE=1), every process is stopped and the folder removed at
# exit. Set LABSYNCD/LABSYNCCTL to measure other binaries. PERF=DIR
# records `perf record --call-graph dwarf` of the daemons in phases 2, 3
# and 5 into DIR/PHASE-NODE.data (profiling slows what it watches: the
# figures of such a run show where time goes; they are not results).
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "${TINY:-0}" = 1 ]; then
	: "${ROWS:=2000}" "${CATCHUP_ROWS:=2000}" "${LAT_SECS:=2}"
	: "${IDLE_SECS:=2}" "${CEIL_RUNS:=1}" "${ZMQ_MSGS:=500}"
	: "${BOOT_ROWS:=2000}"
fi
ROWS=${ROWS:-200000}		# rows in 1 (ceilings), 2 and 3
CATCHUP_ROWS=${CATCHUP_ROWS:-1000000}	# rows written while B is down (5)
LAT_SECS=${LAT_SECS:-10}	# latency run: this long ...
LAT_RATE=${LAT_RATE:-1000}	# ... at this many single-row commits/s
IDLE_SECS=${IDLE_SECS:-30}	# idle pair watched this long
BOOT_ROWS=${BOOT_ROWS:-1000000}	# rows of the storage and bootstrap runs (7)
IDS=${IDS:-v4 v7}		# id styles, each with fresh nodes
CEIL_RUNS=${CEIL_RUNS:-3}	# SQLite ceilings: median of this many runs
ZMQ_MSGS=${ZMQ_MSGS:-20000}	# 20 KB messages for the ZeroMQ ceiling
WRITE_BATCH=${WRITE_BATCH:-1000}	# rows per transaction of the bulk writer
CACHE_MIB=${CACHE_MIB:-64}	# page cache: daemons, writers and ceilings
POLL_MS=${POLL_MS:-20}		# how often B is probed for the last row
WATCH_US=${WATCH_US:-250}	# how often B is watched in the latency run
PERF=${PERF:-}			# a folder: profile the daemons (see above)

SECURE=1
. "$HERE/../integration/lib.sh"
BIN=${BENCH_BIN:-$ROOT/build}
for b in bench_sqlite bench_writer bench_zmq; do
	[ -x "$BIN/$b" ] || fail "$BIN/$b missing: run make bench-bins"
done
[ -x "$LABSYNCD" ] || fail "$LABSYNCD missing: run make"
command -v sqlite3 >/dev/null || fail "sqlite3 (the shell) is needed"

BG=""	# background probes still running, stopped at exit
bench_cleanup() {
	local rc=$? p
	for p in $BG; do kill "$p" 2>/dev/null; done
	(exit "$rc")
	cleanup
}
trap bench_cleanup EXIT

log() { printf '[%(%T)T] %s\n' -1 "$*" >&2; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", ($1) }"; }
rate() { calc "$1 * 1e6 / ($3 - $2)"; }	# rate N T0_US T1_US: per second
declare -A FIG
fig() {		# fig NAME VALUE UNIT: print a figure and keep it
	FIG[$1]=$2
	echo "$1 $2 $3"
}
now_us() { echo "${EPOCHREALTIME/./}"; }
sql() {		# sql NODE SQL: one statement through the sqlite3 shell
	sqlite3 -batch "$T/$1.db" ".timeout 30000" "$2" || fail "sqlite3 $1: $2"
}
writer() {	# writer MODE ARGS...: run bench_writer, take its assignments
	local out
	out=$("$BIN/bench_writer" "$@") || fail "bench_writer $1 failed"
	eval "$out"
}

# An index probe for one row, each poll its own read transaction.
PROBE_ROW="SELECT EXISTS (SELECT 1 FROM activities WHERE id = ?1)"

probe() {	# probe NODE TIMEOUT SQL [ARG]: sets SEEN_US
	local out
	out=$("$BIN/bench_writer" wait -t "$2" -i "$POLL_MS" "$T/$1.db" \
	    "$3" ${4:+"$4"}) || fail "node $1: not there after $2 s: $3"
	eval "$out"
	SEEN_US=$W_SEEN_US
}

# taken NODE TIMEOUT: wait until the daemon has read every local change
# the capture triggers logged (status: pending 0); sets SEEN_US.
taken() {
	local end=$(($(now_us) + $2 * 1000000)) nap
	nap=$(awk "BEGIN { print $POLL_MS / 1000 }")
	until [ "$(ctl "$1" status --json | jq -r .pending)" = 0 ]; do
		[ "$(now_us)" -lt "$end" ] ||
		    fail "node $1: local changes not taken after $2 s"
		sleep "$nap"
	done
	SEEN_US=$(now_us)
}

bench_node() {	# bench_node NAME: a city with the daemon's defaults
	NODE_TIMINGS="" NODE_LOG_LEVEL=info node "$1" city \
	    "cache_size = ${CACHE_MIB}MiB"
}

# start_all NAME...: start the daemons together (a city waits for the
# peers it connects to, or for heartbeat_timeout), then wait until each
# takes writes.
start_all() {
	local n i
	for n in "$@"; do
		"$LABSYNCD" -c "$T/$n.conf" >>"$T/$n.log" 2>&1 &
		PID[$n]=$!
	done
	for n in "$@"; do
		for i in $(seq 600); do
			kill -0 "${PID[$n]}" 2>/dev/null ||
			    fail "labsyncd $n exited at start-up"
			case $(ctl "$n" status --json 2>/dev/null) in
			*'"phase":"running"'*) continue 2 ;;
			esac
			sleep 0.05
		done
		fail "labsyncd $n not running after 30 s"
	done
}

# perf_on PHASE NODE...: profile these daemons until perf_off.
PERF_PIDS=""
perf_on() {
	local phase=$1 n
	[ -n "$PERF" ] || return 0
	shift
	mkdir -p "$PERF"
	for n in "$@"; do
		perf record -q -F 499 --call-graph dwarf,16384 \
		    -o "$PERF/$phase-$n.data" -p "${PID[$n]}" \
		    >/dev/null 2>&1 &
		PERF_PIDS="$PERF_PIDS $!"
		BG="$BG $!"
	done
	sleep 0.5
}
perf_off() {
	local p
	for p in $PERF_PIDS; do kill -INT "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PERF_PIDS=""
}

# Memory and CPU of a daemon, from /proc.
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/${PID[$1]}/status"; }
rss_mib() { calc "$(status_kb "$1" VmRSS) / 1024" 1; }
hwm_mib() { calc "$(status_kb "$1" VmHWM) / 1024" 1; }
hwm_reset() { echo 5 >"/proc/${PID[$1]}/clear_refs" 2>/dev/null ||
	log "cannot reset the peak RSS of $1: peak is since start"; }
cpu_s() {	# CPU seconds of all threads (the scheduler's ns count)
	[ "$1" = writer ] && { echo "${W_CPU_S:-0}"; return; }
	cat /proc/"${PID[$1]}"/task/*/sched 2>/dev/null | awk '
	    $1 == "se.sum_exec_runtime" { ms += $3; n++ }
	    END { if (n) printf "%.4f\n", ms / 1000; else exit 1 }' ||
	awk '{ printf "%.4f\n", ($14 + $15) / 100 }' "/proc/${PID[$1]}/stat"
}

# Bytes a daemon has written with write(2) and pwrite(2) (WAL, database).
wchar() { awk '$1 == "wchar:" { print $2 }' "/proc/${PID[$1]}/io" 2>/dev/null ||
	echo 0; }
declare -A WCHAR0
wchar_mark() { local n; for n in "$@"; do WCHAR0[$n]=$(wchar "$n"); done; }

# cpu_log WHAT T0_US T1_US ROWS NODE CPU0 [NODE CPU0...]: where the time
# went: each daemon's CPU seconds, and the bytes it wrote per row (since
# its wchar_mark).
cpu_log() {
	local what=$1 wall rows=$4 msg="" c
	wall=$(calc "($3 - $2) / 1e6" 3)
	shift 4
	while [ $# -ge 2 ]; do
		c=$(calc "$(cpu_s "$1") - $2" 2)
		msg="$msg, $1 $c s CPU ($(calc "100 * $c / $wall")% of a core)"
		[ -n "${WCHAR0[$1]:-}" ] && msg="$msg wrote $(calc \
		    "($(wchar "$1") - ${WCHAR0[$1]}) / $rows") B/row"
		shift 2
	done
	log "$what: ${wall} s$msg"
}

log "labsync bench: ROWS=$ROWS CATCHUP_ROWS=$CATCHUP_ROWS LAT_RATE=$LAT_RATE" \
    "LAT_SECS=$LAT_SECS IDLE_SECS=$IDLE_SECS IDS='$IDS' WRITE_BATCH=$WRITE_BATCH" \
    "CACHE_MIB=$CACHE_MIB in $T"
log "labsyncd: $LABSYNCD (work tree: $(git -C "$ROOT" describe --always \
    --dirty 2>/dev/null || echo '?'))"
log "B is polled every $POLL_MS ms with an index probe for the last row" \
    "written ($PROBE_ROW), each poll its own read transaction"
log "throughput is timed from the start of A's first write transaction"

# --- 1. ceilings -------------------------------------------------------
mkdir -p "$T/ceiling"
# the apply model's tables, as this labsync makes them
bench_node model
ctl model init >/dev/null || fail "labsyncctl init failed"
sql model ".schema labsync_log" >"$T/model.sql"
sql model ".schema labsync_rowid" >>"$T/model.sql"
rm -f "$T"/model.db*
for s in $IDS; do
	log "ceilings: raw SQLite, $ROWS rows ($CATCHUP_ROWS for the upsert" \
	    "and the apply model), $s ids"
	while read -r name value unit; do
		fig "$name" "$value" "$unit"
	done < <("$BIN/bench_sqlite" -r "$CEIL_RUNS" -c "$CACHE_MIB" \
	    -u "$CATCHUP_ROWS" -m "$T/model.sql" "$ROOT/config/schema.sql" \
	    "$T/ceiling" "$s" "$ROWS" || echo "bench_sqlite failed")
	[ -n "${FIG[sqlite_insert_tuned_$s]:-}" ] &&
	    [ -n "${FIG[sqlite_apply_model_$s]:-}" ] || fail "bench_sqlite failed"
done
log "ceiling: raw ZeroMQ, $ZMQ_MSGS messages of 20 KB, CURVE, loopback TCP"
while read -r name value unit; do
	fig "$name" "$value" "$unit"
done < <("$BIN/bench_zmq" -n "$ZMQ_MSGS" -s 20000 || echo "bench_zmq failed")
[ -n "${FIG[zmq_curve_mb_per_s]:-}" ] || fail "bench_zmq failed"
fig page_cache_mib "$CACHE_MIB" MiB

for s in $IDS; do
	tuned=${FIG[sqlite_insert_tuned_$s]}
	upsert=${FIG[sqlite_upsert_tuned_$s]}

	# --- 2. capture: a lone node --------------------------------------
	cap=cap$s
	bench_node "$cap"
	start_all "$cap"
	perf_on capture "$cap"
	c0=$(cpu_s "$cap")
	wchar_mark "$cap"
	log "capture ($s): $ROWS rows into $cap's activities," \
	    "$WRITE_BATCH per transaction"
	writer bulk -b "$WRITE_BATCH" -c "$CACHE_MIB" "$T/$cap.db" "$s" 10 "$ROWS"
	taken "$cap" 600
	perf_off
	cpu_log "capture ($s)" "$W_START_US" "$SEEN_US" "$ROWS" "$cap" "$c0" writer 0
	[ "$(sql "$cap" "SELECT seq FROM labsync_state")" = "$ROWS" ] ||
	    fail "$cap did not log $ROWS changes"
	fig "capture_write_rows_per_s_$s" "$(rate "$ROWS" "$W_START_US" "$W_END_US")" rows/s
	fig "capture_rows_per_s_$s" "$(rate "$ROWS" "$W_START_US" "$SEEN_US")" rows/s
	fig "capture_ratio_$s" "$(calc "${FIG[capture_rows_per_s_$s]} / $tuned" 3)" x
	stop "$cap"

	# the same writer into the same tables without labsync: what
	# capturing costs the application, measured in the same run
	raw=raw$s
	sqlite3 -batch "$T/$raw.db" "PRAGMA journal_mode = WAL" \
	    ".read $ROOT/config/schema.sql" >/dev/null ||
	    fail "sqlite3: cannot create $T/$raw.db from config/schema.sql"
	log "raw writer ($s): $ROWS rows into $raw.db, the same tables" \
	    "without labsync"
	writer bulk -b "$WRITE_BATCH" -c "$CACHE_MIB" "$T/$raw.db" "$s" 10 "$ROWS"
	log "raw writer ($s): $(calc "($W_END_US - $W_START_US) / 1e6" 3) s," \
	    "writer $W_CPU_S s CPU (rows made first, counted)"
	fig "writer_raw_rows_per_s_$s" "$(rate "$ROWS" "$W_START_US" "$W_END_US")" rows/s
	fig "capture_vs_raw_writer_$s" "$(calc "${FIG[capture_write_rows_per_s_$s]} \
	    / ${FIG[writer_raw_rows_per_s_$s]}" 3)" x
	rm -f "$T/$raw.db" "$T/$raw.db-wal" "$T/$raw.db-shm"

	# --- 3. replication: A -> B ---------------------------------------
	a=a$s b=b$s
	bench_node "$a"
	bench_node "$b"
	peer "$a" "$b"
	peer "$b" "$a"
	start_all "$a" "$b"
	hwm_reset "$a"
	hwm_reset "$b"
	perf_on replication "$a" "$b"
	ca=$(cpu_s "$a") cb=$(cpu_s "$b")
	wchar_mark "$a" "$b"
	last=$("$BIN/bench_writer" id "$s" 20 $((ROWS - 1))) || fail "bench_writer id"
	log "replication ($s): $ROWS rows at $a, until $b has $last"
	"$BIN/bench_writer" wait -t 600 -i "$POLL_MS" "$T/$b.db" "$PROBE_ROW" \
	    "$last" >"$T/seen" &
	waiter=$!
	BG="$BG $waiter"
	writer bulk -b "$WRITE_BATCH" -c "$CACHE_MIB" "$T/$a.db" "$s" 20 "$ROWS"
	wait "$waiter" || fail "$b did not get $last within 600 s"
	eval "$(cat "$T/seen")"
	perf_off
	cpu_log "replication ($s)" "$W_START_US" "$W_SEEN_US" "$ROWS" \
	    "$a" "$ca" "$b" "$cb" writer 0
	[ "$(sql "$b" "SELECT count(*) FROM activities")" = "$ROWS" ] ||
	    fail "$b does not have exactly $ROWS rows"
	fig "replication_write_rows_per_s_$s" \
	    "$(rate "$ROWS" "$W_START_US" "$W_END_US")" rows/s
	fig "replication_rows_per_s_$s" \
	    "$(rate "$ROWS" "$W_START_US" "$W_SEEN_US")" rows/s
	fig "replication_ratio_$s" "$(calc "${FIG[replication_rows_per_s_$s]} / $tuned" 3)" x
	fig "rss_peak_repl_a_$s" "$(hwm_mib "$a")" MiB
	fig "rss_peak_repl_b_$s" "$(hwm_mib "$b")" MiB

	# --- 4. latency: a steady writer at A, a watcher at B ---------------
	nlat=$(awk "BEGIN { print int($LAT_RATE * $LAT_SECS) }")
	from=$(sql "$b" "SELECT coalesce(max(rowid), 0) FROM activities")
	log "latency ($s): $LAT_RATE single-row commits/s at $a for $LAT_SECS s;" \
	    "$b watched for them every ${WATCH_US} us (PRAGMA data_version)"
	rm -f "$T/watching"
	"$BIN/bench_writer" watch -t $((LAT_SECS + 120)) -i "$WATCH_US" \
	    -r "$T/watching" "$T/$b.db" "$from" "$nlat" >"$T/lat" &
	watcher=$!
	BG="$BG $watcher"
	# the writer starts once the watcher looks: its own start-up is not
	# latency (it took up to 0.135 s after a bulk phase)
	for i in $(seq 100); do
		[ -e "$T/watching" ] && break
		kill -0 "$watcher" 2>/dev/null || break
		sleep 0.05
	done
	[ -e "$T/watching" ] || fail "latency: the watcher at $b did not start"
	writer steady -c "$CACHE_MIB" "$T/$a.db" "$s" 30 "$LAT_RATE" "$LAT_SECS"
	[ "$W_ROWS" = "$nlat" ] || fail "latency: $W_ROWS rows written, not $nlat"
	wait "$watcher" || fail "latency: $b did not see all $nlat rows"
	eval "$(cat "$T/lat")"
	log "latency ($s): $L_N rows; the writer slipped at most" \
	    "$((W_LATE_MAX_US / 1000)) ms behind its schedule; the watcher" \
	    "used $W_CPU_S s of CPU"
	fig "lat_p50_ms_$s" "$L_P50_MS" ms
	fig "lat_p99_ms_$s" "$L_P99_MS" ms
	fig "lat_max_ms_$s" "$L_MAX_MS" ms

	# --- 5. catch-up: B down while A takes CATCHUP_ROWS ---------------
	stop "$b"
	sleep 0.5
	rss_a_before=$(rss_mib "$a")
	hwm_reset "$a"
	log "catch-up ($s): $b stopped; $CATCHUP_ROWS rows at $a"
	writer bulk -b "$WRITE_BATCH" -c "$CACHE_MIB" "$T/$a.db" "$s" 40 "$CATCHUP_ROWS"
	taken "$a" 600
	log "catch-up ($s): the writer used $W_CPU_S s of CPU for $CATCHUP_ROWS rows"
	fig "norepl_write_rows_per_s_$s" \
	    "$(rate "$CATCHUP_ROWS" "$W_START_US" "$W_END_US")" rows/s
	log "catch-up ($s): $a logged them all; starting $b"
	t0=$(now_us)
	"$LABSYNCD" -c "$T/$b.conf" >>"$T/$b.log" 2>&1 &
	PID[$b]=$!
	perf_on catchup "$a" "$b"
	ca=$(cpu_s "$a")
	wchar_mark "$a"
	WCHAR0[$b]=0
	probe "$b" 1800 "$PROBE_ROW" "$W_LAST_ID"
	perf_off
	cpu_log "catch-up ($s)" "$t0" "$SEEN_US" "$CATCHUP_ROWS" "$a" "$ca" "$b" 0
	n_a=$(sql "$a" "SELECT count(*) FROM activities")
	n_b=$(sql "$b" "SELECT count(*) FROM activities")
	[ "$n_a" = "$n_b" ] || fail "catch-up: $a has $n_a rows, $b has $n_b"
	secs=$(calc "($SEEN_US - $t0) / 1e6" 3)
	fig "catchup_seconds_$s" "$secs" s
	fig "catchup_changes_per_s_$s" "$(calc "$CATCHUP_ROWS / $secs")" changes/s
	fig "catchup_ratio_$s" "$(calc "${FIG[catchup_changes_per_s_$s]} / $upsert" 3)" x
	fig "catchup_vs_apply_model_$s" "$(calc \
	    "${FIG[catchup_changes_per_s_$s]} / ${FIG[sqlite_apply_model_$s]}" 3)" x
	fig "rss_peak_catchup_a_$s" "$(hwm_mib "$a")" MiB
	fig "rss_peak_catchup_b_$s" "$(hwm_mib "$b")" MiB
	sleep 1
	fig "rss_growth_1m_a_$s" "$(calc "$(rss_mib "$a") - $rss_a_before" 1)" MiB
	fig "rss_after_1m_b_$s" "$(rss_mib "$b")" MiB
	max=0
	for k in repl_a repl_b catchup_a catchup_b; do
		max=$(calc "${FIG[rss_peak_${k}_$s]} > $max ? ${FIG[rss_peak_${k}_$s]} : $max" 1)
	done
	fig "rss_peak_over_cache_mib_$s" "$(calc "$max - $CACHE_MIB" 1)" MiB

	# --- 6. idle: the last pair, once it has nothing to do -------------
	if [ "$s" = "${IDS##* }" ]; then
		sleep 2
		ca=$(cpu_s "$a") cb=$(cpu_s "$b")
		log "idle: watching $a and $b for $IDLE_SECS s"
		sleep "$IDLE_SECS"
		ca=$(calc "$(cpu_s "$a") - $ca" 4) cb=$(calc "$(cpu_s "$b") - $cb" 4)
		log "idle: $a used $ca s, $b used $cb s of CPU"
		fig idle_cpu_s "$(calc "$ca + $cb" 3)" "s/${IDLE_SECS}s"
	fi
	stop "$a"
	stop "$b"
	rm -f "$T"/"$cap".db* "$T"/"$a".db* "$T"/"$b".db*

	# --- 7. storage after compaction, and bootstrap from a snapshot ----
	plain=plain$s src=src$s dst=dst$s
	sqlite3 -batch "$T/$plain.db" "PRAGMA journal_mode = WAL" \
	    ".read $ROOT/config/schema.sql" >/dev/null ||
	    fail "sqlite3: cannot create $T/$plain.db from config/schema.sql"
	log "storage ($s): $BOOT_ROWS rows into $plain.db, the same tables" \
	    "without labsync"
	writer bulk -b "$WRITE_BATCH" -c "$CACHE_MIB" "$T/$plain.db" "$s" 50 \
	    "$BOOT_ROWS"
	fig "bootstrap_baseline_rows_per_s_$s" \
	    "$(rate "$BOOT_ROWS" "$W_START_US" "$W_END_US")" rows/s
	bench_node "$src"
	bench_node "$dst"
	peer "$dst" "$src"
	peer "$src" "$dst"
	# S alone first: F is not started yet, so S waits heartbeat_timeout
	start_all "$src"
	log "storage ($s): the same $BOOT_ROWS rows into node $src"
	writer bulk -b "$WRITE_BATCH" -c "$CACHE_MIB" "$T/$src.db" "$s" 50 \
	    "$BOOT_ROWS"
	last=$W_LAST_ID
	taken "$src" 600
	stop "$src"
	sql "$src" "UPDATE labsync_origin SET floor = CASE id WHEN
	    (SELECT self FROM labsync_state) THEN max(seq,
	    (SELECT seq FROM labsync_state)) ELSE seq END;
	    DELETE FROM labsync_log;"
	for n in "$plain" "$src"; do
		sql "$n" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
		live=$(sql "$n" "SELECT (p.page_count - f.freelist_count) *
		    s.page_size FROM pragma_page_count AS p,
		    pragma_freelist_count AS f, pragma_page_size AS s")
		fig "storage_bytes_per_row_${n%$s}_$s" \
		    "$(calc "$live / $BOOT_ROWS" 1)" B/row
	done
	fig "storage_overhead_ratio_$s" "$(calc \
	    "${FIG[storage_bytes_per_row_src_$s]} / \
	    ${FIG[storage_bytes_per_row_plain_$s]}" 3)" x
	log "storage ($s): where $src's pages go: $(sqlite3 -batch \
	    "$T/$src.db" "SELECT group_concat(name || ' ' || n, ', ') FROM
	    (SELECT name, sum(pgsize) / 1024 || ' KiB' AS n FROM dbstat
	    GROUP BY name ORDER BY sum(pgsize) DESC LIMIT 4)" 2>/dev/null ||
	    echo '(no dbstat in this sqlite3)')"
	rm -f "$T/$plain.db" "$T/$plain.db-wal" "$T/$plain.db-shm"
	start_all "$src"
	log "bootstrap ($s): $dst starts empty; $src's log holds none of" \
	    "its $BOOT_ROWS rows"
	t0=$(now_us)
	"$LABSYNCD" -c "$T/$dst.conf" >>"$T/$dst.log" 2>&1 &
	PID[$dst]=$!
	hwm_reset "$src"
	cs=$(cpu_s "$src")
	( sleep 2; log "bootstrap ($s): after 2 s, $dst's status says" \
	    "$(ctl "$dst" status --json 2>/dev/null |
	    jq -c '.peers[0].snapshot' 2>/dev/null)" ) &
	BG="$BG $!"
	probe "$dst" 1800 "$PROBE_ROW" "$last"
	cpu_log "bootstrap ($s)" "$t0" "$SEEN_US" "$BOOT_ROWS" "$src" "$cs" \
	    "$dst" 0
	n_d=$(sql "$dst" "SELECT count(*) FROM activities")
	[ "$n_d" = "$BOOT_ROWS" ] ||
	    fail "bootstrap: $dst has $n_d rows, not $BOOT_ROWS"
	secs=$(calc "($SEEN_US - $t0) / 1e6" 3)
	fig "bootstrap_seconds_$s" "$secs" s
	fig "bootstrap_rows_per_s_$s" "$(calc "$BOOT_ROWS / $secs")" rows/s
	fig "bootstrap_ratio_$s" "$(calc "${FIG[bootstrap_rows_per_s_$s]} / \
	    ${FIG[bootstrap_baseline_rows_per_s_$s]}" 3)" x
	fig "rss_peak_bootstrap_src_$s" "$(hwm_mib "$src")" MiB
	fig "rss_peak_bootstrap_dst_$s" "$(hwm_mib "$dst")" MiB
	stop "$src"
	stop "$dst"
	rm -f "$T"/"$src".db* "$T"/"$dst".db*
done

# The targets of the benchmark issue, met or not (on stderr: the figures
# stay one per line). tests/bench/RESULTS.md says what bounds them.
target() {	# target NAME OP BOUND
	local v=${FIG[$1]:-}
	[ -n "$v" ] || return 0
	if awk "BEGIN { exit !($v $2 $3) }"; then
		log "target $1 $2 $3: $v, met"
	else
		log "target $1 $2 $3: $v, missed"
	fi
}
for s in $IDS; do
	target "capture_ratio_$s" ">=" 0.67
	target "replication_ratio_$s" ">=" 0.5
	target "catchup_ratio_$s" ">=" 0.8
	target "rss_peak_over_cache_mib_$s" "<=" 32
	target "storage_overhead_ratio_$s" "<=" 1.5
	# the issue's goal: a million rows in under 30 s
	target "bootstrap_rows_per_s_$s" ">=" "$(calc "1000000 / 30")"
done
target idle_cpu_s "<=" "$(calc "0.1 * $IDLE_SECS / 30" 4)"	# 0.1 s in 30 s
log "done"
