# Shared by the shell tests: TAP-like check reporting and process cleanup. Source it after setting `tmp`.
#   ok NAME | not_ok NAME [FILE...] | summary | stop_process PID
# The counters `passed` and `failed` start at 0; `summary` prints "N passed, M failed" and fails when M > 0.
passed=0
failed=0

ok() {
  passed=$((passed + 1))
  echo "ok - $1"
}

# not_ok NAME [FILE...]: a failed check, with the files (command output) indented below it.
not_ok() {
  failed=$((failed + 1))
  echo "not ok - $1"
  shift
  local f
  for f in "$@"; do
    [[ -s $f ]] && head -c 4000 "$f" | sed 's/^/#   /'
  done
  return 0
}

summary() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}

# stop_process PID: SIGTERM, then SIGKILL after 10 s; returns at once if PID is empty or gone.
stop_process() {
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# wait_for_port PORT_FILE PID: waits up to 10 s for the server PID to write its port; sets `port` (empty on failure).
wait_for_port() {
  local file=$1 pid=$2
  port=""
  for _ in $(seq 100); do
    if [[ -s $file ]]; then
      port=$(tr -d '[:space:]' <"$file")
      [[ $port =~ ^[0-9]+$ && $port -gt 0 ]] && return 0
      port=""
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
