#!/usr/bin/env bash
# The container image, with whichever engine the machine has: Docker when its daemon answers, else
# podman (installed with apt-get when missing and run as root).
#
#   scripts/image.sh build    # `make image`: builds content-sync:latest ($IMAGE) from the Dockerfile
#   scripts/image.sh test     # `make test-image`: runs it as Elastic documents against the stand-ins
#   scripts/image.sh engine   # prints the engine and exits
#
# Base images: pulled as usual when a registry answers. When one cannot be pulled (no registry on this
# project's machines), an equivalent is made locally from Debian packages and tagged with the name the
# Dockerfile uses, so the Dockerfile itself stays the ordinary one:
#   * the runtime base (gcr.io/distroless/cc-debian12:nonroot): libc6, libgcc-s1, ca-certificates,
#     netbase, tzdata and base-files unpacked from the machine's Debian mirror, users root/nonroot/nobody;
#   * the builder (rust:<version>-bookworm): a debootstrap minbase of Debian bookworm with gcc, make and the
#     machine's own Rust toolchain (rustup's active one), and the machine's CA bundle so that cargo
#     inside reaches the crate registry the way the machine does.
# Podman runs with a project-local containers.conf (.local/containers/): runc with the cgroupfs cgroup
# manager and no default ulimits (the defaults are refused on these machines), the vfs storage driver;
# its images stay in podman's usual storage (/var/lib/containers/storage as root).
# Idempotent: bases and the builder are made once; rebuilding only rebuilds the project's image.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${IMAGE:-content-sync:latest}"
LOCAL="${ROOT}/.local/containers"
SUITE="bookworm"

die() {
    echo "image: $*" >&2
    exit 1
}
say() { echo "image: $*" >&2; }

# The FROM images of the Dockerfile: the builder, then the runtime base.
BUILDER_BASE="$(awk '$1 == "FROM" && $3 == "AS" { print $2; exit }' "${ROOT}/Dockerfile")"
RUNTIME_BASE="$(awk '$1 == "FROM" { last = $2 } END { print last }' "${ROOT}/Dockerfile")"

# docker.io/library/NAME for an unqualified name, as Docker and podman's short-name aliases read it.
qualified() {
    local name="$1" first="${1%%/*}"
    if [[ "${name}" != */* ]]; then
        echo "docker.io/library/${name}"
    elif [[ "${first}" == *.* || "${first}" == *:* || "${first}" == localhost ]]; then
        echo "${name}"
    else
        echo "docker.io/${name}"
    fi
}

pick_engine() {
    if [[ -n "${CONTAINER_ENGINE:-}" ]]; then
        echo "${CONTAINER_ENGINE}"
    elif command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
        echo docker
    else
        echo podman
    fi
}

apt_install() {
    [[ "$(id -u)" == 0 ]] || die "missing $*: install them (apt-get install $*) or run as root"
    command -v apt-get >/dev/null 2>&1 || die "missing $* and no apt-get to install them"
    say "installing $*"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_podman() {
    local missing=()
    command -v podman >/dev/null 2>&1 || missing+=(podman)
    command -v runc >/dev/null 2>&1 || missing+=(runc)
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
    mkdir -p "${LOCAL}"
    cat >"${LOCAL}/containers.conf" <<'EOF'
# Written by scripts/image.sh: what podman needs on this project's machines.
[containers]
# The default ulimits (RLIMIT_NOFILE/RLIMIT_NPROC) are refused here.
default_ulimits = []

[engine]
# crun does not support the hybrid cgroup layout of these machines; runc with cgroupfs does.
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
    cat >"${LOCAL}/storage.conf" <<'EOF'
# Written by scripts/image.sh: podman's usual storage locations, with the vfs driver (overlay is not
# available on these machines).
[storage]
driver = "vfs"
EOF
    if [[ "$(id -u)" == 0 ]]; then
        printf 'runroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
            >>"${LOCAL}/storage.conf"
    fi
    export CONTAINERS_CONF="${LOCAL}/containers.conf"
    export CONTAINERS_STORAGE_CONF="${LOCAL}/storage.conf"
}

have_image() { "${ENGINE}" image inspect "$1" >/dev/null 2>&1; }

# Pulls the image unless it is there; false when no registry gives it.
present_or_pulled() {
    have_image "$1" && return 0
    say "pulling $1"
    timeout 120 "${ENGINE}" pull -q "$1" >/dev/null 2>&1
}

debian_mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
        echo "${DEBIAN_MIRROR}"
        return
    fi
    local uri
    uri="$(awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    if [[ -z "${uri}" ]]; then
        uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list 2>/dev/null || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# The runtime base: Debian's shared libraries, CA certificates and time zones, no shell, no package
# manager (the contents of the distroless cc image).
make_runtime_base() {
    local tag="$1" work rootfs
    say "making ${tag} locally from Debian packages"
    command -v dpkg-deb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 ||
        die "cannot make ${tag}: needs a Debian machine (dpkg-deb, apt-get)"
    work="$(mktemp -d -p "${SCRATCH}")"
    rootfs="${work}/rootfs"
    mkdir -p "${rootfs}"
    (cd "${work}" && apt-get download -qq libc6 libgcc-s1 gcc-12-base ca-certificates netbase tzdata \
        base-files >/dev/null 2>&1) || { apt-get update -qq >/dev/null &&
        (cd "${work}" && apt-get download -qq libc6 libgcc-s1 gcc-12-base ca-certificates netbase tzdata \
            base-files >/dev/null); }
    for deb in "${work}"/*.deb; do
        dpkg-deb -x "${deb}" "${rootfs}"
    done
    mkdir -p "${rootfs}/etc/ssl/certs" "${rootfs}/tmp" "${rootfs}/root" "${rootfs}/home/nonroot"
    # What update-ca-certificates would write: every Mozilla root in one bundle.
    cat "${rootfs}"/usr/share/ca-certificates/mozilla/*.crt >"${rootfs}/etc/ssl/certs/ca-certificates.crt"
    cat >"${rootfs}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\ntty:x:5:\nstaff:x:50:\n' >"${rootfs}/etc/group"
    chmod 1777 "${rootfs}/tmp"
    chmod 700 "${rootfs}/root"
    chown 65532:65532 "${rootfs}/home/nonroot"
    rm -rf "${rootfs}/usr/share/doc" "${rootfs}/usr/share/man" "${rootfs}/usr/share/lintian"
    tar --numeric-owner -C "${rootfs}" -c . | "${ENGINE}" import \
        --change 'USER 65532' \
        --change 'WORKDIR /home/nonroot' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        - "$(qualified "${tag}")" >/dev/null
    rm -rf "${work}"
}

# The builder: Debian bookworm (debootstrap minbase) with gcc, make (jemalloc's build runs configure and
# make) and the machine's Rust toolchain.
make_builder() {
    local tag="$1" minbase="localhost/content-sync/debian-minbase:${SUITE}" work toolchain
    say "making ${tag} locally (Debian ${SUITE} minbase + this machine's Rust toolchain)"
    if ! have_image "${minbase}"; then
        command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
        work="$(mktemp -d -p "${SCRATCH}")"
        debootstrap --variant=minbase "${SUITE}" "${work}/rootfs" "$(debian_mirror)" >/dev/null
        tar --numeric-owner -C "${work}/rootfs" -c . | "${ENGINE}" import - "${minbase}" >/dev/null
        rm -rf "${work}"
    fi
    toolchain="$(dirname "$(dirname "$(rustup which rustc 2>/dev/null || command -v rustc)")")"
    [[ -x "${toolchain}/bin/cargo" ]] || die "no Rust toolchain with cargo at ${toolchain}"
    work="$(mktemp -d -p "${SCRATCH}")"
    mkdir -p "${work}/rust"
    tar -C "${toolchain}" --exclude=./share/doc --exclude=./share/man -c . | tar -C "${work}/rust" -x
    cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "${work}/ca-certificates.crt"
    cat >"${work}/Containerfile" <<EOF
FROM ${minbase}
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev make ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.description="content-sync: local stand-in for ${tag} (scripts/image.sh)"
EOF
    "${ENGINE}" build "${BUILD_FLAGS[@]}" --network host -q -t "$(qualified "${tag}")" "${work}" >/dev/null
    rm -rf "${work}"
}

cmd_build() {
    local started=${SECONDS} previous size
    present_or_pulled "$(qualified "${RUNTIME_BASE}")" || make_runtime_base "${RUNTIME_BASE}"
    present_or_pulled "$(qualified "${BUILDER_BASE}")" || make_builder "${BUILDER_BASE}"
    # A builder made by an earlier version of this script may lack make: make it again.
    "${ENGINE}" run --rm --network host "$(qualified "${BUILDER_BASE}")" sh -c 'command -v make' >/dev/null 2>&1 ||
        make_builder "${BUILDER_BASE}"
    say "base images ready in $((SECONDS - started)) s; building ${IMAGE} with ${ENGINE}"
    previous="$("${ENGINE}" image inspect -f '{{.Id}}' "${IMAGE}" 2>/dev/null || true)"
    "${ENGINE}" build "${BUILD_FLAGS[@]}" --network host -t "${IMAGE}" "${ROOT}"
    # The image this one replaces, now untagged: removed unless a container still uses it.
    if [[ -n "${previous}" && "${previous}" != "$("${ENGINE}" image inspect -f '{{.Id}}' "${IMAGE}")" ]]; then
        "${ENGINE}" rmi "${previous}" >/dev/null 2>&1 || true
    fi
    size="$("${ENGINE}" image inspect -f '{{.Size}}' "${IMAGE}")"
    say "built ${IMAGE}: $((size / 1000000)) MB, in $((SECONDS - started)) s"
}

cmd_test() {
    have_image "${IMAGE}" || die "no image ${IMAGE}: run make image first"
    "${ROOT}/scripts/with-stand-ins.sh" "${ROOT}/.local/venv/bin/python" "${ROOT}/ftest/image_test.py" \
        --engine "${ENGINE}" --image "${IMAGE}"
}

# Scratch space of the base images (a root filesystem, a copy of the toolchain): gone on any exit.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "${SCRATCH}"' EXIT

ENGINE="$(pick_engine)"
BUILD_FLAGS=()
if [[ "${ENGINE}" == podman ]]; then
    setup_podman
    # One container per stage, committed once: with vfs every committed step is a full copy of the
    # root filesystem (the builder stage is ~1.2 GB), which filled the disk with the default --layers.
    BUILD_FLAGS=(--layers=false)
fi
case "${1:-}" in
    build) cmd_build ;;
    test) cmd_test ;;
    engine) echo "${ENGINE}" ;;
    *) die "usage: $0 build|test|engine" ;;
esac
