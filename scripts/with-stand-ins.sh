#!/usr/bin/env bash
# Runs a command with ES_URL and S3_ENDPOINT set: to the caller's values when given (a real cluster, real
# S3), else to freshly started local stand-ins, which are stopped afterwards.
#
#   scripts/with-stand-ins.sh python ftest/ftest.py --data-size small
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAND_INS="${ROOT}/scripts/stand-ins.sh"

"${STAND_INS}" install
if [[ -z "${ES_URL:-}" || -z "${S3_ENDPOINT:-}" ]]; then
    "${STAND_INS}" stop >/dev/null 2>&1 || true
    started="$("${STAND_INS}" start)"
    trap '"${STAND_INS}" stop >/dev/null 2>&1 || true' EXIT
    while IFS='=' read -r key value; do
        case "${key}" in
            ES_URL) [[ -n "${ES_URL:-}" ]] || export ES_URL="${value}" ;;
            S3_ENDPOINT) [[ -n "${S3_ENDPOINT:-}" ]] || export S3_ENDPOINT="${value}" ;;
        esac
    done <<<"${started}"
fi
echo "using Elasticsearch at ${ES_URL} and S3 at ${S3_ENDPOINT}"
"$@"
