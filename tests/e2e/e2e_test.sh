#!/usr/bin/env bash
# End-to-end test of hpsched: the real server on a free loopback port, driven by clients we did not write (buf curl
# through server reflection, Python grpcio with stubs generated from the protos) and by our own clients (the toy
# trainer against PyTorch, the hpsched CLI).
#
#   bash tests/e2e/e2e_test.sh BUILD_DIR
#
# Prints "ok - ..." / "not ok - ..." per check and ends with "N passed, M failed"; exits 0 only if M is 0.
# Needs /usr/bin/python3 with torch, grpcio and protobuf; protoc and grpc_python_plugin; tools/node_modules/.bin/buf.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! build=$(cd "$1" 2>/dev/null && pwd); then
  echo "not ok - build directory $1 exists"
  echo "0 passed, 1 failed"
  exit 1
fi

PY=/usr/bin/python3
BUF="$root/tools/node_modules/.bin/buf"
SERVER="$build/server/hpsched-server"
CLI="$build/client/hpsched"
TRAINER="$build/client/toy-trainer"
CHECKS="$here/e2e_checks.py"
GOLDEN="$root/tests/golden/torch_golden.json"
# Every client command is bounded, so a hung call fails its check instead of the whole test timing out.
T=(timeout 60)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpsched-e2e.XXXXXX")
export BUF_CACHE_DIR="$tmp/buf-cache"
server_pid=""
source "$here/../lib/checks.sh"
started=$SECONDS

# A failed run keeps the server's log in BUILD/test-logs/e2e/RUN/ (the temporary directory goes) and prints its tail.
logs="$build/test-logs/e2e/$(date +%Y%m%dT%H%M%S)-$$"
cleanup() {
  local rc=$?
  stop_process "$server_pid"
  if [[ $rc -ne 0 && -f $tmp/server.log ]]; then
    mkdir -p "$logs"
    cp "$tmp/server.log" "$logs/server.log"
    {
      echo "--- $logs/server.log (last 80 lines; the file is kept) ---"
      tail -n 80 "$logs/server.log"
      echo "--- end of $logs/server.log ---"
    } >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# check NAME CMD...: ok if CMD exits 0; otherwise prints its output.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/check.out" 2>&1; then
    ok "$name"
  else
    not_ok "$name (exit $?)" "$tmp/check.out"
  fi
}

for bin in "$SERVER" "$CLI" "$TRAINER" "$BUF" "$PY"; do
  if [[ ! -x $bin ]]; then
    not_ok "executable $bin exists"
    summary
    exit 1
  fi
done

# --- 1. The server, on a free loopback port --------------------------------------------------------------------------
"$SERVER" --address=127.0.0.1 --port=0 --port_file="$tmp/port" --data_dir="$tmp/data" --metrics_port=0 --http_port=0 --log_level=info >"$tmp/server.log" 2>&1 &
server_pid=$!
if ! wait_for_port "$tmp/port" "$server_pid"; then
  not_ok "server writes its port file within 10 s" "$tmp/server.log"
  summary
  exit 1
fi
ok "server started, serving on 127.0.0.1:$port (port file)"
target="127.0.0.1:$port"
url="http://$target"

server_alive() {
  if kill -0 "$server_pid" 2>/dev/null; then
    ok "server still running $1"
  else
    not_ok "server still running $1" "$tmp/server.log"
  fi
}

# --- 2. buf lint -----------------------------------------------------------------------------------------------------
check "buf lint (proto/buf.yaml)" bash -c "cd '$root/proto' && timeout 60 '$BUF' lint"

# --- 3. buf curl, through server reflection only ---------------------------------------------------------------------
bufcurl() { "${T[@]}" "$BUF" curl --protocol grpc --http2-prior-knowledge --connect-timeout 10 "$@"; }

# call NAME SERVICE/METHOD JSON OUT CHECK...: ok if the call succeeds and `e2e_checks.py CHECK... OUT` holds.
call() {
  local name=$1 method=$2 data=$3 out=$4
  shift 4
  local rc=0
  bufcurl -d "$data" "$url/$method" >"$out" 2>"$out.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    not_ok "$name (buf curl exit $rc)" "$out.err" "$out"
  elif [[ $# -gt 0 ]] && ! "$PY" "$CHECKS" "$1" "$out" "${@:2}" >"$tmp/check.out" 2>&1; then
    not_ok "$name" "$tmp/check.out" "$out"
  else
    ok "$name"
  fi
}

# call_fails NAME SERVICE/METHOD JSON CODE [SUBSTRING]: the call fails with CODE (buf curl's JSON error on stderr).
call_fails() {
  local name=$1 method=$2 data=$3 code=$4 substring=${5:-}
  local out="$tmp/err.json" rc=0
  bufcurl -d "$data" "$url/$method" >"$out.stdout" 2>"$out" || rc=$?
  if [[ $rc -eq 0 ]]; then
    not_ok "$name (buf curl succeeded, want $code)" "$out.stdout"
  elif ! "$PY" "$CHECKS" error "$out" "$code" ${substring:+"$substring"} >"$tmp/check.out" 2>&1; then
    not_ok "$name (buf curl exit $rc)" "$tmp/check.out" "$out"
  else
    ok "$name"
  fi
}

svc=hpsched.v1.SchedulerService
rc=0
bufcurl --list-methods "$url" >"$tmp/methods.txt" 2>"$tmp/methods.err" || rc=$?
if [[ $rc -ne 0 ]]; then
  not_ok "buf curl --list-methods (buf curl exit $rc)" "$tmp/methods.err"
elif ! "$PY" "$CHECKS" methods "$tmp/methods.txt" >"$tmp/check.out" 2>&1; then
  not_ok "buf curl --list-methods lists the 11 SchedulerService methods" "$tmp/check.out" "$tmp/methods.txt"
else
  ok "buf curl --list-methods lists the 11 SchedulerService methods"
fi

call "health Check {} is SERVING" grpc.health.v1.Health/Check '{}' "$tmp/health.json" health
call "health Check $svc is SERVING" grpc.health.v1.Health/Check "{\"service\":\"$svc\"}" "$tmp/health2.json" health

demo='{"job_id":"demo","job":{"hyperparameters":[{"name":"lr","base_values":[0.1],"schedule":{"step":{"step_size":10,"gamma":0.5}}}]}}'
call "CreateJob demo" $svc/CreateJob "$demo" "$tmp/create1.json" job demo
call "CreateJob demo again is idempotent" $svc/CreateJob "$demo" "$tmp/create2.json" same-job "$tmp/create1.json"
other='{"job_id":"demo","job":{"hyperparameters":[{"name":"lr","base_values":[0.2],"schedule":{"step":{"step_size":10,"gamma":0.5}}}]}}'
call_fails "CreateJob demo with a different spec is already_exists" $svc/CreateJob "$other" already_exists
call "GetJob jobs/demo" $svc/GetJob '{"name":"jobs/demo"}' "$tmp/get.json" same-job "$tmp/create1.json"
call "ListJobs has jobs/demo" $svc/ListJobs '{}' "$tmp/list.json" list-has jobs/demo
call "GetValues steps 0-29 are StepLR's (0.1, 0.05, 0.025), lr field" $svc/GetValues \
  '{"job":"jobs/demo","step":0,"count":30}' "$tmp/values.json" steplr 0 30
call "BatchGetValues of two requests" $svc/BatchGetValues \
  '{"requests":[{"job":"jobs/demo","step":0,"count":5},{"job":"demo","step":25,"count":5}]}' "$tmp/batch.json" batch
call "Preview StepLR, two groups" $svc/Preview \
  '{"schedule":{"step":{"step_size":10,"gamma":0.5}},"base_values":[0.1,0.01],"start_step":0,"count":30}' \
  "$tmp/preview.json" preview
call_fails "GetValues of an unknown job is not_found" $svc/GetValues '{"job":"jobs/no-such-job","step":0}' not_found
call_fails "CreateJob with cosine_annealing t_max 0 is invalid_argument naming t_max" $svc/CreateJob \
  '{"job_id":"bad","job":{"hyperparameters":[{"name":"lr","base_values":[0.1],"schedule":{"cosine_annealing":{"t_max":0}}}]}}' \
  invalid_argument t_max
call_fails "Preview with cosine_annealing t_max 0 is invalid_argument naming t_max" $svc/Preview \
  '{"schedule":{"cosine_annealing":{"t_max":0}},"base_values":[0.1]}' invalid_argument t_max
call "DeleteJob jobs/demo" $svc/DeleteJob '{"name":"jobs/demo"}' "$tmp/delete.json"
call_fails "GetJob after DeleteJob is not_found" $svc/GetJob '{"name":"jobs/demo"}' not_found
server_alive "after the error calls"
call "ListJobs still answers after the errors" $svc/ListJobs '{}' "$tmp/list2.json"

# --- 4. Python grpcio against the PyTorch golden values --------------------------------------------------------------
check "grpcio: every golden case through CreateJob + GetValues (1e-12), BatchGetValues == GetValues" \
  "${T[@]}" "$PY" "$here/grpcio_golden.py" "$target" "$GOLDEN"
tail -n 1 "$tmp/check.out" | sed 's/^/# grpcio: /'

# --- 5. The toy trainer against the same loop in PyTorch -------------------------------------------------------------
# trainer_vs_torch NAME LOOP TRAINER_ARGS...: the trainer's "Epoch NN - LR: X" lines equal PyTorch's; its loss falls.
trainer_vs_torch() {
  local name=$1 loop=$2
  shift 2
  local out="$tmp/trainer-$loop.out" rc=0
  "${T[@]}" "$TRAINER" --target="$target" "$@" >"$out" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then ok "toy-trainer $name exits 0"; else not_ok "toy-trainer $name exits 0 (exit $rc)" "$out"; fi
  grep -E '^Epoch [0-9]+ - LR: ' "$out" >"$out.lr" || true
  if ! "${T[@]}" "$PY" "$CHECKS" torch-loop "$loop" >"$out.torch" 2>"$out.torch.err"; then
    not_ok "PyTorch loop $loop runs" "$out.torch.err"
  elif [[ $(wc -l <"$out.torch") -ne 30 ]]; then
    not_ok "PyTorch loop $loop prints 30 epochs" "$out.torch"
  elif diff -u "$out.torch" "$out.lr" >"$out.diff"; then
    ok "toy-trainer $name: the 30 'Epoch NN - LR' lines equal PyTorch's"
  else
    not_ok "toy-trainer $name: the 30 'Epoch NN - LR' lines equal PyTorch's (diff -u torch trainer)" "$out.diff"
  fi
  check "toy-trainer $name: the loss falls" "$PY" "$CHECKS" loss-falls "$out"
}
trainer_vs_torch "StepLR(10, 0.5) (defaults)" step
trainer_vs_torch "CosineAnnealingLR(T_max=20)" cosine --job_id toy-cos --schedule '{"cosine_annealing":{"t_max":20}}'

# --- 6. The CLI --------------------------------------------------------------------------------------------------------
# run NAME OUT CMD...: ok if CMD exits 0 (stdout to OUT, stderr to OUT.err); returns CMD's status.
run() {
  local name=$1 out=$2
  shift 2
  local rc=0
  "$@" >"$out" 2>"$out.err" || rc=$?
  if [[ $rc -eq 0 ]]; then ok "$name"; else not_ok "$name (exit $rc)" "$out.err" "$out"; fi
  return $rc
}

seq_spec='{"sequential":{"schedules":[{"linear":{"start_factor":0.1,"total_iters":5}},{"cosine_annealing":{"t_max":95}}],"milestones":[5]}}'
if run "hpsched preview --local (sequential linear+cosine, 2 groups, steps 0:100)" "$tmp/preview-local.out" \
  "${T[@]}" "$CLI" preview --local --schedule "$seq_spec" --base 0.1,0.01 --steps 0:100; then
  check "hpsched preview --local prints 100 lines 'step<TAB>v0<TAB>v1'" "$PY" "$CHECKS" rows "$tmp/preview-local.out" 100 2
fi
if run "hpsched preview against the server" "$tmp/preview-remote.out" \
  "${T[@]}" "$CLI" --target="$target" preview --schedule "$seq_spec" --base 0.1,0.01 --steps 0:100; then
  if cmp -s "$tmp/preview-local.out" "$tmp/preview-remote.out"; then
    ok "hpsched preview: --local and the server print identical output"
  else
    diff -u "$tmp/preview-local.out" "$tmp/preview-remote.out" >"$tmp/preview.diff" || true
    not_ok "hpsched preview: --local and the server print identical output" "$tmp/preview.diff"
  fi
fi

# golden_preview CASE STEPS: `hpsched preview --local` agrees with the golden case's points within STEPS.
golden_preview() {
  local name=$1 steps=$2 spec bases
  if ! "$PY" "$CHECKS" golden-spec "$GOLDEN" "$name" >"$tmp/spec.txt" 2>&1; then
    not_ok "golden case $name exists" "$tmp/spec.txt"
    return 0
  fi
  spec=$(sed -n 1p "$tmp/spec.txt")
  bases=$(sed -n 2p "$tmp/spec.txt")
  if run "hpsched preview --local golden $name steps $steps" "$tmp/golden-$name.out" \
    "${T[@]}" "$CLI" preview --local --schedule "$spec" --base "$bases" --steps "$steps"; then
    check "hpsched preview --local golden $name steps $steps: PyTorch's values (1e-12)" \
      "$PY" "$CHECKS" golden-rows "$tmp/golden-$name.out" "$GOLDEN" "$name"
  fi
}
golden_preview cawr_t0_10_tmult3 1195:1225
golden_preview one_cycle_max1_total100 0:100
golden_preview one_cycle_pct0.25_total1000 0:1000

exp_spec='{"exponential":{"gamma":0.9}}'
run "hpsched create cli-exp" "$tmp/cli-create.out" \
  "${T[@]}" "$CLI" --target="$target" create cli-exp --schedule "$exp_spec" --base 0.1 &&
  check "hpsched create prints the job" "$PY" "$CHECKS" cli-job "$tmp/cli-create.out" cli-exp
run "hpsched get cli-exp" "$tmp/cli-get.out" "${T[@]}" "$CLI" --target="$target" get cli-exp &&
  check "hpsched get prints the job" "$PY" "$CHECKS" cli-job "$tmp/cli-get.out" cli-exp
run "hpsched values cli-exp --steps 0:50" "$tmp/cli-values.out" \
  "${T[@]}" "$CLI" --target="$target" values cli-exp --steps 0:50 &&
  check "hpsched values prints 0.1 * 0.9^step for steps 0-49" \
    "$PY" "$CHECKS" values-rows "$tmp/cli-values.out" 0 50 "0.1 * 0.9 ** step"
run "hpsched list" "$tmp/cli-list.out" "${T[@]}" "$CLI" --target="$target" list --page_size 7 &&
  check "hpsched list (pages of 7) has cli-exp, toy-trainer, toy-cos and the golden jobs, in order" \
    "$PY" "$CHECKS" cli-list-has "$tmp/cli-list.out" jobs/cli-exp jobs/toy-trainer jobs/toy-cos jobs/golden-0 jobs/golden-82
run "hpsched delete cli-exp" "$tmp/cli-delete.out" "${T[@]}" "$CLI" --target="$target" delete cli-exp || true

# cli_not_found NAME ID: `hpsched get ID` exits non-zero with NOT_FOUND on stderr.
cli_not_found() {
  local name=$1 id=$2 rc=0
  "${T[@]}" "$CLI" --target="$target" get "$id" >"$tmp/nf.out" 2>"$tmp/nf.err" || rc=$?
  if [[ $rc -ne 0 ]] && grep -q NOT_FOUND "$tmp/nf.err"; then
    ok "$name"
  else
    not_ok "$name (exit $rc)" "$tmp/nf.err" "$tmp/nf.out"
  fi
}
cli_not_found "hpsched get cli-exp after delete: non-zero exit, NOT_FOUND on stderr" cli-exp
cli_not_found "hpsched get nonexistent: non-zero exit, NOT_FOUND on stderr" nonexistent

# --- Graceful shutdown -----------------------------------------------------------------------------------------------
server_alive "before shutdown"
kill -TERM "$server_pid" 2>/dev/null || true
stopped=false
for _ in $(seq 100); do # 10 s: the default --shutdown_grace is 5 s, and no call is in flight.
  if ! kill -0 "$server_pid" 2>/dev/null; then
    stopped=true
    break
  fi
  sleep 0.1
done
if $stopped; then
  rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  if [[ $rc -eq 0 ]]; then
    ok "SIGTERM: the server stops gracefully, exit 0"
  else
    not_ok "SIGTERM: the server stops gracefully, exit 0 (exit $rc)" "$tmp/server.log"
  fi
else
  not_ok "SIGTERM: the server stops within 10 s" "$tmp/server.log"
fi

summary
