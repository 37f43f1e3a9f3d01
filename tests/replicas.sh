#!/usr/bin/env bash
# Replicas behind HAProxy (docs/replicas.md): two `g4 serve` replicas of a tiny model on free loopback ports, HAProxy
# in front (health checks through GET /health, retries + redispatch), a bounded load run through HAProxy
# (tests/replicas/load.mjs: 4 clients for G4_REPLICAS_SECONDS, default 20, of /api/generate and
# /v1/chat/completions, streamed and not) during which one replica is killed with SIGKILL and later restarted.
# Checks (tests/replicas/check.py): every request started after HAProxy marked the replica DOWN succeeds and is
# served by the survivor; the failures are only requests in flight on the killed replica (counted and reported);
# HAProxy's stats show the replica DOWN, then UP again after the restart, and it serves again.
# Everything started here runs in its own process group and is stopped on exit. Loopback only.
#   BUILD                build directory holding g4 (default build)
#   G4_REPLICAS_SECONDS  length of the load run (default 20; the kill is at 30%, the restart at 60%)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tmp=$(mktemp -d)
pgids=()
cleanup() {
    local p
    for p in "${pgids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
    for p in "${pgids[@]}"; do
        for _ in $(seq 1 50); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$p" 2>/dev/null
    done
    wait 2>/dev/null
    [ -n "${G4_KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now_ms() { date +%s%3N; }
seconds=${G4_REPLICAS_SECONDS:-20}

for tool in haproxy node python3 curl; do
    if ! command -v $tool >/dev/null; then
        echo "$tool not found (Debian package: haproxy, nodejs, python3, curl)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

model=$tmp/tiny.gguf
"$G4" synth --variant e2b --scale tiny --type q8_0 --seed 42 --out "$model" >/dev/null 2>&1 || bad "g4 synth"

# start_replica NAME PORT: g4 serve in a process group of its own (setsid: pid = pgid); sets PORT_<NAME>
start_replica() {
    local name=$1 port=$2 log=$tmp/$1.log pid p=
    setsid "$G4" serve "$model" --port "$port" --threads 1 --parallel 4 --ctx 1024 >>"$log" 2>&1 &
    pid=$!
    pgids+=("$pid")
    eval "PID_$name=$pid"
    for _ in $(seq 1 300); do
        p=$(sed -n 's/^g4 serve: ready on port \([0-9]*\)$/\1/p' "$log" | tail -n 1)
        [ -n "$p" ] && [ "$(grep -c '^g4 serve: ready on port' "$log")" -ge "${3:-1}" ] && break
        p=
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$p" ]; then
        echo "replica $name did not start:"
        tail -n 20 "$log"
        return 1
    fi
    eval "PORT_$name=$p"
}
start_replica r1 0 || { bad "replica r1"; echo "$pass passed, $fail failed"; exit 1; }
start_replica r2 0 || { bad "replica r2"; echo "$pass passed, $fail failed"; exit 1; }
ok

# two free loopback ports for HAProxy's frontend and its stats page
read -r FE ST < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

cat >"$tmp/haproxy.cfg" <<CFG
global
    log stdout format raw local0 info   # one line per request on stdout (haproxy -db)
    maxconn 512

defaults
    mode http
    log global
    option httplog
    timeout connect 2s        # loopback: a replica that does not accept in 2 s is gone
    timeout client 60s
    timeout server 600s       # must cover the longest streamed answer (the whole stream, not a gap)
    timeout queue 30s
    timeout http-request 10s
    retries 3                 # connection failures are retried (the request was never sent)...
    option redispatch 1       # ...each time on another replica if there is one

frontend g4
    bind 127.0.0.1:$FE
    default_backend g4_replicas

backend g4_replicas
    balance roundrobin
    option httpchk GET /health          # 200 {"status":"ok"}; 503 while a model loads
    http-check expect status 200
    default-server inter 500ms fastinter 200ms downinter 500ms fall 2 rise 2
    http-response set-header X-Served-By %[srv_name]
    server r1 127.0.0.1:$PORT_r1 check
    server r2 127.0.0.1:$PORT_r2 check

listen stats
    bind 127.0.0.1:$ST
    stats enable
    stats uri /stats
    stats refresh 1s
CFG
if haproxy -c -q -f "$tmp/haproxy.cfg" >"$tmp/haproxy-check.out" 2>&1; then ok; else bad "haproxy -c: $(head -c 600 "$tmp/haproxy-check.out")"; fi
setsid haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
pgids+=("$!")

# srv_field SERVER COLUMN: a column of HAProxy's CSV stats for a server of the backend
srv_field() {
    curl -s --max-time 2 "http://127.0.0.1:$ST/stats;csv" | awk -F, -v s="$1" -v c="$2" '
        NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == "g4_replicas" && $2 == s { print $(col[c]) }'
}
# wait_status SERVER STATUS SECONDS: poll the stats page every 50 ms; sets T_STATUS (ms) when it is seen
wait_status() {
    local i n=$(($3 * 20))
    for i in $(seq 1 $n); do
        if [ "$(srv_field "$1" status)" = "$2" ]; then T_STATUS=$(now_ms); return 0; fi
        sleep 0.05
    done
    return 1
}
if wait_status r1 UP 10 && wait_status r2 UP 10; then ok; else bad "replicas not UP in HAProxy: $(curl -s "http://127.0.0.1:$ST/stats;csv" | head -c 1500)"; fi
# the check that made them UP is the HTTP check on /health: L7OK with status 200
for s in r1 r2; do
    cs=$(srv_field $s check_status) cc=$(srv_field $s check_code)
    if [ "$cs" = L7OK ] && [ "$cc" = 200 ]; then ok; else bad "$s: check_status $cs check_code $cc (want L7OK 200)"; fi
done
if [ "$(curl -s --max-time 5 "http://127.0.0.1:$PORT_r1/health")" = '{"status":"ok"}' ]; then ok; else bad "GET /health on r1"; fi

# one request of each kind through the frontend before the load
if node tests/replicas/load.mjs "http://127.0.0.1:$FE" 0.5 1 tiny "$tmp/warm.json" >"$tmp/warm.out" 2>&1 &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d and all(r["ok"] for r in d) else 1)' "$tmp/warm.json"; then
    ok
else bad "requests through HAProxy before the load: $(head -c 600 "$tmp/warm.out")"; fi

# the load run, the kill at 30%, the restart at 60%
t_start=$(now_ms)
timeout $((seconds + 90)) node tests/replicas/load.mjs "http://127.0.0.1:$FE" "$seconds" 4 tiny "$tmp/load.json" >"$tmp/load.out" 2>&1 &
load_pid=$!
sleep "$(awk -v s="$seconds" 'BEGIN { print s * 0.3 }')"
t_kill0=$(now_ms)
{
    kill -KILL -- "-$PID_r1"
    wait "$PID_r1"
    t_kill=$(now_ms) # r1 reaped: dead by now (requests started before this may have reached it alive)
} 2>/dev/null        # (without bash's "Killed" notice)
if wait_status r1 DOWN 10; then t_down=$T_STATUS; ok; else t_down=$(now_ms); bad "r1 not marked DOWN within 10 s of the kill"; fi
if [ "$(srv_field r2 status)" = UP ]; then ok; else bad "r2 not UP while r1 is down"; fi
echo "r1 killed at +$((t_kill0 - t_start)) ms; DOWN in HAProxy's stats after $((t_down - t_kill0)) ms (check_status $(srv_field r1 check_status))"
sleep "$(awk -v a="$t_start" -v s="$seconds" -v n="$(now_ms)" 'BEGIN { d = (a + s * 600 - n) / 1000; print (d > 0 ? d : 0) }')"
t_restart=$(now_ms)
if start_replica r1 "$PORT_r1" 2; then ok; else bad "r1 restart on port $PORT_r1"; fi
if wait_status r1 UP 10; then t_up=$T_STATUS; ok; else t_up=$(now_ms); bad "r1 not back UP within 10 s of the restart"; fi
echo "r1 restarted at +$((t_restart - t_start)) ms; UP in HAProxy's stats after $((t_up - t_restart)) ms"
wait $load_pid
rc=$?
cat "$tmp/load.out"
if [ $rc -eq 0 ] && [ -s "$tmp/load.json" ]; then ok; else bad "load run exited $rc"; fi

python3 tests/replicas/check.py "$tmp/load.json" "$t_kill0" "$t_kill" "$t_down" "$t_restart" "$t_up" r1 r2 "$tmp/haproxy.log" >"$tmp/check.out" 2>&1
cat "$tmp/check.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/check.out" | tail -n 1)
if [ -n "$line" ]; then
    pass=$((pass + ${line%% passed*}))
    f=${line#*passed, }
    fail=$((fail + ${f%% failed*}))
else bad "check.py: no result"; fi
for s in r1 r2; do echo "$s: $(srv_field $s status), $(srv_field $s stot) sessions, $(srv_field $s hrsp_2xx) 2xx, $(srv_field $s hrsp_5xx) 5xx"; done

# the survivor and the restarted replica stop cleanly
for s in r1 r2; do
    eval "p=\$PID_$s"
    kill -TERM "$p"
    wait "$p"
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^g4 serve: stopped$' "$tmp/$s.log"; then ok; else bad "$s exited $rc on SIGTERM: $(tail -n 5 "$tmp/$s.log")"; fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
