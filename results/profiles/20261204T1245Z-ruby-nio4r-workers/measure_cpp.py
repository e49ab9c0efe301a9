"""Counters per request of cbench-server selector-pool --gvl (the F1 C++ stand-in) at -t4 -c64."""
import json, os, re, signal, subprocess, sys, time
sys.path.insert(0, "/tmp/rt")
BIN = "/work/wt-ruby-trace/build/cbench-server"
def snap(pid, path):
    old = json.load(open(path))["snapshot"] if os.path.exists(path) else 0
    os.kill(pid, signal.SIGUSR1)
    for _ in range(400):
        try:
            cur = json.load(open(path))
            if cur["snapshot"] > old: return cur
        except (OSError, ValueError): pass
        time.sleep(0.005)
    raise RuntimeError("no snapshot")
rows = []
for label, extra in [("selector-pool --gvl (default: capped, drop)", []),
                     ("selector-pool --gvl --dispatch unbounded --wakeup-write blocking", ["--dispatch", "unbounded", "--wakeup-write", "blocking"])]:
    for path_q in ["/spin?us=10", "/"]:
        cpath = f"/tmp/rt/cpp-{len(extra)}-{len(path_q)}.json"
        if os.path.exists(cpath): os.unlink(cpath)
        srv = subprocess.Popen(["taskset", "-c", "0", BIN, "--model", "selector-pool", "--threads", "4", "--gvl", "--port", "0",
                                "--host", "127.0.0.1", "--response", "published", "--counters-out", cpath] + extra,
                               stdout=subprocess.PIPE, text=True)
        line = srv.stdout.readline()
        port = int(re.search(r"port=(\d+)", line).group(1))
        b = snap(srv.pid, cpath)
        w = subprocess.run(["taskset", "-c", "1", "wrk", "-t4", "-c64", "-d5s", "--timeout", "10s",
                            f"http://127.0.0.1:{port}{path_q}"], capture_output=True, text=True).stdout
        a = snap(srv.pid, cpath)
        srv.send_signal(signal.SIGTERM); srv.wait()
        req = int(re.search(r"(\d+) requests in", w).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", w).group(1))
        per = {k: round((a["counters"][k] - b["counters"].get(k, 0)) / max(req, 1), 4) for k in a["counters"] if a["counters"][k] - b["counters"].get(k, 0)}
        ru = {k: a["rusage"][k] - b["rusage"][k] for k in a["rusage"]}
        rec = {"server": label, "path": path_q, "column": "-t4 -c64", "requests": req, "req_per_s": rps,
               "cpu_us_per_req": round((ru["utime_us"] + ru["stime_us"]) / req, 2),
               "ctx_vol_per_req": round(ru["nvcsw"] / req, 4), "ctx_invol_per_req": round(ru["nivcsw"] / req, 4),
               "counters_per_req": per}
        print(json.dumps(rec), flush=True); rows.append(rec)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
