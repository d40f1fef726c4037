#!/usr/bin/env bash
# The hpsched CLI against the real server on a free loopback port: health, plot (SVG and terminal,
# for a job and for a spec), watch while another command deletes the job, --json on every command
# (checked with Python's json and xml parsers), JSON errors and exit codes, and long ranges that
# need several calls.
#
#   bash tests/cli/cli_test.sh BUILD_DIR
#
# Prints "ok - ..." / "not ok - ..." per check and ends with "N passed, M failed"; exits 0 only if M is 0.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
if ! build=$(cd "$1" 2>/dev/null && pwd); then
  echo "not ok - build directory $1 exists"
  echo "0 passed, 1 failed"
  exit 1
fi

PY=/usr/bin/python3
SERVER="$build/server/hpsched-server"
CLI="$build/client/hpsched"
T=(timeout 60)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpsched-cli.XXXXXX")
server_pid=""
watch_pid=""
source "$(dirname "${BASH_SOURCE[0]}")/../lib/checks.sh"

cleanup() {
  local rc=$?
  stop_process "$watch_pid"
  stop_process "$server_pid"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run NAME WANT_RC OUT CMD...: ok if CMD exits WANT_RC (stdout to OUT, stderr to OUT.err).
run() {
  local name=$1 want=$2 out=$3
  shift 3
  local rc=0
  "${T[@]}" "$@" >"$out" 2>"$out.err" || rc=$?
  if [[ $rc -eq $want ]]; then
    ok "$name"
    return 0
  fi
  not_ok "$name (exit $rc, want $want)" "$out.err" "$out"
  return 1
}

# py NAME FILE SCRIPT: ok if the Python SCRIPT (reading FILE as sys.argv[1]) exits 0.
py() {
  local name=$1 file=$2 script=$3
  if "$PY" -c "$script" "$file" >"$tmp/py.out" 2>&1; then
    ok "$name"
  else
    not_ok "$name" "$tmp/py.out" "$file"
  fi
}

for bin in "$SERVER" "$CLI" "$PY"; do
  if [[ ! -x $bin ]]; then
    not_ok "executable $bin exists"
    summary
    exit 1
  fi
done

# --- The server, on a free loopback port ------------------------------------------------------------------------------
# A store of its own: the default durable store (--data_dir /var/lib/hpsched) is shared and takes one server at a time.
store=()
"$SERVER" --helpfull >"$tmp/helpfull.txt" 2>&1 || true
if grep -q -- '-data_dir' "$tmp/helpfull.txt"; then store=(--data_dir="$tmp/data"); fi
"$SERVER" --address=127.0.0.1 --port=0 --port_file="$tmp/port" --metrics_port=0 --http_port=0 "${store[@]}" >"$tmp/server.log" 2>&1 &
server_pid=$!
if ! wait_for_port "$tmp/port" "$server_pid"; then
  not_ok "server writes its port file within 10 s" "$tmp/server.log"
  summary
  exit 1
fi
ok "server started on 127.0.0.1:$port"
H=("$CLI" --target="127.0.0.1:$port")
run "list on the fresh server" 0 "$tmp/list0.out" "${H[@]}" list &&
  py "the server starts with no jobs (a store of its own): the table's header only" "$tmp/list0.out" '
import sys
lines = open(sys.argv[1]).read().splitlines()
assert [l.split() for l in lines] == [["ID", "HYPERPARAMETERS", "VERSION", "LABELS", "UPDATED"]], lines'
run "HPSCHED_TARGET is the default of --target" 0 "$tmp/env-target.out" \
  env HPSCHED_TARGET="127.0.0.1:$port" "$CLI" --timeout=5s health
run "--target overrides HPSCHED_TARGET" 1 "$tmp/env-target2.out" \
  env HPSCHED_TARGET="127.0.0.1:$port" "$CLI" --target=127.0.0.1:1 --timeout=2s health
run "--help documents HPSCHED_TARGET" 1 "$tmp/help.out" "$CLI" --help &&
  if grep -q 'HPSCHED_TARGET' "$tmp/help.out" "$tmp/help.out.err"; then ok "--help names HPSCHED_TARGET"; else not_ok "--help names HPSCHED_TARGET" "$tmp/help.out"; fi
run "an unknown command: exit 2" 2 "$tmp/unknown.out" "$CLI" valuse stepjob &&
  if [[ $(head -1 "$tmp/unknown.out.err") == 'hpsched: unknown command "valuse"; did you mean "values"?' ]]; then
    ok "an unknown command says why, with a near miss, before the usage"
  else
    not_ok "an unknown command says why, with a near miss, before the usage" "$tmp/unknown.out.err"
  fi

# --- health -------------------------------------------------------------------------------------------------------------
run "health: exit 0" 0 "$tmp/health.out" "${H[@]}" health &&
  if [[ $(cat "$tmp/health.out") == SERVING ]]; then ok "health prints SERVING"; else not_ok "health prints SERVING" "$tmp/health.out"; fi
run "health --service hpsched.v1.SchedulerService: exit 0" 0 "$tmp/health-svc.out" \
  "${H[@]}" health --service hpsched.v1.SchedulerService
run "health --json: exit 0" 0 "$tmp/health.json" "${H[@]}" health --json &&
  py "health --json is {\"status\": \"SERVING\"}" "$tmp/health.json" '
import json, sys
assert json.load(open(sys.argv[1])) == {"status": "SERVING"}'
run "health --service no.such.Service: exit 1" 1 "$tmp/health-unknown.out" \
  "${H[@]}" health --service no.such.Service --json &&
  py "health of an unknown service: JSON error NOT_FOUND on stderr" "$tmp/health-unknown.out.err" '
import json, sys
e = json.load(open(sys.argv[1])); assert e["code"] == "NOT_FOUND", e; assert e["message"], e'
# Port 1 on loopback: nothing listens there.
run "health of a server that is not there: exit 1" 1 "$tmp/health-down.out" \
  "$CLI" --target=127.0.0.1:1 --timeout=3s health

# --- create, get, list with --json --------------------------------------------------------------------------------------
job='{"hyperparameters":[{"name":"lr","base_values":[0.1,0.01],"schedule":{"sequential":{"schedules":[{"linear":{"start_factor":0.1,"total_iters":50}},{"cosine_annealing_warm_restarts":{"t_0":100,"t_mult":2}}],"milestones":[50]}}},{"name":"momentum","base_values":[0.9],"schedule":{"step":{"step_size":250,"gamma":0.9}}}]}'
run "create plotjob --job --json" 0 "$tmp/create.json" "${H[@]}" create plotjob --job "$job" --json &&
  py "create --json prints the Job on one line" "$tmp/create.json" '
import json, sys
lines = open(sys.argv[1]).read().splitlines(); assert len(lines) == 1, lines
j = json.loads(lines[0]); assert j["name"] == "jobs/plotjob" and j["version"] == "1", j
assert [h["name"] for h in j["hyperparameters"]] == ["lr", "momentum"], j'
run "create without --json keeps the indented Job" 0 "$tmp/create-text.out" \
  "${H[@]}" create stepjob --schedule '{"step":{"step_size":10,"gamma":0.5}}' --base 0.1 &&
  py "create prints indented JSON" "$tmp/create-text.out" '
import json, sys
text = open(sys.argv[1]).read(); assert text.count("\n") > 3, text; assert json.loads(text)["name"] == "jobs/stepjob"'
run "get --json" 0 "$tmp/get.json" "${H[@]}" get plotjob --json &&
  py "get --json is the same Job as create" "$tmp/get.json" "
import json, sys
assert json.load(open(sys.argv[1])) == json.load(open('$tmp/create.json'))"
run "list --json" 0 "$tmp/list.json" "${H[@]}" list --json --page_size 1 &&
  py "list --json: one Job per line, in order of ids" "$tmp/list.json" '
import json, sys
names = [json.loads(l)["name"] for l in open(sys.argv[1]).read().splitlines()]
assert names == ["jobs/plotjob", "jobs/stepjob"], names'

# --- values and preview --------------------------------------------------------------------------------------------------
run "values stepjob (text)" 0 "$tmp/values.out" "${H[@]}" values stepjob --steps 0:30 &&
  py "values prints a header, then step<TAB>value in the shortest round-trip form" "$tmp/values.out" '
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
assert len(rows) == 31 and rows[0] == ["step", "lr/0"], rows[:2]
assert rows[1] == ["0", "0.1"] and rows[11] == ["10", "0.05"], rows[:12]
assert all(repr(float(v)) == v for r in rows[1:] for v in r[1:]), rows'
run "values --json --hyperparameter all" 0 "$tmp/values.json" \
  "${H[@]}" values plotjob --steps 0:300 --hyperparameter all --json &&
  py "values --json: one {step, values: {lr/0, lr/1, momentum/0}} per line" "$tmp/values.json" '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert len(rows) == 300 and [r["step"] for r in rows] == list(range(300))
assert sorted(rows[0]["values"]) == ["lr/0", "lr/1", "momentum/0"], rows[0]
assert abs(rows[0]["values"]["lr/0"] - 0.01) < 1e-15 and rows[50]["values"]["lr/0"] == 0.1, rows[50]
assert abs(rows[250]["values"]["momentum/0"] - 0.81) < 1e-15, rows[250]'
seq='{"sequential":{"schedules":[{"linear":{"start_factor":0.1,"total_iters":5}},{"cosine_annealing":{"t_max":95}}],"milestones":[5]}}'
run "preview --json (server)" 0 "$tmp/preview.json" "${H[@]}" preview --schedule "$seq" --base 0.1,0.01 --steps 0:100 --json
run "preview --json --local" 0 "$tmp/preview-local.json" "$CLI" preview --local --schedule "$seq" --base 0.1,0.01 --steps 0:100 --json
py "preview --json: value/0 and value/1 per step, --local identical to the server" "$tmp/preview.json" "
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
b = [json.loads(l) for l in open('$tmp/preview-local.json').read().splitlines()]
assert a == b and len(a) == 100
assert sorted(a[0]['values']) == ['value/0', 'value/1'] and a[5]['values']['value/0'] == 0.1, a[5]"

# Long ranges: more values than one response may hold.
run "create wide (5 groups)" 0 "$tmp/wide.out" "${H[@]}" create wide --schedule '{"exponential":{"gamma":0.99999}}' --base 1,2,3,4,5
run "values of 5 series over 100000 steps (over 400000 values: several calls)" 0 "$tmp/wide-values.out" \
  "${H[@]}" values wide --steps 0:100000 &&
  py "values: 100000 rows of 5 values, consecutive steps" "$tmp/wide-values.out" '
import sys
n = 0
lines = open(sys.argv[1]).read().splitlines()
assert lines[0] == "step\tlr/0\tlr/1\tlr/2\tlr/3\tlr/4", lines[0]
for i, line in enumerate(lines[1:]):
    f = line.split("\t"); assert int(f[0]) == i and len(f) == 6, line; n += 1
assert n == 100000, n'
run "preview of 150000 steps on the server (over one call's 100000)" 0 "$tmp/long-preview.out" \
  "${H[@]}" preview --schedule '{"step":{"step_size":1000}}' --steps 0:150000
if [[ $(wc -l <"$tmp/long-preview.out") -eq 150001 ]]; then ok "preview: a header and 150000 rows"; else not_ok "preview: a header and 150000 rows"; fi

# --- plot -----------------------------------------------------------------------------------------------------------------
svg_check='
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
def texts(cls):
    return ["".join(t.itertext()) for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == cls
            for t in g.iter("{http://www.w3.org/2000/svg}text")]
def by_class(cls):
    return [e for e in root.iter() if (e.get("class") or "").split(" ")[0] == cls]
title = "".join(by_class("title")[0].itertext())
y_labels = ["".join(e.itertext()) for e in by_class("y-label")]
x_labels = ["".join(e.itertext()) for e in by_class("x-label")]
marks = [e.get("class") for e in by_class("mark")]
legend = texts("legend")
ticks = texts("tick-label")
'
run "plot JOB --svg" 0 "$tmp/plot-job.out" "${H[@]}" plot plotjob --steps 0:1000 --svg "$tmp/job.svg" &&
  if [[ $(cat "$tmp/plot-job.out") == "wrote $tmp/job.svg (2 panels, steps 0:1000, version 1)" ]]; then
    ok "plot --svg FILE says what it wrote"
  else
    not_ok "plot --svg FILE says what it wrote" "$tmp/plot-job.out"
  fi &&
  py "plot JOB --svg: XML; title jobs/plotjob; panels lr and momentum; 3 curves; legend; restart, milestone and decay marks" "$tmp/job.svg" "$svg_check
assert title == 'jobs/plotjob', title
assert y_labels == ['lr', 'momentum'], y_labels
assert x_labels == ['step', 'step'], x_labels
assert len({e.get('stroke') for e in by_class('series')}) == 3, [e.get('stroke') for e in by_class('series')]
assert legend[:2] == ['lr group 0', 'lr group 1'] and 'momentum group 0' in legend, legend
assert 'mark mark-milestone' in marks and marks.count('mark mark-restart') == 3 and marks.count('mark mark-decay') == 3, marks
assert '0' in ticks and '200' in ticks, ticks"
run "plot JOB on the terminal" 0 "$tmp/plot-job.txt" "${H[@]}" plot plotjob --steps 0:1000 --width 100 --height 12 --color never &&
  py "plot JOB terminal: braille canvas 100 wide, axes, legend, marks" "$tmp/plot-job.txt" '
import sys
text = open(sys.argv[1], encoding="utf-8").read(); lines = text.splitlines()
assert lines[0].startswith("jobs/plotjob"), lines[0]
canvas = [l for l in lines if "┤" in l or "│" in l]
assert len(canvas) == 24 and all(len(l) == 100 for l in canvas), [len(l) for l in canvas]
assert any(0x2800 < ord(c) <= 0x28FF for c in text)
assert sum("└" in l for l in lines) == 2 and "step" in text
for want in ["━━ lr group 0", "━━ lr group 1", "━━ momentum group 0", "milestone at 50", "restart at 150, 350, 750"]:
    assert want in text, want
assert "\x1b[" not in text'
run "plot JOB --json" 0 "$tmp/plot-job.json" "${H[@]}" plot plotjob --steps 0:1000 --json &&
  py "plot --json: panels, every step of 1000, marks" "$tmp/plot-job.json" '
import json, sys
p = json.load(open(sys.argv[1]))
assert p["title"] == "jobs/plotjob" and p["x_min"] == 0 and p["x_max"] == 999, p["title"]
assert [q["y_label"] for q in p["panels"]] == ["lr", "momentum"]
lr = p["panels"][0]
assert [s["label"] for s in lr["series"]] == ["lr group 0", "lr group 1"]
assert len(lr["series"][0]["points"]) == 1000 and lr["series"][0]["points"][50] == [50, 0.1]
assert [(m["step"], m["kind"]) for m in lr["marks"]] == [(50, "milestone"), (150, "restart"), (350, "restart"), (750, "restart")], lr["marks"]
assert [m["step"] for m in p["panels"][1]["marks"]] == [250, 500, 750]'
run "plot JOB --hyperparameter momentum --log --svg" 0 "$tmp/plot-mom.out" \
  "${H[@]}" plot plotjob --steps 0:1000 --hyperparameter momentum --log --svg "$tmp/mom.svg" &&
  py "plot --hyperparameter momentum --log: one panel, log y label" "$tmp/mom.svg" "$svg_check
assert y_labels == ['momentum (log)'], y_labels"

run "plot --schedule --local --svg (sequential warmup -> cosine)" 0 "$tmp/plot-seq.out" \
  "$CLI" plot --local --schedule "$seq" --base 0.1,0.01 --steps 0:100 --svg "$tmp/seq.svg" &&
  py "plot spec --svg: title is the kind, value axis, 2 curves, milestone at 5" "$tmp/seq.svg" "$svg_check
assert title == 'sequential(linear, cosine_annealing)', title
assert y_labels == ['value'] and x_labels == ['step']
assert legend == ['group 0 (base 0.1)', 'group 1 (base 0.01)', 'milestone'], legend
assert marks == ['mark mark-milestone'], marks
assert len(by_class('series')) == 2"
cawr='{"cosine_annealing_warm_restarts":{"t_0":10,"t_mult":2}}'
run "plot --schedule on the server --json (warm restarts)" 0 "$tmp/plot-cawr.json" \
  "${H[@]}" plot --schedule "$cawr" --base 0.1 --steps 0:150 --json &&
  py "plot spec --json: restarts at 10, 30, 70; value 0.1 at each" "$tmp/plot-cawr.json" '
import json, sys
p = json.load(open(sys.argv[1])); panel = p["panels"][0]
assert p["title"] == "cosine_annealing_warm_restarts", p["title"]
assert [(m["step"], m["kind"]) for m in panel["marks"]] == [(10, "restart"), (30, "restart"), (70, "restart")]
pts = dict((int(x), y) for x, y in panel["series"][0]["points"])
assert all(pts[s] == 0.1 for s in (0, 10, 30, 70)), [pts[s] for s in (0, 10, 30, 70)]'
run "plot --schedule on the terminal (default size)" 0 "$tmp/plot-cawr.txt" \
  "${H[@]}" plot --schedule "$cawr" --base 0.1 --steps 0:150 &&
  py "plot spec terminal: 80 columns by default, restart marks listed" "$tmp/plot-cawr.txt" '
import sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
canvas = [l for l in lines if "┤" in l or "│" in l]
assert len(canvas) == 16 and all(len(l) == 80 for l in canvas), [len(l) for l in canvas]
assert any("restart at 10, 30, 70" in l for l in lines), lines'
run "plot --svg=- writes the SVG to stdout" 0 "$tmp/stdout.svg" \
  "$CLI" plot --local --schedule "$cawr" --steps 0:50 --svg=- &&
  py "plot --svg=- is an SVG document" "$tmp/stdout.svg" "$svg_check
assert title == 'cosine_annealing_warm_restarts'"

# --- update, report, and their marks on a plot -------------------------------------------------------------------------
live='{"hyperparameters":[{"name":"lr","base_values":[1.0],"schedule":{"reduce_on_plateau":{"metric":"loss","patience":0,"factor":0.5}}}],"metrics":[{"name":"loss","every_steps":10}]}'
run "create livejob" 0 "$tmp/live.json" "${H[@]}" create livejob --job "$live" --json &&
  run "report --metric loss=1 at step 9" 0 "$tmp/report1.json" "${H[@]}" report livejob --step 9 --metric loss=1 --json &&
  run "report --metric loss=2 at step 19 (a reduction from 20)" 0 "$tmp/report2.json" \
    "${H[@]}" report livejob --step 19 --metric loss=2 --json &&
  py "report --json: the ReportMetricsResponse with the reduction step" "$tmp/report2.json" '
import json, sys
r = json.load(open(sys.argv[1])); assert r["reduction_steps"] == ["20"], r' &&
  run "update --from 25 --scale 0.5" 0 "$tmp/update.json" "${H[@]}" update livejob --from 25 --scale 0.5 --json &&
  py "update --json: version 2 with one segment" "$tmp/update.json" '
import json, sys
j = json.load(open(sys.argv[1])); assert j["version"] == "2", j
assert j["hyperparameters"][0]["segments"][0]["effective_step"] == "25", j' &&
  run "plot livejob --json" 0 "$tmp/plot-live.json" \
    "${H[@]}" --timeout=5s plot livejob --steps 0:300 --json &&
  py "plot of a live job (provisional past step 30, drawn at once): plateau mark at 20, update mark at 25" "$tmp/plot-live.json" '
import json, sys
p = json.load(open(sys.argv[1]))
marks = [(m["step"], m["kind"]) for m in p["panels"][0]["marks"]]
assert marks == [(20, "plateau"), (25, "update")], marks
assert p["panels"][0]["series"][0]["provisional_from"] == 30, p["panels"][0]["series"][0].get("provisional_from")' &&
  run "values livejob: the values that wait for reports at once, marked provisional" 0 "$tmp/values-live.out" \
    "${H[@]}" --timeout=5s values livejob --steps 25:40 &&
  py "values livejob: rows from step 30 end in provisional" "$tmp/values-live.out" '
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
assert rows[0] == ["step", "lr/0"], rows[0]
assert [r[0] for r in rows[1:] if r[-1] == "provisional"] == [str(s) for s in range(30, 40)], rows
assert rows[1] == ["25", "0.25"], rows[1]' &&
  run "delete livejob (text)" 0 "$tmp/delete-live.out" "${H[@]}" delete livejob &&
  if [[ $(cat "$tmp/delete-live.out") == "deleted jobs/livejob" ]]; then ok "delete says what it did"; else not_ok "delete says what it did" "$tmp/delete-live.out"; fi
run "update with neither --schedule, --scale nor --pin: exit 2" 2 "$tmp/update-bad.out" \
  "${H[@]}" update livejob --from 40 --json

# --- watch --------------------------------------------------------------------------------------------------------------
"${T[@]}" "${H[@]}" watch plotjob --interval 200ms --count 5 --json >"$tmp/watch.json" 2>"$tmp/watch.err" &
watch_pid=$!
# Wait for the initial event, then delete the job from another command.
for _ in $(seq 100); do
  [[ -s $tmp/watch.json ]] && break
  sleep 0.1
done
run "delete --json while watch runs" 0 "$tmp/delete.json" "${H[@]}" delete plotjob --json &&
  py "delete --json prints {}" "$tmp/delete.json" '
import json, sys
assert json.load(open(sys.argv[1])) == {}'
rc=0
wait "$watch_pid" || rc=$?
watch_pid=""
if [[ $rc -eq 0 ]]; then ok "watch --count 5 exits 0 when the job is deleted"; else not_ok "watch exits 0 when the job is deleted (exit $rc)" "$tmp/watch.err" "$tmp/watch.json"; fi
py "watch --json: an initial event with the job, then deleted" "$tmp/watch.json" '
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert [e["event"] for e in events] == ["initial", "deleted"], events
assert events[0]["job"]["name"] == "jobs/plotjob" and events[1]["name"] == "jobs/plotjob"
assert all(e["time"].endswith("Z") or "+00:00" in e["time"] for e in events)'
run "watch --count 1 --watch_timeout 1s without changes: exit 1" 1 "$tmp/watch2.out" \
  "${H[@]}" watch stepjob --interval 200ms --count 1 --watch_timeout 1s --json &&
  py "watch timing out: the initial event, then a JSON DEADLINE_EXCEEDED error" "$tmp/watch2.out.err" "
import json, sys
e = json.load(open(sys.argv[1])); assert e['code'] == 'DEADLINE_EXCEEDED', e
assert json.loads(open('$tmp/watch2.out').read().splitlines()[0])['event'] == 'initial'"
run "watch --watch_timeout 1s (no --count): exit 0" 0 "$tmp/watch3.out" \
  "${H[@]}" watch stepjob --interval 200ms --watch_timeout 1s &&
  if grep -Eq '^[0-9T:.+-]+(Z)? initial jobs/stepjob version=1 etag=' "$tmp/watch3.out"; then
    ok "watch prints 'TIME initial jobs/stepjob version=1 etag=...'"
  else
    not_ok "watch prints 'TIME initial jobs/stepjob version=1 etag=...'" "$tmp/watch3.out"
  fi
run "watch of a missing job: exit 1" 1 "$tmp/watch4.out" "${H[@]}" watch plotjob --interval 200ms

# --- errors with --json ---------------------------------------------------------------------------------------------------
json_error() { # json_error NAME WANT_RC CODE CMD...: exits WANT_RC with {"code": CODE, "message": ...} on stderr.
  local name=$1 want=$2 code=$3
  shift 3
  run "$name: exit $want" "$want" "$tmp/err.out" "$@" &&
    py "$name: $code as JSON on stderr, nothing on stdout" "$tmp/err.out.err" "
import json, sys
e = json.load(open(sys.argv[1])); assert e['code'] == '$code' and e['message'], e
assert open('$tmp/err.out').read() == ''"
}
json_error "get --json of a deleted job" 1 NOT_FOUND "${H[@]}" get plotjob --json
json_error "create --json with step_size 0" 2 INVALID_ARGUMENT "${H[@]}" create bad --schedule '{"step":{"step_size":0}}' --json
json_error "values --json with bad --steps" 2 INVALID_ARGUMENT "${H[@]}" values stepjob --steps 5:1 --json
json_error "plot --json of a missing job" 1 NOT_FOUND "${H[@]}" plot nosuchjob --json
json_error "plot --local --json with a bad schedule" 2 INVALID_ARGUMENT "$CLI" plot --local --schedule '{"cosine_annealing":{"t_max":0}}' --json
json_error "unknown command --json" 2 INVALID_ARGUMENT "$CLI" frobnicate --json
run "get of a deleted job without --json: NOT_FOUND text on stderr" 1 "$tmp/nf.out" "${H[@]}" get plotjob &&
  if grep -q '^hpsched: NOT_FOUND' "$tmp/nf.out.err"; then ok "text errors unchanged"; else not_ok "text errors unchanged" "$tmp/nf.out.err"; fi

# --- Stop the server ----------------------------------------------------------------------------------------------------
kill -TERM "$server_pid" 2>/dev/null || true
rc=0
for _ in $(seq 100); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
wait "$server_pid" || rc=$?
server_pid=""
if [[ $rc -eq 0 ]]; then ok "SIGTERM: the server exits 0"; else not_ok "SIGTERM: the server exits 0 (exit $rc)" "$tmp/server.log"; fi

summary
