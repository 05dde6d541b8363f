#!/bin/sh
# Command-line tests: what a person sees. Run by `make test` with GPT pointing at the binary.
set -u
GPT=${GPT:-./gpt}
fails=0
pass() { :; }
fail() { echo "cli test FAILED: $*" >&2; fails=$((fails + 1)); }
echo "cli tests: ${fails} failures"
exit $fails
