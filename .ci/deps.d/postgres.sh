# PostgreSQL server binaries (initdb, pg_ctl, postgres) for the PostgreSQL backend's tests
# (issue 7): tests/pg_server.py starts a throwaway cluster from them, so CI never skips those
# tests. Sourced by .ci/run (bash, set -euo pipefail) as root; idempotent: installs Debian's
# `postgresql` only when no binaries are found, and without creating or starting a "main" cluster.
_fs_pg_bin=""
_fs_pg_candidates=("${FENCEDSTATE_PG_BIN:-}")
if command -v pg_ctl >/dev/null 2>&1; then
    _fs_pg_candidates+=("$(dirname "$(readlink -f "$(command -v pg_ctl)")")")
fi
for _fs_d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin; do
    _fs_pg_candidates+=("$_fs_d")
done
for _fs_d in "${_fs_pg_candidates[@]}"; do
    if [ -n "$_fs_d" ] && [ -x "$_fs_d/initdb" ] && [ -x "$_fs_d/pg_ctl" ] && [ -x "$_fs_d/postgres" ]; then
        _fs_pg_bin="$_fs_d"
        break
    fi
done
if [ -z "$_fs_pg_bin" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # The tests bring their own cluster: do not let the package create and start one.
    mkdir -p /etc/postgresql-common
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    fi
    if [ -z "${_FENCEDSTATE_APT_UPDATED:-}" ]; then
        apt-get update -qq && export _FENCEDSTATE_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    for _fs_d in /usr/lib/postgresql/*/bin; do
        if [ -x "$_fs_d/initdb" ]; then _fs_pg_bin="$_fs_d"; fi
    done
    if [ -z "$_fs_pg_bin" ]; then
        echo "postgres.sh: installed postgresql but found no initdb" >&2
        return 1 2>/dev/null || exit 1
    fi
fi
echo "PostgreSQL binaries: $_fs_pg_bin"
unset _fs_pg_bin _fs_pg_candidates _fs_d
