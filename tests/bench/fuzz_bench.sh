#!/usr/bin/env bash
# Fuzzer figures: every target of tests/fuzz/run-fuzzers (clang, ASan + UBSan) run for one
# million executions; per target: executions, seconds, executions per second, peak RSS and
# crashes. Fails only when a target crashes or gives no figures.
# usage: fuzz_bench.sh BUILDDIR [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../fuzz/run-fuzzers" "${1:?usage: fuzz_bench.sh BUILDDIR [RUNS]}" --runs "${2:-1000000}"
