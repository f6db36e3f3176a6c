#!/usr/bin/env bash
# labsyncctl export and GET .../rows?format=csv: RFC 4180 CSV that
# Python's csv module reads back exactly (Umlauts, commas, quotes, CR and
# LF inside values, NULL as empty), with a header of the table's columns,
# only live rows (no tombstones), --where filters, --format json lines,
# and --with-meta naming each row's origin node and change time.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node dortmund
node wuppertal
http_node dortmund
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal

TOK="Authorization: Bearer ${HTTP_TOKEN[dortmund]}"
ROW=/v1/tables/activities/rows

# written with labsyncctl put: awkward text in every shape
ctl dortmund put activities a-1 'title=Straßenfest in Hörde, "groß"' \
    kind=fair participants=120 >/dev/null || fail "put a-1"
ctl dortmund put activities a-2 "title=$(printf 'line one\nline two\r\nline three')" \
    kind=workshop 'summary=a,b,,c' >/dev/null || fail "put a-2"
ctl dortmund put activities a-3 'title=""' 'summary=' kind=workshop \
    >/dev/null || fail "put a-3"
ctl dortmund put activities a-gone title=deleted >/dev/null || fail "put a-gone"
ctl dortmund delete activities a-gone || fail "delete a-gone"
# written at wuppertal, replicated: its origin is wuppertal
ctl wuppertal put activities w-1 'title=Ümlaut Öde Ärger ß €' kind=meeting \
    participants=7 >/dev/null || fail "put w-1"
# written over HTTP
curl -sf -o /dev/null -X PUT -H "$TOK" -H "Content-Type: application/json" \
    --data-binary '{"title":"über \"HTTP\", mit\nZeilenumbruch","kind":"meeting","participants":3}' \
    "${HTTP_URL[dortmund]}$ROW/h-1" || fail "HTTP PUT h-1"
has_w1() { ctl dortmund get activities w-1 >/dev/null 2>&1; }
wait_for 15 "w-1 reaches dortmund" has_w1

ctl dortmund export activities --format csv >"$T/ctl.csv" || fail "export csv"
curl -sf -D "$T/h" -o "$T/http.csv" "${HTTP_URL[dortmund]}$ROW?format=csv" ||
    fail "GET ?format=csv"
tr -d '\r' <"$T/h" | grep -qix 'content-type: text/csv; charset=utf-8' ||
    fail "CSV content type: $(cat "$T/h")"
cmp -s "$T/ctl.csv" "$T/http.csv" || fail "labsyncctl and HTTP CSV differ"
ctl dortmund list activities >"$T/rows.jsonl" || fail "list"
sqlite3 "$T/dortmund.db" "SELECT name FROM pragma_table_info('activities') ORDER BY cid" \
    >"$T/cols" || fail "columns"

python3 - "$T/ctl.csv" "$T/rows.jsonl" "$T/cols" <<'PY' || fail "CSV check"
import csv, json, sys
raw = open(sys.argv[1], "rb").read()
assert b"\r\n" in raw and raw.endswith(b"\r\n"), "records end in CRLF"
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    recs = list(csv.reader(f))
cols = open(sys.argv[3]).read().split()
assert recs[0] == cols, ("header", recs[0], cols)
rows = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(recs) - 1 == len(rows) == 5, ("row count", len(recs) - 1, len(rows))
byid = {r["id"]: r for r in rows}
for rec in recs[1:]:
    want = byid[rec[0]]
    for c, v in zip(cols, rec):
        w = want[c]
        w = "" if w is None else str(w)
        assert v == w, (rec[0], c, v, w)
ids = [r[0] for r in recs[1:]]
assert ids == sorted(ids) and "a-gone" not in ids, ids
t = {r[0]: r for r in recs[1:]}
i = cols.index("title")
assert t["a-1"][i] == 'Straßenfest in Hörde, "groß"'
assert t["a-2"][i] == "line one\nline two\r\nline three"
assert t["a-3"][i] == '""' and t["a-3"][cols.index("summary")] == ""
assert t["w-1"][i] == "Ümlaut Öde Ärger ß €"
assert t["h-1"][i] == 'über "HTTP", mit\nZeilenumbruch'
assert t["a-1"][cols.index("location")] == "", "NULL is empty"
assert t["a-2"][cols.index("participants")] == ""
PY

# NULL is nothing, an empty string is "" (both read as empty by csv)
grep -q '^a-3,' "$T/ctl.csv" || fail "a-3 record"
grep '^a-3,' "$T/ctl.csv" | grep -q ',"",' || fail "an empty string is not \"\""

# --where, typed; over HTTP the same as a query
ctl dortmund export activities --where kind=meeting --where participants=7 \
    >"$T/w.csv" || fail "export --where"
python3 -c '
import csv, sys
r = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
assert len(r) == 2 and r[1][0] == "w-1", r' "$T/w.csv" || fail "--where: $(cat "$T/w.csv")"
curl -sf -o "$T/wh.csv" "${HTTP_URL[dortmund]}$ROW?format=csv&kind=meeting&participants=7" ||
    fail "GET ?format=csv with filters"
cmp -s "$T/w.csv" "$T/wh.csv" || fail "filtered CSV differs over HTTP"
ctl dortmund export activities --where kind=fair --where 'location=\N' \
    --format json >"$T/w.jsonl" || fail "export --where NULL"
assert_eq "$(jq -r .id "$T/w.jsonl")" a-1 "--where col=\\N"
ctl dortmund export activities --where nosuch=1 >/dev/null 2>&1
assert_eq $? 2 "export --where on an unknown column"
ctl dortmund export activities --where participants=many >/dev/null 2>&1
assert_eq $? 2 "export --where with a value of the wrong type"
ctl dortmund export nosuch >/dev/null 2>&1
assert_eq $? 2 "export of an unknown table"
ctl dortmund export activities --format xml >/dev/null 2>&1
assert_eq $? 2 "export --format xml"
code=$(curl -s -o "$T/e" -w '%{http_code}' "${HTTP_URL[dortmund]}$ROW?format=csv&nosuch=1")
assert_eq "$code" 400 "CSV with an unknown filter column"
jq -e .error "$T/e" >/dev/null || fail "no JSON error: $(cat "$T/e")"

# --format json: one object a line, the same rows as list
ctl dortmund export activities --format json >"$T/all.jsonl" || fail "export json"
assert_eq "$(jq -cS . "$T/all.jsonl")" "$(jq -cS . "$T/rows.jsonl")" \
    "JSON lines are the rows"

# --with-meta: origin node and change time of each row
before=$(date -u +%Y-%m-%dT%H:%M:%S)
sleep 1.1
ctl dortmund put activities a-1 participants=121 >/dev/null || fail "put again"
ctl dortmund export activities --with-meta >"$T/meta.csv" || fail "export --with-meta"
curl -sf -o "$T/meta-http.csv" "${HTTP_URL[dortmund]}$ROW?format=csv&meta=1" ||
    fail "GET ?format=csv&meta=1"
cmp -s "$T/meta.csv" "$T/meta-http.csv" || fail "meta CSV differs over HTTP"
ctl dortmund export activities --with-meta --format json >"$T/meta.jsonl" ||
    fail "export --with-meta --format json"
python3 - "$T/meta.csv" "$T/meta.jsonl" "$before" <<'PY' || fail "meta check"
import csv, json, sys, datetime
recs = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
h = recs[0]
assert h[-2:] == ["labsync_origin", "labsync_changed_at"], h
m = {r[0]: dict(zip(h, r)) for r in recs[1:]}
want = {"a-1": "dortmund", "a-2": "dortmund", "a-3": "dortmund",
    "h-1": "dortmund", "w-1": "wuppertal"}
assert {k: v["labsync_origin"] for k, v in m.items()} == want, m
now = datetime.datetime.now(datetime.timezone.utc)
for k, v in m.items():
    t = datetime.datetime.strptime(v["labsync_changed_at"],
        "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert now - datetime.timedelta(minutes=5) < t <= now, (k, t)
before = sys.argv[3]
assert m["a-1"]["labsync_changed_at"] > before > m["a-2"]["labsync_changed_at"], \
    (m["a-1"], m["a-2"], before)
for l in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(l)
    assert o["labsync_origin"] == want[o["id"]], o
    assert o["labsync_changed_at"] == m[o["id"]]["labsync_changed_at"], o
PY

# wuppertal's export of the same rows: the same data, the same meta
converge 30 dortmund wuppertal
ctl wuppertal export activities --with-meta >"$T/wmeta.csv" || fail "export at wuppertal"
cmp -s "$T/meta.csv" "$T/wmeta.csv" || fail "meta differs between nodes:
$(diff "$T/meta.csv" "$T/wmeta.csv")"
pass
