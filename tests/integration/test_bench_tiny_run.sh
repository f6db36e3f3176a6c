#!/usr/bin/env bash
# The benchmark keeps working: `TINY=1 tests/bench/bench.sh` (about 2,000
# rows, a few seconds) exits 0 and prints every figure, each with a
# number. Speeds are measured by `make bench`, never asserted here.
. "$(dirname "$0")/lib.sh"

for b in bench_sqlite bench_writer bench_zmq; do
	[ -x "$ROOT/build/$b" ] || fail "build/$b missing (make bench-bins)"
done
TINY=1 "$ROOT/tests/bench/bench.sh" >"$T/figures" 2>"$T/bench.log" || {
	tail -n 40 "$T/bench.log"
	fail "TINY=1 tests/bench/bench.sh exited $?"
}

names="zmq_curve_msgs_per_s zmq_curve_mb_per_s page_cache_mib idle_cpu_s"
for s in v4 v7; do
	for f in sqlite_insert_tuned sqlite_upsert_tuned sqlite_insert_tuned_1k \
	    sqlite_insert_default sqlite_apply_model sqlite_apply_model_refs \
	    capture_write_rows_per_s capture_rows_per_s \
	    capture_ratio writer_raw_rows_per_s capture_vs_raw_writer \
	    replication_write_rows_per_s replication_rows_per_s \
	    replication_ratio rss_peak_repl_a rss_peak_repl_b lat_p50_ms \
	    lat_p99_ms lat_max_ms norepl_write_rows_per_s catchup_seconds \
	    catchup_changes_per_s catchup_ratio catchup_vs_apply_model \
	    rss_peak_catchup_a \
	    rss_peak_catchup_b rss_growth_1m_a rss_after_1m_b \
	    rss_peak_over_cache_mib bootstrap_baseline_rows_per_s \
	    storage_bytes_per_row_plain storage_bytes_per_row_src \
	    storage_overhead_ratio bootstrap_seconds bootstrap_rows_per_s \
	    bootstrap_ratio rss_peak_bootstrap_src rss_peak_bootstrap_dst; do
		names="$names ${f}_$s"
	done
done
for n in $names; do
	line=$(grep "^$n " "$T/figures") || fail "no figure $n"
	[ "$(echo "$line" | wc -l)" -eq 1 ] || fail "figure $n printed twice"
	set -- $line
	[ $# -eq 3 ] || fail "figure line not 'name value unit': $line"
	[[ $2 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || fail "figure $n is not a number: $2"
done
assert_eq "$(wc -l <"$T/figures")" "$(echo $names | wc -w)" "figure lines"
pass
