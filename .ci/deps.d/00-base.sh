# Base tools: a JRE for TLC (usually present) is handled by specs.sh; make for the Makefile;
# Debian's python3-venv for `python3 -m venv` (ensurepip), when python3 lacks it.
if ! command -v make >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq make
fi
if ! "${PY:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv
fi
