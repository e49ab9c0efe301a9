"""Counters per request for the Ruby nio4r replicas at the published columns (one 5 s wrk run each)."""
import json, os, re, signal, subprocess, sys, time, socket
REPO = "/work/wt-ruby-trace"
COLS = [(2, 10), (4, 64), (8, 256), (8, 1024)]
OUT = sys.argv[1]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
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
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime+stime ticks
def csw(pid):
    v = n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        for l in open(f"/proc/{pid}/task/{t}/status"):
            if l.startswith("voluntary_ctxt"): v += int(l.split()[1])
            if l.startswith("nonvoluntary_ctxt"): n += int(l.split()[1])
    return v, n
rows = []
for name, script, workers in [("single", "nio4r_single.rb", 1), ("4 workers", "nio4r_workers.rb", 4),
                              ("1 worker", "nio4r_workers.rb", 1)]:
    for t, c in COLS:
        port = free_port(); path = f"/tmp/rt/counters-{script}-{workers}-{c}.json"
        if os.path.exists(path): os.unlink(path)
        srv = subprocess.Popen(["taskset", "-c", "0", "ruby", f"{REPO}/servers/ruby/{script}", "--port", str(port),
                                "--workers", str(workers), "--counters-out", path], stdout=subprocess.DEVNULL)
        time.sleep(0.8)
        b = snap(srv.pid, path); cb = cpu(srv.pid); sb = csw(srv.pid)
        w = subprocess.run(["taskset", "-c", "1", "wrk", f"-t{t}", f"-c{c}", "-d5s", "--timeout", "10s",
                            f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
        a = snap(srv.pid, path); ca = cpu(srv.pid); sa = csw(srv.pid)
        srv.send_signal(signal.SIGTERM); srv.wait()
        req = int(re.search(r"(\d+) requests in", w).group(1))
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", w).group(1))
        per = {k: round((a["counters"][k] - b["counters"][k]) / max(req, 1), 4) for k in a["counters"]}
        rec = {"server": name, "column": f"-t{t} -c{c}", "requests": req, "req_per_s": rps,
               "cpu_us_per_req": round((ca - cb) * 1e6 / os.sysconf("SC_CLK_TCK") / max(req, 1), 2),
               "ctx_vol_per_req": round((sa[0] - sb[0]) / max(req, 1), 4),
               "ctx_invol_per_req": round((sa[1] - sb[1]) / max(req, 1), 4),
               "counters_per_req": per, "gauges_after": a.get("gauges"),
               "wrk_errors": re.findall(r"Socket errors.*|Non-2xx.*", w)}
        print(json.dumps(rec), flush=True)
        rows.append(rec)
json.dump(rows, open(OUT, "w"), indent=1)
