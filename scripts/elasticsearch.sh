#!/usr/bin/env bash
# A real single-node Elasticsearch for tests, demos and benchmarks (docs/testing.md).
#
#   scripts/elasticsearch.sh start    # prints exactly one line on stdout: ES_URL=http://127.0.0.1:<port>
#   scripts/elasticsearch.sh stop     # stops the node and removes its data
#   scripts/elasticsearch.sh url      # prints ES_URL=... of the running node (exit 1 when none runs)
#   scripts/elasticsearch.sh install  # only fetch and unpack the distribution
#
# The distribution is Elasticsearch's own integ-test zip, published to Maven Central as
# org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip: the real server (Lucene, the REST
# layer, x-pack-core and -security on 9.x) without the optional modules (no _connector API, no ingest processors,
# no painless, no rest-root: `GET /` answers 405). Maven fetches it once into its local repository; it is
# unpacked once into .local/elasticsearch/<version>/.
#
# Environment:
#   ES_VERSION     default 9.5.4 (the newest 9.x published there that we run); 8.x versions run on Java 17
#   ES_JAVA_HOME   the JDK to run it with; default: Temurin 25 (or any JDK >= 21 in /usr/lib/jvm) for 9.x, the
#                  default java for 8.x
#   ES_HEAP        heap size, default 512m (the node's RSS is then about 0.8 GiB)
#   ES_RUN_DIR     where config, data, logs and the pid file live; default .local/elasticsearch/$ES_RUN_NAME
#   ES_RUN_NAME    default run; several nodes can run side by side under different names
#   ES_USER        the unprivileged user to run it as when this script runs as root; default esit
#                  (created when missing: Elasticsearch refuses to run as root)
set -euo pipefail

ES_VERSION="${ES_VERSION:-9.5.4}"
ES_HEAP="${ES_HEAP:-512m}"
ES_USER="${ES_USER:-esit}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
M2_REPO="${M2_REPO:-${HOME}/.m2/repository}"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"

log() { echo "elasticsearch.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# When run as root the node runs as ES_USER, who must reach the distribution and the run directory:
# a clone under a private home (e.g. /root) is not reachable, and then both live under /var/tmp.
if ((EUID == 0)); then
    id "${ES_USER}" >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin "${ES_USER}" ||
        die "cannot create the user ${ES_USER} to run Elasticsearch as"
fi
BASE="${ROOT}/.local/elasticsearch"
if ((EUID == 0)) && ! runuser -u "${ES_USER}" -- test -x "${ROOT}"; then
    BASE="/var/tmp/content-sync-elasticsearch"
fi
RUN="${ES_RUN_DIR:-${BASE}/${ES_RUN_NAME:-run}}"
DIST="${BASE}/${ES_VERSION}/elasticsearch-${ES_VERSION}"

major() { echo "${ES_VERSION%%.*}"; }

# A JDK that runs this version: 9.x needs Java 21+, 8.x runs on 17.
java_home() {
    if [[ -n "${ES_JAVA_HOME:-}" ]]; then
        echo "${ES_JAVA_HOME}"
        return
    fi
    if (($(major) < 9)); then
        local java
        java="$(readlink -f "$(command -v java)")" || die "no java on PATH (Elasticsearch ${ES_VERSION} needs 17+)"
        dirname "$(dirname "${java}")"
        return
    fi
    local candidate version
    for candidate in /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
        [[ -x "${candidate}/bin/java" ]] || continue
        version="$("${candidate}/bin/java" -XshowSettings:properties -version 2>&1 |
            sed -n 's/^ *java.specification.version = //p')"
        if [[ "${version}" =~ ^[0-9]+$ ]] && ((version >= 21)); then
            echo "${candidate}"
            return
        fi
    done
    die "Elasticsearch ${ES_VERSION} needs Java 21 or newer: set ES_JAVA_HOME"
}

# Extracts a zip keeping the executable bits (Python's zipfile alone drops them; unzip may be absent).
unzip_to() {
    python3 - "$1" "$2" <<'EOF'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
EOF
}

cmd_install() {
    [[ -x "${DIST}/bin/elasticsearch" ]] && return 0
    command -v mvn >/dev/null || die "maven (mvn) is needed to fetch ${ARTIFACT}"
    local zip="${M2_REPO}/org/elasticsearch/distribution/integ-test-zip/elasticsearch/${ES_VERSION}/elasticsearch-${ES_VERSION}.zip"
    if [[ ! -f "${zip}" ]]; then
        log "fetching ${ARTIFACT} with maven"
        mvn -B -q -Dmaven.repo.local="${M2_REPO}" \
            org.apache.maven.plugins:maven-dependency-plugin:3.6.1:get \
            -Dartifact="${ARTIFACT}" -Dtransitive=false >&2 ||
            die "maven could not fetch ${ARTIFACT} (is ES_VERSION=${ES_VERSION} published as an integ-test zip?)"
    fi
    local tmp="${BASE}/${ES_VERSION}.partial"
    rm -rf "${tmp}"
    mkdir -p "${tmp}"
    unzip_to "${zip}" "${tmp}"
    rm -rf "${BASE:?}/${ES_VERSION}"
    mv "${tmp}" "${BASE}/${ES_VERSION}"
    log "unpacked Elasticsearch ${ES_VERSION} into ${BASE}/${ES_VERSION}"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pid_alive() {
    [[ -f "${RUN}/es.pid" ]] && kill -0 "$(cat "${RUN}/es.pid")" 2>/dev/null
}

# Runs a command as the unprivileged user when we are root, else as ourselves.
as_es_user() {
    if ((EUID == 0)); then
        runuser -u "${ES_USER}" -- "$@"
    else
        "$@"
    fi
}

# Every directory above the distribution and the run directory must be traversable by that user.
ensure_reachable() {
    ((EUID == 0)) || return 0
    local dir
    for dir in "${DIST}" "${RUN}"; do
        as_es_user test -x "${dir}" ||
            die "${ES_USER} cannot reach ${dir}; set ES_RUN_DIR to a directory others can traverse"
    done
}

wait_ready() {
    local url="$1" i
    for ((i = 0; i < 240; i++)); do
        if curl -sf -o /dev/null --max-time 2 "${url}/_cluster/health?wait_for_status=yellow&timeout=1s"; then
            return 0
        fi
        pid_alive || return 1
        sleep 0.5
    done
    return 1
}

cmd_start() {
    if pid_alive && [[ -f "${RUN}/es_url" ]]; then
        log "already running (pid $(cat "${RUN}/es.pid"))"
        echo "ES_URL=$(cat "${RUN}/es_url")"
        return 0
    fi
    cmd_install
    local jdk http_port transport_port url started
    jdk="$(java_home)"
    rm -rf "${RUN}"
    mkdir -p "${RUN}/data" "${RUN}/logs"
    chmod 755 "${BASE}"
    cp -r "${DIST}/config" "${RUN}/config"
    http_port="$(free_port)"
    transport_port="$(free_port)"
    {
        echo "cluster.name: content-sync-test"
        echo "discovery.type: single-node"
        echo "network.host: 127.0.0.1"
        echo "http.port: ${http_port}"
        echo "transport.port: ${transport_port}"
        echo "path.data: ${RUN}/data"
        echo "path.logs: ${RUN}/logs"
        echo "cluster.routing.allocation.disk.threshold_enabled: false"
        echo "action.destructive_requires_name: false"
        # 9.x ships x-pack-security in this zip: without this line its first start auto-configures TLS and a
        # keystore the node then refuses. 8.x has no x-pack here, and an unknown setting is fatal.
        if [[ -d "${DIST}/modules/x-pack-security" ]]; then
            echo "xpack.security.enabled: false"
        fi
    } >>"${RUN}/config/elasticsearch.yml"
    mkdir -p "${RUN}/config/jvm.options.d"
    printf -- '-Xms%s\n-Xmx%s\n' "${ES_HEAP}" "${ES_HEAP}" >"${RUN}/config/jvm.options.d/heap.options"
    ((EUID == 0)) && chown -R "${ES_USER}" "${RUN}"
    ensure_reachable
    url="http://127.0.0.1:${http_port}"
    started="$(date +%s)"
    log "starting Elasticsearch ${ES_VERSION} on ${url} (java: ${jdk})"
    as_es_user env ES_JAVA_HOME="${jdk}" ES_PATH_CONF="${RUN}/config" \
        "${DIST}/bin/elasticsearch" -d -p "${RUN}/es.pid" >"${RUN}/logs/stdout.log" 2>&1 ||
        die "Elasticsearch did not start; see ${RUN}/logs/ ($(tail -n 3 "${RUN}/logs/stdout.log" | tr '\n' ' '))"
    wait_ready "${url}" || {
        cmd_stop
        die "Elasticsearch did not become ready; see ${RUN}/logs/"
    }
    echo "${url}" >"${RUN}/es_url"
    log "ready after $(($(date +%s) - started)) s"
    echo "ES_URL=${url}"
}

cmd_stop() {
    if pid_alive; then
        local pid i
        pid="$(cat "${RUN}/es.pid")"
        kill "${pid}" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "${pid}" 2>/dev/null && kill -9 "${pid}" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -rf "${RUN}"
}

cmd_url() {
    pid_alive && [[ -f "${RUN}/es_url" ]] || die "not running"
    echo "ES_URL=$(cat "${RUN}/es_url")"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    *)
        echo "usage: $0 {start|stop|url|install}" >&2
        exit 2
        ;;
esac
