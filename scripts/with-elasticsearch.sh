#!/usr/bin/env bash
# Runs a command with ES_URL set: to the caller's cluster when ES_URL is given, else to a real
# single-node Elasticsearch started for the run (scripts/elasticsearch.sh) and stopped afterwards.
#
#   scripts/with-elasticsearch.sh cargo test
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ES="${ROOT}/scripts/elasticsearch.sh"

if [[ -z "${ES_URL:-}" ]]; then
    # A run of its own, so that a node left by an interrupted run does not get in the way.
    export ES_RUN_NAME="run-$$"
    trap '"${ES}" stop >/dev/null 2>&1 || true' EXIT
    started="$("${ES}" start)"
    export ES_URL="${started#ES_URL=}"
fi
echo "using Elasticsearch at ${ES_URL}" >&2
"$@"
