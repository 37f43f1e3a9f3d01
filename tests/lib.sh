# Shared by the test scripts (sourced): tally NAME OUTPUT_FILE EXIT_STATUS adds the last "N passed, N failed"
# line of a part's output to the globals pass / fail, prints it (name padded to TALLY_WIDTH, default 28), and
# on failure records the part in failed_parts and shows the start of its output.
pass=${pass:-0}
fail=${fail:-0}
failed_parts=()
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
