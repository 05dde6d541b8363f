# lib.sh -- what the shell tests share. Sourced (". tests/lib.sh") by a test that has set
#   TEST_NAME  how its messages start ("cli tests", "robustness tests")
#   TOP        its scratch directory; the checks run in a working directory below it, and
#              their output is kept in TOP, outside what they compare.
# It provides fail, expect_error, expect_ok and finish, counting checks and failures.

checks=0
fails=0

fail() {
    echo "$TEST_NAME FAILED: $*" >&2
    fails=$((fails + 1))
}

# Every file under the working directory with its checksum, and every path: what a failed
# command must leave exactly as it found it.
snapshot() {
    find . -type f -exec md5sum {} + | sort
    find . | sort
}

# expect_error WHAT SUBSTRING CMD... : one error line containing SUBSTRING, a non-zero exit
# (not a crash), nothing on stdout, and no file in the working directory created, removed or
# changed.
expect_error() {
    what=$1 want=$2
    shift 2
    checks=$((checks + 1))
    before=$(snapshot)
    "$@" >"$TOP/expect.out" 2>"$TOP/expect.err"
    rc=$?
    after=$(snapshot)
    lines=$(wc -l <"$TOP/expect.err")
    if [ "$rc" -eq 0 ]; then
        fail "$what: exit status 0 (expected an error)"
    elif [ "$rc" -ge 128 ]; then
        fail "$what: killed by a signal (status $rc): $(cat "$TOP/expect.err")"
    elif [ "$lines" -ne 1 ]; then
        fail "$what: $lines lines on stderr, expected 1: $(cat "$TOP/expect.err")"
    elif ! grep -q '^error: ' "$TOP/expect.err"; then
        fail "$what: stderr does not start with 'error: ': $(cat "$TOP/expect.err")"
    elif ! grep -qF -- "$want" "$TOP/expect.err"; then
        fail "$what: stderr lacks '$want': $(cat "$TOP/expect.err")"
    elif [ -s "$TOP/expect.out" ]; then
        fail "$what: wrote to stdout: $(head -c 200 "$TOP/expect.out")"
    elif [ "$before" != "$after" ]; then
        fail "$what: files were created or changed"
    fi
    rm -f "$TOP/expect.out" "$TOP/expect.err"
}

# expect_ok WHAT CMD... : exit status 0; the output stays in $TOP/ok.out and $TOP/ok.err.
expect_ok() {
    what=$1
    shift
    checks=$((checks + 1))
    "$@" >"$TOP/ok.out" 2>"$TOP/ok.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then fail "$what: exit status $rc: $(tail -3 "$TOP/ok.err")"; fi
}

# The summary line; the exit status of the test.
finish() {
    echo "$TEST_NAME: $checks checks, $fails failures"
    [ "$fails" -eq 0 ]
}
