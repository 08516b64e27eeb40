# redis-server (Debian's, 7.x, built with TLS), redis-cli and the openssl CLI for the Redis
# backend's tests (issue 23): tests/redis_server.py starts throwaway servers on loopback ports,
# the cluster test joins three with redis-cli, the TLS test makes its certificates with openssl.
# Sourced by .ci/run (bash, set -euo pipefail) as root; idempotent: installs only what is
# missing, and never leaves the packaged service running (policy-rc.d 101 keeps the package
# from starting it; a running one is stopped).
_fs_redis_bin="${FENCEDSTATE_REDIS_BIN:-}"
if [ -z "$_fs_redis_bin" ] && command -v redis-server >/dev/null 2>&1; then
    _fs_redis_bin="$(command -v redis-server)"
fi
_fs_redis_pkgs=()
if [ -z "$_fs_redis_bin" ] || [ ! -x "$_fs_redis_bin" ]; then _fs_redis_pkgs+=(redis-server); fi
if ! command -v redis-cli >/dev/null 2>&1; then _fs_redis_pkgs+=(redis-tools); fi
if ! command -v openssl >/dev/null 2>&1; then _fs_redis_pkgs+=(openssl); fi
if [ "${#_fs_redis_pkgs[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_FENCEDSTATE_APT_UPDATED:-}" ]; then
        apt-get update -qq && export _FENCEDSTATE_APT_UPDATED=1
    fi
    _fs_had_policy=0
    if [ -e /usr/sbin/policy-rc.d ]; then _fs_had_policy=1; fi
    if [ "$_fs_had_policy" = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get install -y -qq --no-install-recommends "${_fs_redis_pkgs[@]}" >/dev/null
    if [ "$_fs_had_policy" = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
    unset _fs_had_policy
    _fs_redis_bin="$(command -v redis-server || true)"
    if [ -z "$_fs_redis_bin" ]; then
        echo "redis.sh: installed redis-server but found no redis-server binary" >&2
        return 1 2>/dev/null || exit 1
    fi
fi
# The tests bring their own servers: stop a packaged one if something started it anyway.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
    systemctl disable redis-server >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1 && service redis-server status >/dev/null 2>&1; then
    service redis-server stop >/dev/null 2>&1 || true
fi
echo "redis-server binary: $_fs_redis_bin ($("$_fs_redis_bin" --version | cut -d' ' -f3))"
unset _fs_redis_bin _fs_redis_pkgs
