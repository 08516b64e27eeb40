# strace for bench/syscalls.py (issue 26: syscalls per commit, `strace -f -c`), which
# tests/test_bench_smoke.py runs. Sourced by .ci/run as root; idempotent: apt-get update runs
# once, and only when strace is missing.
if ! command -v strace >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_FENCEDSTATE_APT_UPDATED:-}" ]; then
        apt-get update -qq && export _FENCEDSTATE_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends strace >/dev/null
fi
