#!/usr/bin/env bash
# GET /metrics of live daemons passes `promtool check metrics` (parse and
# lint: no output, exit 0) and holds the families the issue asks for:
# changes captured, published, applied, rejected (by reason), batches, the
# apply latency histogram, per-peer up, lag and last contact (label peer),
# change-log size, database size, HLC skew. Checked on a city that has
# applied remote changes and on one with a peer it never reached.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v promtool >/dev/null || skip "promtool is not installed (make deps)"

node dortmund
node wuppertal
node ghost		# configured at wuppertal, never started
http_node dortmund
http_node wuppertal
peer dortmund wuppertal
peer wuppertal dortmund
peer wuppertal ghost
start dortmund
start wuppertal

for i in 1 2 3 4 5; do
	ctl dortmund put activities act-do-$i title="Workshop $i" participants=$i ||
	    fail "put at dortmund"
done
ctl wuppertal put labs lab-wu city=Wuppertal || fail "put at wuppertal"
converge 30 dortmund wuppertal

M=$T/metrics
# scrape NODE: /metrics into $M (and $M.headers); promtool must be silent
scrape() {
	local code out rc
	code=$(curl -s -D "$M.headers" -o "$M" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[$1]}/metrics")
	assert_eq "$code" 200 "GET /metrics at $1"
	tr -d '\r' <"$M.headers" | grep -qi '^content-type: text/plain; version=0\.0\.4' ||
	    fail "content type of /metrics at $1: $(cat "$M.headers")"
	out=$(promtool check metrics <"$M" 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] && [ -z "$out" ] ||
	    fail "promtool check metrics at $1 (exit $rc): $out"
}

# value NAME{LABELS}: the sample's value ('' if absent)
value() {
	awk -v k="$1" '$1 == k { print $2; exit }' "$M"
}

# family NAME TYPE: HELP and TYPE lines, and at least one sample
family() {
	grep -q "^# HELP $1 ." "$M" || fail "no HELP for $1"
	grep -qx "# TYPE $1 $2" "$M" || fail "$1 is not a $2"
	grep -Eq "^$1(_bucket|_sum|_count)?(\{[^}]*\})? " "$M" ||
	    fail "no sample of $1"
}

ge() {	# ge VALUE MIN NAME
	awk -v v="$1" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 >= m) }' ||
	    fail "$3 = '$1', expected at least $2"
}

for n in dortmund wuppertal; do
	scrape "$n"
	family labsync_changes_captured_total counter
	family labsync_changes_published_total counter
	family labsync_changes_applied_total counter
	family labsync_messages_rejected_total counter
	family labsync_batches_total counter
	family labsync_apply_seconds histogram
	family labsync_peer_up gauge
	family labsync_peer_lag_changes gauge
	family labsync_peer_last_contact_seconds gauge
	family labsync_changelog_changes gauge
	family labsync_database_bytes gauge
	family labsync_hlc_max_skew_seconds gauge
	for r in malformed unknown_table unknown_column wrong_type; do
		[ -n "$(value "labsync_messages_rejected_total{reason=\"$r\"}")" ] ||
		    fail "$n: no rejected series with reason=$r"
	done
	# the histogram: cumulative buckets, +Inf equals the count
	awk '/^labsync_apply_seconds_bucket/ { if ($2 + 0 < prev) bad = 1;
	    prev = $2 + 0 } END { exit bad }' "$M" ||
	    fail "$n: apply buckets are not cumulative"
	assert_eq "$(value 'labsync_apply_seconds_bucket{le="+Inf"}')" \
	    "$(value labsync_apply_seconds_count)" "$n: +Inf bucket and count"
	ge "$(value labsync_database_bytes)" 4096 "$n: labsync_database_bytes"
	ge "$(value labsync_changelog_changes)" 6 "$n: labsync_changelog_changes"
	ge "$(value labsync_hlc_max_skew_seconds)" 0 "$n: labsync_hlc_max_skew_seconds"
	assert_eq "$(value 'labsync_peer_up{peer="'"$([ $n = dortmund ] &&
	    echo wuppertal || echo dortmund)"'"}')" 1 "$n: the other city is up"
	cp "$M" "$T/$n.metrics"
done

M=$T/dortmund.metrics
ge "$(value labsync_changes_captured_total)" 5 "dortmund: captured"
ge "$(value labsync_changes_published_total)" 5 "dortmund: published"
ge "$(value labsync_changes_applied_total)" 1 "dortmund: applied"
ge "$(value labsync_batches_total)" 1 "dortmund: batches"
ge "$(value labsync_apply_seconds_count)" 1 "dortmund: apply latency count"
ge "$(value 'labsync_peer_last_contact_seconds{peer="wuppertal"}')" 0 \
    "dortmund: last contact with wuppertal"
assert_eq "$(value 'labsync_peer_lag_changes{peer="wuppertal"}')" 0 \
    "dortmund: lag behind wuppertal"

M=$T/wuppertal.metrics
ge "$(value labsync_changes_captured_total)" 1 "wuppertal: captured"
ge "$(value labsync_changes_applied_total)" 5 "wuppertal: applied"
ge "$(value labsync_apply_seconds_count)" 1 "wuppertal: apply latency count"
assert_eq "$(value 'labsync_peer_up{peer="ghost"}')" 0 "wuppertal: ghost is down"
assert_eq "$(value 'labsync_peer_last_contact_seconds{peer="ghost"}')" -1.000 \
    "wuppertal: ghost never heard from"
grep -q '^labsync_peer_lag_changes{peer="ghost"} ' "$M" ||
    fail "wuppertal: no lag series for ghost"
pass
