# etcd server and client binaries for the etcd backend's tests (issue 16): tests/etcd_cluster.py
# starts a throwaway 3-member cluster from them, so CI never skips those tests. Sourced by .ci/run
# (bash, set -euo pipefail) as root; idempotent: installs Debian's `etcd-server`/`etcd-client` only
# when no `etcd` binary is found, and stops/disables the packaged service so it holds no ports.
_fs_etcd_bin="${FENCEDSTATE_ETCD_BIN:-}"
if [ -z "$_fs_etcd_bin" ] && command -v etcd >/dev/null 2>&1; then
    _fs_etcd_bin="$(command -v etcd)"
fi
if [ -z "$_fs_etcd_bin" ] || [ ! -x "$_fs_etcd_bin" ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_FENCEDSTATE_APT_UPDATED:-}" ]; then
        apt-get update -qq && export _FENCEDSTATE_APT_UPDATED=1
    fi
    # The tests bring their own cluster: policy-rc.d 101 keeps the package from starting one.
    _fs_had_policy=0
    if [ -e /usr/sbin/policy-rc.d ]; then _fs_had_policy=1; fi
    if [ "$_fs_had_policy" = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null
    if [ "$_fs_had_policy" = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
    _fs_etcd_bin="$(command -v etcd || true)"
    if [ -z "$_fs_etcd_bin" ]; then
        echo "etcd.sh: installed etcd-server but found no etcd binary" >&2
        return 1 2>/dev/null || exit 1
    fi
    unset _fs_had_policy
fi
echo "etcd binary: $_fs_etcd_bin"
unset _fs_etcd_bin
