# Hardening tests (issue 9) need Debian's fault tools: fiu-run/fiu-ctl (libfiu LD_PRELOAD
# fault injection) and faketime (wall-clock steps). Sourced by .ci/run as root; idempotent:
# apt-get update runs once, and only when something is missing.
_hardening_missing=()
command -v fiu-run >/dev/null 2>&1 || _hardening_missing+=(fiu-utils)
[ -e /usr/lib/fiu/fiu_posix_preload.so ] || ls /usr/lib/*/fiu/fiu_posix_preload.so >/dev/null 2>&1 \
    || _hardening_missing+=(libfiu0)
command -v faketime >/dev/null 2>&1 || _hardening_missing+=(faketime)
if [ "${#_hardening_missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_FENCEDSTATE_APT_UPDATED:-}" ]; then
        apt-get update -qq && export _FENCEDSTATE_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${_hardening_missing[@]}" >/dev/null
fi
unset _hardening_missing
