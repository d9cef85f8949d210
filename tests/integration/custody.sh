#!/bin/bash
# Finding and reading (custos custody, officers, find --csv, case list/show, stats):
#   1. custody --html of an item whose metadata is hostile (script and img
#      tags, quotes, ampersands in its name, category, device, officer and
#      case number): the report holds no element but the report's own, no
#      script, no attribute that fetches anything, and the hostile values
#      come back as text exactly; custody and --json say every proof is
#      verified against the latest checkpoint.
#   2. officers import refusals: a bad date, a missing column, a quote inside
#      an unquoted field, a duplicate certificate: exit 2, the message names
#      the line and the field, nothing imported.
#   3. an item recorded by an officer whose certificate had expired (and one
#      by an unknown officer) is flagged in show --json, find, case show and
#      stats; one by a certified officer is not.
#   4. find --csv and case list --csv and stats --csv are RFC 4180: Python's
#      csv module reads back the hostile values exactly.
. "$(dirname "$0")/lib.sh"
need_python3

IN="$WORK/in"
mkdir -p "$IN"
HOSTILE_NAME='<script>alert(1)<script>"q'\''&amp;,x.mp4'
HOSTILE_CAT='<img src=x onerror=alert(2)>'
HOSTILE_DEV='"><script src=http://evil.example/x.js></script>'
HOSTILE_OFF='<b>3301-9999</b>'
HOSTILE_CASE='平司罚〔2020〕<i>9</i>号'

t_run "init" "$CUSTOS" init --station CU
printf 'hostile clip\n' >"$IN/$HOSTILE_NAME"
t_run "ingest with hostile metadata" "$CUSTOS" ingest "$IN/$HOSTILE_NAME" --case "$HOSTILE_CASE" \
	--category "$HOSTILE_CAT" --device "$HOSTILE_DEV" --officer "$HOSTILE_OFF" \
	--stage 取证 --recorded-at 2024-05-01T08:00:00Z
HID=$("$CUSTOS" find --case "$HOSTILE_CASE" | cut -f1)
t_ok $([ -n "$HID" ]; echo $?) "the hostile item is found by its case number"

# 1. the HTML report
"$CUSTOS" custody "$HID" --html >"$WORK/report.html"
t_ok $? "custody --html exits 0"
python3 - "$WORK/report.html" "$HOSTILE_NAME" "$HOSTILE_CAT" "$HOSTILE_DEV" "$HOSTILE_OFF" \
	"$HOSTILE_CASE" >"$WORK/html.out" 2>&1 <<'PY'
import sys
from html.parser import HTMLParser
allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "tr", "th",
           "td", "pre", "p", "code"}
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bad, self.text = [], []
    def handle_starttag(self, tag, attrs):
        if tag not in allowed:
            self.bad.append("element <%s>" % tag)
        for k, v in attrs:
            if k in ("src", "href", "action", "background", "srcset") or k.startswith("on"):
                self.bad.append("attribute %s=%s on <%s>" % (k, v, tag))
    def handle_data(self, d):
        self.text.append(d)
p = P()
doc = open(sys.argv[1], encoding="utf-8").read()
p.feed(doc)
text = "".join(p.text)
for v in sys.argv[2:]:
    if v not in text:
        p.bad.append("value not shown as text: %r" % v)
if "url(" in doc or "@import" in doc:
    p.bad.append("CSS that fetches")
print("\n".join(p.bad))
sys.exit(1 if p.bad else 0)
PY
t_ok $? "the report has only its own elements, fetches nothing, shows hostile values as text"
[ -s "$WORK/html.out" ] && sed "s/^/#   /" "$WORK/html.out" | head -10
t_grep "the report escapes the script tag" '&lt;script&gt;alert\(1\)&lt;script&gt;&quot;q&#39;&amp;amp;' \
	"$WORK/report.html"
"$CUSTOS" custody "$HID" --json >"$WORK/custody.json"
python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
ev = c["events"]
assert len(ev) >= 1 and ev[0]["type"] == "ingest", ev
assert all(e["proof_status"] == "verified" for e in ev), [e["proof_status"] for e in ev]
assert c["record"]["name"] == sys.argv[2]
' "$WORK/custody.json" "$HOSTILE_NAME"
t_ok $? "custody --json: the ingest first, every proof verified"
"$CUSTOS" custody "$HID" >"$WORK/custody.txt"
t_grep "custody text lists the ingest with its proof verified" 'ingest .* proof verified' \
	"$WORK/custody.txt"

# 2. officer import refusals
cat >"$WORK/bad-date.csv" <<'CSV'
name,post,certificate,valid_from,valid_to
Zhang San,一队,3301-0001,2020-01-01,2025-12-31
Li Si,二队,3301-0002,2020-02-30,2025-12-31
CSV
t_status 2 "a bad date is refused" "$CUSTOS" officers import "$WORK/bad-date.csv"
t_grep "the message names line 3 and valid_from" 'line 3, field valid_from: not a date' \
	"$WORK/last.err"
printf 'name,certificate,valid_from\nZhang San,3301-0001,2020-01-01\n' >"$WORK/no-col.csv"
t_status 2 "a missing column is refused" "$CUSTOS" officers import "$WORK/no-col.csv"
t_grep "the message names line 1 and valid_to" 'line 1, field valid_to' "$WORK/last.err"
printf 'name,certificate,valid_from,valid_to\nZhang "San",3301-0001,2020-01-01,\n' \
	>"$WORK/quote.csv"
t_status 2 "a quote inside an unquoted field is refused" "$CUSTOS" officers import \
	"$WORK/quote.csv"
t_grep "the message names line 2 and the quote" 'line 2: a quote inside an unquoted field' \
	"$WORK/last.err"
printf 'name,certificate,valid_from,valid_to\nA,3301-0001,2020-01-01,\nB,3301-0001,2020-01-01,\n' \
	>"$WORK/dup.csv"
t_status 2 "a duplicate certificate is refused" "$CUSTOS" officers import "$WORK/dup.csv"
t_grep "the message names line 3 and certificate" 'line 3, field certificate' "$WORK/last.err"
"$CUSTOS" officers list --json >"$WORK/officers.json" 2>/dev/null
t_ok $([ "$(tr -d ' \n' <"$WORK/officers.json")" = "[]" ]; echo $?) "nothing was imported"

# 3. flags
cat >"$WORK/officers.csv" <<'CSV'
姓名,单位,执法证号,有效期起,有效期止
"Zhang, San",执法一队,3301-0001,2020-01-01,2030-12-31
"Li ""Si""",执法二队,3301-0002,2020-01-01,2023-12-31
CSV
t_run "officers import" "$CUSTOS" officers import "$WORK/officers.csv"
t_grep "two imported" 'imported 2 officers' "$WORK/last.out"
C='宁司罚〔2024〕3号'
printf 'good\n' >"$IN/good.mp4"
printf 'expired\n' >"$IN/expired.mp4"
t_run "ingest by a certified officer" "$CUSTOS" ingest "$IN/good.mp4" --case "$C" --stage 调查 \
	--officer 3301-0001 --category 行政处罚 --recorded-at 2024-03-01T08:00:00+08:00
t_run "ingest by an officer whose certificate expired" "$CUSTOS" ingest "$IN/expired.mp4" \
	--case "$C" --stage 调查 --officer 3301-0002 --category 行政处罚 \
	--recorded-at 2024-03-02T08:00:00+08:00
GID=CU-$(digest "$IN/good.mp4" | cut -c1-20)
EID=CU-$(digest "$IN/expired.mp4" | cut -c1-20)
"$CUSTOS" show "$EID" --json >"$WORK/e.json"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["record"]
assert [f["flag"] for f in r["flags"]] == ["certificate-not-valid"], r.get("flags")
' "$WORK/e.json"
t_ok $? "show --json: the expired officer's recording is flagged certificate-not-valid"
"$CUSTOS" show "$GID" --json | grep -q '"flags"'
t_ok $((! $?)) "the certified officer's recording is not flagged"
"$CUSTOS" find --case "$C" >"$WORK/find.txt"
t_grep "find marks the expired officer's recording" "^$EID	.*	flagged\$" "$WORK/find.txt"
t_ok $(grep -q "^$GID	.*flagged" "$WORK/find.txt"; echo $((! $?))) "find does not mark the other"
"$CUSTOS" case show "$C" >"$WORK/case.txt"
t_grep "case show flags it" 'FLAGGED certificate-not-valid: .*officer 3301-0002' "$WORK/case.txt"
t_grep "case show flags the hostile one's unknown officer" 'FLAGGED officer-unknown' \
	<("$CUSTOS" case show "$HOSTILE_CASE")
"$CUSTOS" stats --year 2024 --json >"$WORK/stats.json"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["items"] == 3 and s["flagged"] == 2, s
assert s["flags"] == {"certificate-not-valid": 1, "officer-unknown": 1}, s["flags"]
assert s["by_officer"]["3301-0002"]["items"] == 1, s["by_officer"]
assert s["by_category"]["行政处罚"]["items"] == 2, s["by_category"]
' "$WORK/stats.json"
t_ok $? "stats --year 2024: 3 recordings, 2 flagged, by officer and category"
"$CUSTOS" stats --year 2024 >"$WORK/stats.txt"
python3 -c '
import sys, unicodedata
cols = lambda s: sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
at = {cols(l[:l.index(" items ")]) for l in open(sys.argv[1], encoding="utf-8") if " items " in l}
lines = open(sys.argv[1], encoding="utf-8").read()
assert len(at) == 1 and "  行政处罚 " in lines, (at, lines)
' "$WORK/stats.txt"
t_ok $? "stats as text: the counts line up in one column beside Chinese and Latin names"

# 4. CSV read back by Python's csv module
"$CUSTOS" find --case "$HOSTILE_CASE" --csv >"$WORK/find.csv"
python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
assert len(rows) == 1, rows
r = rows[0]
assert r["name"] == sys.argv[2] and r["category"] == sys.argv[3], r
assert r["device"] == sys.argv[4] and r["officers"] == sys.argv[5], r
assert r["case"] == sys.argv[6] and r["flags"] == "officer-unknown", r
' "$WORK/find.csv" "$HOSTILE_NAME" "$HOSTILE_CAT" "$HOSTILE_DEV" "$HOSTILE_OFF" "$HOSTILE_CASE"
t_ok $? "find --csv reads back exactly with a CSV reader"
"$CUSTOS" case list --csv >"$WORK/cases.csv"
python3 -c '
import csv, sys
rows = {r["number"]: r for r in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8"))}
assert rows[sys.argv[2]]["items"] == "2" and rows[sys.argv[2]]["state"] == "open", rows
assert sys.argv[3] in rows and rows[sys.argv[3]]["opened"].startswith("20"), rows
' "$WORK/cases.csv" "$C" "$HOSTILE_CASE"
t_ok $? "case list --csv: state, items and the opening date"
t_run "case seal" "$CUSTOS" case seal "$C"
"$CUSTOS" case list >"$WORK/cases.txt"
t_grep "case list shows it sealed with its date" "^$C	sealed	2	20[^	]*	-	20" "$WORK/cases.txt"
t_run "stats --csv" "$CUSTOS" stats --year 2024 --csv
python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
assert rows[0] == ["dimension", "value", "items", "bytes"] and rows[1][:3] == ["total", "", "3"]
assert ["category", sys.argv[2], "1", str(len("hostile clip\n"))] in rows, rows
' "$WORK/last.out" "$HOSTILE_CAT"
t_ok $? "stats --csv reads back, the hostile category as a value"
t_done
