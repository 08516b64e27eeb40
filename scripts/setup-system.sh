#!/usr/bin/env bash
# `make test` runs this before pytest: the system packages the suite needs (Python's venv for
# .venv, Java for TLC, PostgreSQL server binaries, etcd, libfiu's fiu-run, faketime,
# redis-server and redis-cli, openssl, strace) are installed when this runs as root with apt-get
# (by the same idempotent snippets CI uses, .ci/deps.d/*.sh), or named in one line with the
# command that installs them, exit 1, before any test runs.
# FENCEDSTATE_SETUP_NO_INSTALL=1 only checks (never installs).
set -uo pipefail
cd "$(dirname "$0")/.."

missing_names=()
missing_pkgs=()
need() {  # need NAME "DEBIAN PACKAGES" -- called for each missing tool
    missing_names+=("$1")
    read -r -a _pkgs <<<"$2"
    missing_pkgs+=("${_pkgs[@]}")
}

check() {
    missing_names=()
    missing_pkgs=()
    # Debian splits venv's ensurepip out of python3: without it `python3 -m venv` fails
    "${PY:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1 || need "Python venv" "python3-venv"
    command -v java >/dev/null 2>&1 || need "java" "default-jre-headless"
    local pg=""
    for d in "${FENCEDSTATE_PG_BIN:-}" /usr/lib/postgresql/*/bin /usr/local/pgsql/bin; do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            pg="$d"
        fi
    done
    if [ -z "$pg" ] && command -v pg_ctl >/dev/null 2>&1; then pg="$(command -v pg_ctl)"; fi
    [ -n "$pg" ] || need "PostgreSQL server" "postgresql"
    if [ -z "${FENCEDSTATE_ETCD_BIN:-}" ] && ! command -v etcd >/dev/null 2>&1; then
        need "etcd" "etcd-server etcd-client"
    fi
    command -v fiu-run >/dev/null 2>&1 || need "fiu-run" "fiu-utils"
    if [ ! -e /usr/lib/fiu/fiu_posix_preload.so ] \
        && ! ls /usr/lib/*/fiu/fiu_posix_preload.so >/dev/null 2>&1; then
        need "libfiu" "libfiu0"
    fi
    command -v faketime >/dev/null 2>&1 || need "faketime" "faketime"
    if [ -z "${FENCEDSTATE_REDIS_BIN:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
        need "redis-server" "redis-server"
    fi
    command -v redis-cli >/dev/null 2>&1 || need "redis-cli" "redis-tools"
    command -v openssl >/dev/null 2>&1 || need "openssl" "openssl"
    command -v strace >/dev/null 2>&1 || need "strace" "strace"
}

check
[ "${#missing_names[@]}" -eq 0 ] && exit 0

if [ "${FENCEDSTATE_SETUP_NO_INSTALL:-}" != 1 ] && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null 2>&1; then
    echo "make test: installing system packages (${missing_names[*]}) with .ci/deps.d/*.sh" >&2
    (
        set -euo pipefail
        export DEBIAN_FRONTEND=noninteractive
        for snippet in .ci/deps.d/*.sh; do
            # shellcheck disable=SC1090
            source "$snippet" >/dev/null
        done
    ) || { echo "make test: installing system packages failed (see above)" >&2; exit 1; }
    check
    [ "${#missing_names[@]}" -eq 0 ] && exit 0
fi

names="$(printf '%s, ' "${missing_names[@]}")"
names="${names%, }"
if command -v apt-get >/dev/null 2>&1; then
    how="install with: sudo apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
    how="${how} (or run make test as root)"
else
    how="install the equivalent of the Debian package(s): ${missing_pkgs[*]}"
fi
echo "make test: missing ${names}; ${how}" >&2
exit 1
