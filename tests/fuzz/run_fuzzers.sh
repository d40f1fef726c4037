#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build over a copy of its seed corpus (and with its dictionary, NAME.dict) for
# SECONDS each (docs/testing.md).
#
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [FUZZER...]
#
# BUILD_DIR is a build configured with -DHPSCHED_FUZZ=ON (clang); FUZZER names default to all three. The corpus is
# copied to a temporary directory, so a run never writes into the repository; inputs that crash (sanitizer reports,
# broken invariants, timeouts, leaks, out-of-memory) are kept in BUILD_DIR/fuzz-artifacts/FUZZER/. Prints one
# "ok - ..." / "not ok - ..." line per fuzzer with its exec/s, and ends with "N passed, M failed"; exits 1 if M > 0.
#
# Environment: HPSCHED_FUZZ_NONFINITE=abort|report|ignore (see tests/fuzz/fuzz_common.h; default abort), FUZZ_ARGS
# (extra libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-seed=1").
set -uo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS [FUZZER...]" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! build=$(cd "$1" 2>/dev/null && pwd); then
  echo "not ok - build directory $1 exists"
  echo "0 passed, 1 failed"
  exit 1
fi
seconds=$2
shift 2
fuzzers=("$@")
[[ ${#fuzzers[@]} -gt 0 ]] || fuzzers=(schedule_fuzzer expression_fuzzer job_json_fuzzer)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpsched-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Leaks and UBSan reports are fatal (UBSan is also built with -fno-sanitize-recover=all).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:print_stacktrace=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

passed=0
failed=0
for fuzzer in "${fuzzers[@]}"; do
  name=${fuzzer%_fuzzer}
  bin="$build/tests/fuzz/$fuzzer"
  if [[ ! -x $bin ]]; then
    echo "not ok - $fuzzer: $bin is not built (configure with -DHPSCHED_FUZZ=ON and clang, build hpsched_fuzzers)"
    failed=$((failed + 1))
    continue
  fi
  corpus="$tmp/corpus-$name"
  artifacts="$tmp/artifacts-$name"
  mkdir -p "$corpus" "$artifacts"
  cp "$here/corpus/$name"/* "$corpus/"
  seeds=$(find "$corpus" -type f | wc -l)
  log="$tmp/$fuzzer.log"
  dict=()
  [[ -f $here/$name.dict ]] && dict=(-dict="$here/$name.dict")
  # -timeout: one input may take at most 25 s (slow under ASan, far above any real input); -rss_limit_mb: 2 GiB.
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  units=$(find "$corpus" -type f | wc -l)
  stats="${runs:-?} runs, ${rate:-?} exec/s, corpus $seeds -> $units"
  if [[ $rc -eq 0 ]] && ! compgen -G "$artifacts/*" >/dev/null; then
    echo "ok - $fuzzer: ${seconds} s, $stats"
    passed=$((passed + 1))
  else
    keep="$build/fuzz-artifacts/$fuzzer"
    mkdir -p "$keep"
    cp "$artifacts"/* "$keep/" 2>/dev/null
    echo "not ok - $fuzzer: exit $rc, $stats; reproducers in $keep: $(cd "$keep" && ls | tr '\n' ' ')"
    # What broke: the invariant's message or the sanitizer's report, then the tail of the log.
    grep -A 12 -E '^==== hpsched|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" |
      head -40 | sed 's/^/    /'
    echo "    (replay: $bin $keep/<file>)"
    failed=$((failed + 1))
  fi
  if [[ ${HPSCHED_FUZZ_NONFINITE:-} == report ]] && grep -q '^==== hpsched NONFINITE' "$log"; then
    echo "    non-finite findings (reported, not failed):"
    awk '/^==== hpsched NONFINITE/ {p = 1} p {print "    " $0} /^value: / {p = 0}' "$log"
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
