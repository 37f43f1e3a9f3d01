# Shared by the test scripts (sourced from the repository's top directory).
#   ok / bad MESSAGE      count one passed / failed check (bad prints FAIL: MESSAGE)
#   tally NAME FILE RC    add the last "N passed, N failed" line of a part's output FILE (exit status RC) to
#                         the counts, print it (name padded to TALLY_WIDTH, default 28) and, on failure,
#                         record the part in failed_parts and show the start of its output
# The counts are the globals pass / fail; BUILD, G4 and ORACLE get their defaults here.
pass=0
fail=0
failed_parts=()
BUILD=${BUILD:-build}
G4="$BUILD/g4"
ORACLE=${G4_ORACLE:-../shared/oracle}

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*"
}

tally() {
    local name=$1 out=$2 rc=$3 line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}
        f=${line#*passed, }
        f=${f%% failed*}
    else
        p=0
        f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    pass=$((pass + p))
    fail=$((fail + f))
    printf "  %-${TALLY_WIDTH:-28}s %s\n" "$name" "${line:-no result (exit status $rc)}"
    if [ "$f" -ne 0 ]; then
        failed_parts+=("$name")
        sed -n '1,60p' "$out" | grep -v -E '^(PASS|ok) ' | head -n 40 | sed 's/^/    /'
    fi
}
