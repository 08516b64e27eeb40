# Base tools: a JRE for TLC (usually present) is handled by specs.sh; make for the Makefile.
if ! command -v make >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq make
fi
