#!/usr/bin/env bash
# Runs every libFuzzer target for FUZZ_SECS seconds (default 120), seeded from tests/corpus, and prints
# one summary line per target. Crashes do not stop a run (-fork=1 -ignore_crashes=1): each one is
# saved under fuzz/artifacts/<target>/ and counted. Stable toolchain: RUSTC_BOOTSTRAP=1, no sanitizer.
#
#   FUZZ_SECS=300 fuzz/run-all.sh            # all targets
#   FUZZ_SECS=60 fuzz/run-all.sh pdf rtf     # some (FUZZ_TARGET_DIR: cargo target dir, default fuzz/target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${FUZZ_SECS:-120}"
target_dir="${FUZZ_TARGET_DIR:-fuzz/target}"
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(text xml html pdf docx pptx xlsx xls odf rtf eml msg gzip)
fi

seeds_for() {
    case "$1" in
        text) echo "txt md markdown rst py rb sh csv tsv json paper" ;;
        xml) echo "xml svg" ;;
        html) echo "html htm aspx" ;;
        odf) echo "odt ods odp" ;;
        xlsx) echo "xlsx xlsm" ;;
        pptx) echo "pptx potx" ;;
        gzip) echo "gz" ;;
        *) echo "$1" ;;
    esac
}

cargo fuzz build -s none -O --target-dir "$target_dir"
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    for ext in $(seeds_for "$t"); do
        cp -n tests/corpus/*."$ext" "$corpus/" 2>/dev/null || true
    done
    log="fuzz/artifacts/$t/run.log"
    cargo fuzz run -s none -O --target-dir "$target_dir" "$t" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 || true
    execs=$(grep -o 'exec/s: [0-9]*' "$log" | tail -n1 | awk '{print $2}')
    runs=$(grep -Eo '#[0-9]+' "$log" | tail -n1 | tr -d '#')
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n1 | awk '{print $2}')
    crashes=$(find "fuzz/artifacts/$t" -name 'crash-*' | wc -l)
    timeouts=$(find "fuzz/artifacts/$t" -name 'timeout-*' | wc -l)
    ooms=$(find "fuzz/artifacts/$t" -name 'oom-*' | wc -l)
    echo "fuzz $t: ${secs}s, runs ${runs:-?}, ${execs:-?} exec/s, cov ${cov:-?}, crashes $crashes, timeouts $timeouts, ooms $ooms"
done
