#!/usr/bin/env python3
"""Judge a load run through HAProxy with one replica killed (tests/replicas.sh).
usage: check.py LOAD.json T_KILL T_REAPED T_DOWN T_RESTART T_UP KILLED SURVIVOR [HAPROXY.log]
Times are wall-clock ms: SIGKILL sent, the killed replica reaped (dead), HAProxy's stats showing it DOWN,
its restart begun, the stats showing it UP. Prints one line per check ("ok ..." / "FAIL ...") and the measured numbers."""
import json, sys, collections

load = json.load(open(sys.argv[1]))
t_kill, t_reaped, t_down, t_restart, t_up = (int(x) for x in sys.argv[2:7])
killed, survivor = sys.argv[7], sys.argv[8]
log = sys.argv[9] if len(sys.argv) > 9 else None
npass = nfail = 0


def check(cond, what, extra=None):
    global npass, nfail
    if cond:
        npass += 1
        print("ok", what)
    else:
        nfail += 1
        print("FAIL", what + ("" if extra is None else ": " + json.dumps(extra)[:1500]))


def show(rs):
    return [{k: r[k] for k in ("kind", "t0", "t1", "status", "server", "bytes", "err")} for r in rs[:10]]


start = min(r["t0"] for r in load)
end = max(r["t1"] for r in load)
failed = [r for r in load if not r["ok"]]
before_kill = [r for r in load if r["t1"] < t_kill]
window = [r for r in load if t_reaped <= r["t0"] < t_down]        # started after the kill, before DOWN
after_down = [r for r in load if r["t0"] >= t_down]
while_down = [r for r in load if t_down <= r["t0"] < t_restart]
after_up = [r for r in load if r["t0"] >= t_up]
in_flight = [r for r in load if r["t0"] < t_reaped and r["t1"] >= t_kill and r["server"] in (killed, None)]  # on it at the kill

check(len(load) >= 100, f"load run: {len(load)} requests in {(end - start) / 1000:.1f} s (at least 100)")
check(all(r["ok"] for r in before_kill), "every request that ended before the kill succeeded", show([r for r in before_kill if not r["ok"]]))
servers = collections.Counter(r["server"] for r in before_kill)
check(servers[killed] > 0 and servers[survivor] > 0, f"before the kill both replicas served ({dict(servers)})")
check(len(after_down) > 0 and all(r["ok"] for r in after_down),
      f"every request started after HAProxy marked {killed} DOWN succeeded ({sum(r['ok'] for r in after_down)}/{len(after_down)})",
      show([r for r in after_down if not r["ok"]]))
check(len(while_down) > 0 and all(r["server"] == survivor for r in while_down),
      f"while {killed} was down, {survivor} served everything ({len(while_down)} requests)",
      show([r for r in while_down if r["server"] != survivor]))
check(all(r["t0"] < t_down for r in failed), "no request started after DOWN failed", show([r for r in failed if r["t0"] >= t_down]))
check(all(r["t0"] < t_reaped and r["t1"] >= t_kill for r in failed), "the failed requests were all in flight at the kill (none started after it)",
      show([r for r in failed if not (r["t0"] < t_reaped and r["t1"] >= t_kill)]))
check(all(r["server"] in (killed, None) for r in failed), f"the failed requests were on {killed}", show([r for r in failed if r["server"] not in (killed, None)]))
back = collections.Counter(r["server"] for r in after_up)
check(back[killed] > 0 and all(r["ok"] for r in after_up),
      f"after {killed} came back UP it served again ({dict(back)}), all {len(after_up)} requests ok", show([r for r in after_up if not r["ok"]]))

kinds = collections.Counter((r["kind"], r["status"], r["err"]) for r in failed)
print(f"measured: {len(load)} requests, {len(load) - len(failed)} complete, {len(failed)} failed "
      f"(in flight on {killed} at the kill: {len(in_flight)} requests, of which {len(failed)} failed)")
for (kind, status, err), n in sorted(kinds.items(), key=str):
    print(f"  failed: {n} x {kind}: HTTP {status or '-'}, {err}")
print(f"measured: kill -> DOWN {t_down - t_kill} ms; {len(window)} requests started in that window, "
      f"{sum(r['ok'] for r in window)} succeeded; restart -> UP {t_up - t_restart} ms")
print(f"measured: after DOWN {len(after_down)} requests, all ok: {all(r['ok'] for r in after_down)}; "
      f"after UP {dict(back)}")
if log:
    # HAProxy's httplog: ... TR/Tw/Tc/Tr/Ta STATUS BYTES - - TERMINATION actconn/feconn/beconn/srv_conn/retries ...
    # retries "+N": redispatched to another server after N connection failures; termination "SD": the server
    # closed the connection during the data phase (the killed replica's streams)
    redisp = collections.Counter()
    term = collections.Counter()
    for line in open(log, errors="replace"):
        f = line.split()
        if len(f) > 11 and f[0].startswith("127.0.0.1:") and f[2] == "g4" and f[10].count("/") == 4:
            term[f[9]] += 1
            if f[10].split("/")[4].startswith("+"):
                redisp[f[3]] += 1
    print(f"measured: HAProxy log: {sum(term.values())} requests, termination states {dict(term)}; "
          f"redispatched after a connection failure: {dict(redisp) or 0}")
print(f"{npass} passed, {nfail} failed")
sys.exit(1 if nfail else 0)
