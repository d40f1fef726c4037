#!/usr/bin/env bash
# Builds the whole tree with a sanitizer (GCC) and runs every ctest test under it (docs/testing.md).
#
#   tools/sanitize.sh asan [CTEST_ARGS...]   build-asan: AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer
#   tools/sanitize.sh tsan [CTEST_ARGS...]   build-tsan: ThreadSanitizer (see cmake/Sanitizers.cmake, tools/tsan.supp)
#
# CTEST_ARGS go to ctest (e.g. -R scheduler_service). BUILD_DIR overrides the build directory, JOBS the parallelism,
# SANITIZER_OPTIONS_EXTRA adds sanitizer options (e.g. halt_on_error=0).
# Every instrumented process, including the servers that the Python and shell tests start, inherits the options
# below and writes any ASan/LSan/TSan report to BUILD_DIR/sanitizer-logs/ (to the file, not to the test's output), so
# a report is caught even where a test swallows its subprocess's stderr; UBSan reports (stderr, see below) are also
# fatal (-fno-sanitize-recover=all) and are looked for in ctest's log. Prints each report, the wall times, and
# exits non-zero when the build fails, a test fails, or any report was written.
set -uo pipefail

usage() {
  echo "usage: $0 asan|tsan [CTEST_ARGS...]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
mode=$1
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case $mode in
  asan) sanitize=address ;;
  tsan) sanitize=thread ;;
  *) usage ;;
esac
build=${BUILD_DIR:-$root/build-$mode}
jobs=${JOBS:-$(nproc)}
logs="$build/sanitizer-logs"

configure=(-S "$root" -B "$build" -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
           -DHPSCHED_SANITIZE="$sanitize" -DHPSCHED_FUZZ=OFF -DHPSCHED_BUILD_BENCH=OFF)
# Until the top-level CMakeLists.txt includes cmake/Sanitizers.cmake itself, CMake includes it after project().
if ! grep -q 'cmake/Sanitizers.cmake' "$root/CMakeLists.txt"; then
  configure+=(-DCMAKE_PROJECT_INCLUDE="$root/cmake/Sanitizers.cmake")
fi

t0=$SECONDS
echo "== $mode: configure and build $build (-j $jobs)"
if ! cmake "${configure[@]}" >/dev/null || ! cmake --build "$build" -j "$jobs"; then
  echo "FAILED: $mode build"
  exit 1
fi
build_seconds=$((SECONDS - t0))

rm -rf "$logs"
mkdir -p "$logs"
common="print_stacktrace=1:halt_on_error=1"
if [[ $mode == asan ]]; then
  export ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1:log_path=$logs/asan"
  export UBSAN_OPTIONS="$common:log_path=$logs/ubsan"
else
  # The build itself sets ignore_noninstrumented_modules=1, compiles in tools/tsan.supp and makes absl::Mutex visible
  # to TSan (cmake/Sanitizers.cmake), so any process of it, whatever its environment, reports the same way.
  export TSAN_OPTIONS="$common:second_deadlock_stack=1:log_path=$logs/tsan"
fi

# Extra options for whichever sanitizer runs, appended last so they win; e.g. halt_on_error=0 to list every report of a
# process instead of stopping at the first (the run still fails on any report).
if [[ -n ${SANITIZER_OPTIONS_EXTRA:-} ]]; then
  for var in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS; do
    [[ -n ${!var:-} ]] && export "$var=${!var}:$SANITIZER_OPTIONS_EXTRA"
  done
fi

t1=$SECONDS
echo "== $mode: ctest -j $jobs $*"
(cd "$build" && ctest --output-on-failure -j "$jobs" "$@")
ctest_rc=$?
test_seconds=$((SECONDS - t1))

reports=("$logs"/*)
[[ -e ${reports[0]} ]] || reports=()
for report in "${reports[@]}"; do
  echo "== report $(basename "$report"):"
  cat "$report"
done
# GCC's UBSan runtime ignores log_path when it shares the process with ASan and reports on stderr; ctest keeps every
# test's output, passed or not, in LastTest.log.
pattern='runtime error:|ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|SUMMARY: [A-Za-z]+Sanitizer'
if grep -q -E "$pattern" "$build/Testing/Temporary/LastTest.log" 2>/dev/null; then
  grep -E "$pattern" "$build/Testing/Temporary/LastTest.log" >"$logs/from-test-output.txt"
  echo "== reports in test output (see $build/Testing/Temporary/LastTest.log):"
  cat "$logs/from-test-output.txt"
  reports+=("$logs/from-test-output.txt")
fi
echo "== $mode: build ${build_seconds} s, tests ${test_seconds} s; ctest exit $ctest_rc, ${#reports[@]} sanitizer report(s) in $logs"
if [[ $ctest_rc -ne 0 || ${#reports[@]} -gt 0 ]]; then
  exit 1
fi
