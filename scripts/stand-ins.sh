#!/usr/bin/env bash
# Local stand-ins for the test world: moto (S3) and osmem-server (Elasticsearch API).
#
#   scripts/stand-ins.sh install   # idempotent: venv in .local/venv + pinned pip installs, and
#                                  # Debian's faketime (clock-skew tests) when missing
#   scripts/stand-ins.sh paths     # prints OSMEM_BIN=..., MOTO_SERVER_BIN=... and LIBFAKETIME=...
#   scripts/stand-ins.sh start     # starts both on free loopback ports, prints ES_URL=... S3_ENDPOINT=...
#   scripts/stand-ins.sh stop      # stops what `start` started
#
# Everything lives under the git-ignored .local/ directory of the repository root.
# The README's Testing section says what each server stands in for and how it differs from the real thing.
set -euo pipefail

MOTO_VERSION="5.2.5"
OSMEM_VERSION="0.1.6"
# The Prometheus text parser the metrics tests check /metrics with (tests/common/prom_parse.py).
PROMETHEUS_CLIENT_VERSION="0.26.0"
PINS="moto[server]==${MOTO_VERSION} osmem-server==${OSMEM_VERSION} prometheus-client==${PROMETHEUS_CLIENT_VERSION}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Their dependencies (boto3, botocore, Flask, …) pinned too: see the file's first lines.
CONSTRAINTS="${ROOT}/scripts/stand-ins-constraints.txt"
LOCAL="${ROOT}/.local"
VENV="${LOCAL}/venv"
STAMP="${VENV}/.stand-ins-stamp"
RUN="${LOCAL}/run"
PYTHON="${PYTHON:-python3}"

die() {
    echo "stand-ins: $*" >&2
    exit 1
}

LIBFAKETIME="${LIBFAKETIME:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}"

# libfaketime runs the binary with its wall clock off (tests/service_cleanup.rs). Installed from
# Debian's packages when we may; otherwise the tests that need it say how to get it.
install_faketime() {
    [[ -e "${LIBFAKETIME}" ]] && return 0
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime >/dev/null; } \
            || echo "stand-ins: could not install faketime (apt-get install faketime)" >&2
    else
        echo "stand-ins: libfaketime missing at ${LIBFAKETIME}; install Debian's faketime package" >&2
    fi
}

cmd_install() {
    install_faketime
    local want
    want="${PINS} $(cksum <"${CONSTRAINTS}")"
    if [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${want}" && -x "${VENV}/bin/python" ]]; then
        return 0
    fi
    mkdir -p "${LOCAL}"
    if [[ ! -x "${VENV}/bin/python" ]]; then
        "${PYTHON}" -m venv "${VENV}"
    fi
    # shellcheck disable=SC2086 # PINS is a list of requirement specifiers
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        --constraint "${CONSTRAINTS}" ${PINS} \
        || die "pip install of ${PINS} (constrained by ${CONSTRAINTS}) failed"
    echo "${want}" >"${STAMP}"
}

osmem_bin() {
    "${VENV}/bin/python" - <<'EOF'
import os, sysconfig
print(os.path.join(sysconfig.get_paths()["purelib"], "osmem_server", "bin", "osmem-server"))
EOF
}

cmd_paths() {
    [[ -x "${VENV}/bin/python" ]] || die "not installed; run: $0 install"
    local osmem moto
    osmem="$(osmem_bin)"
    moto="${VENV}/bin/moto_server"
    [[ -x "${osmem}" ]] || die "osmem-server binary missing at ${osmem}; run: $0 install"
    [[ -x "${moto}" ]] || die "moto_server missing at ${moto}; run: $0 install"
    echo "OSMEM_BIN=${osmem}"
    echo "MOTO_SERVER_BIN=${moto}"
    echo "LIBFAKETIME=${LIBFAKETIME}"
}

# Prints a free loopback TCP port (the kernel picks it; tiny race window until the server binds).
free_port() {
    "${PYTHON}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL TIMEOUT_TENTHS: polls until the URL answers with any HTTP status.
wait_http() {
    local url="$1" tries="$2"
    for ((i = 0; i < tries; i++)); do
        if curl -s -o /dev/null --max-time 1 "${url}"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

pid_alive() {
    [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

cmd_start() {
    cmd_install
    local osmem moto
    osmem="$(osmem_bin)"
    moto="${VENV}/bin/moto_server"
    mkdir -p "${RUN}"
    if pid_alive "${RUN}/osmem.pid" || pid_alive "${RUN}/moto.pid"; then
        die "already running (see ${RUN}); run: $0 stop"
    fi

    # osmem: port 0 lets it pick a free port; its first stdout line is JSON with the URL.
    "${osmem}" -addr 127.0.0.1:0 -no-stdin-watch -no-ja >"${RUN}/osmem.log" 2>&1 </dev/null &
    echo $! >"${RUN}/osmem.pid"

    local s3_port
    s3_port="$(free_port)"
    "${moto}" -H 127.0.0.1 -p "${s3_port}" >"${RUN}/moto.log" 2>&1 </dev/null &
    echo $! >"${RUN}/moto.pid"
    echo "http://127.0.0.1:${s3_port}" >"${RUN}/s3_endpoint"

    local es_url=""
    for ((i = 0; i < 100; i++)); do
        es_url="$(head -n1 "${RUN}/osmem.log" 2>/dev/null \
            | "${PYTHON}" -c 'import json,sys; print(json.loads(sys.stdin.read())["url"])' 2>/dev/null || true)"
        [[ -n "${es_url}" ]] && break
        sleep 0.1
    done
    [[ -n "${es_url}" ]] || { cmd_stop; die "osmem-server did not start; log: ${RUN}/osmem.log"; }
    echo "${es_url}" >"${RUN}/es_url"

    wait_http "${es_url}/" 100 || { cmd_stop; die "osmem-server does not answer; log: ${RUN}/osmem.log"; }
    wait_http "http://127.0.0.1:${s3_port}/moto-api/" 300 \
        || { cmd_stop; die "moto_server does not answer; log: ${RUN}/moto.log"; }

    echo "ES_URL=${es_url}"
    echo "S3_ENDPOINT=http://127.0.0.1:${s3_port}"
}

cmd_stop() {
    local name pidfile pid
    for name in osmem moto; do
        pidfile="${RUN}/${name}.pid"
        [[ -f "${pidfile}" ]] || continue
        pid="$(cat "${pidfile}")"
        if kill -0 "${pid}" 2>/dev/null; then
            kill "${pid}" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                kill -0 "${pid}" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "${pid}" 2>/dev/null && kill -9 "${pid}" 2>/dev/null || true
        fi
        rm -f "${pidfile}"
    done
    rm -f "${RUN}/es_url" "${RUN}/s3_endpoint"
}

case "${1:-}" in
    install) cmd_install ;;
    paths) cmd_paths ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    *)
        echo "usage: $0 {install|paths|start|stop}" >&2
        exit 2
        ;;
esac
