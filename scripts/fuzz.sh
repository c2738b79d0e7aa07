#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for FUZZ_SECONDS seconds each (default 20), starting from
# the seeds in fuzz/seeds/<target>/. Exits non-zero if any target crashes (a panic, a failed
# property assertion, a sanitizer report, a timeout or running out of memory), after printing
# the crashing input in base64.
#
#   scripts/fuzz.sh                          # every target, 20 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh tile_path entry_decode
#
# New inputs go to fuzz/corpus/<target>/, crashes to fuzz/artifacts/<target>/ (both ignored
# by git). Reproduce a crash with:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/crash-...
set -euo pipefail

cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
ALL_TARGETS=(note_parse statement_validation tile_path proof_verification entry_decode)
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi

# This machine has only the stable toolchain and no nightly can be fetched. cargo-fuzz needs
# nightly-only compiler flags: -Zsanitizer=address (AddressSanitizer) and, through cargo, the
# sanitizer-coverage instrumentation that libFuzzer feeds on. RUSTC_BOOTSTRAP=1 lets a stable
# rustc (and cargo) accept -Z flags, as it does when building the compiler itself. The stable
# rust-std for x86_64-unknown-linux-gnu ships the sanitizer runtimes
# (librustc-stable_rt.asan.a), so ASan links. It is set for the fuzz builds only, never for
# the project's own build or tests.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building fuzz targets: ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
    cargo fuzz build "$t"
done

failed=()
summary=()
for t in "${TARGETS[@]}"; do
    log="fuzz/artifacts/$t.log"
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
    # The first corpus directory receives new inputs; the seeds are only read.
    # -timeout: an input that takes 10 s is reported as a crash (a hang), not waited for.
    set +e
    cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    if [ -z "$runs" ]; then
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    fi
    if [ "$rc" -eq 0 ]; then
        summary+=("$t: ok, ${runs:-?} executions in ${SECONDS_PER_TARGET}s")
    else
        failed+=("$t")
        summary+=("$t: FAILED (exit $rc) after ${runs:-?} executions")
        echo "---- $t failed; the end of its log ($log):"
        tail -n 60 "$log"
        for a in $(grep -oE "fuzz/artifacts/$t/[a-z]+-[0-9a-f]+" "$log" | sort -u); do
            [ -f "$a" ] || continue
            echo "---- crashing input $a (base64):"
            base64 -w0 "$a"
            echo
        done
    fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]}"
    exit 1
fi
