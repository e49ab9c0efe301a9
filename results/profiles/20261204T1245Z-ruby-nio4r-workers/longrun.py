"""The 4-worker replica under one long wrk run: answers per second and the wake-up pipe's backlog
(bytes written minus bytes read) every 2 s, to see whether the pipe fills and what follows."""
import json, os, re, signal, socket, subprocess, sys, time
REPO = "/work/wt-ruby-trace"
t, c, dur, workers = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 4
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
path = f"/tmp/rt/long-{workers}-{c}.json"
if os.path.exists(path): os.unlink(path)
srv = subprocess.Popen(["taskset", "-c", "0", "ruby", f"{REPO}/servers/ruby/nio4r_workers.rb", "--port", str(port),
                        "--workers", str(workers), "--counters-out", path], stdout=subprocess.DEVNULL)
time.sleep(0.8)
def snap():
    old = json.load(open(path))["snapshot"] if os.path.exists(path) else 0
    os.kill(srv.pid, signal.SIGUSR1)
    for _ in range(600):
        try:
            cur = json.load(open(path))
            if cur["snapshot"] > old: return cur["counters"]
        except (OSError, ValueError): pass
        time.sleep(0.005)
    return None
w = subprocess.Popen(["taskset", "-c", "1", "wrk", f"-t{t}", f"-c{c}", f"-d{dur}s", "--timeout", "10s",
                      f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)
prev, t0 = snap(), time.monotonic()
print(f"# -t{t} -c{c} {workers} workers, {dur} s: per 2 s interval", flush=True)
print("t_s answers/s dispatches/answer pipe_writes/answer pipe_reads/answer pipe_backlog_bytes poll_rounds/s", flush=True)
while w.poll() is None:
    time.sleep(2)
    cur = snap()
    if cur is None: break
    d = {k: cur[k] - prev[k] for k in cur}
    a = max(d["answers"], 1)
    print(f"{time.monotonic() - t0:5.1f} {d['answers'] / 2:9.0f} {d['dispatches'] / a:8.1f} {d['pipe_writes'] / a:6.2f} "
          f"{d['wakeups'] / a:6.3f} {cur['pipe_writes'] - cur['wakeups']:8d} {d['poll_rounds'] / 2:8.0f}", flush=True)
    prev = cur
out = w.stdout.read()
print("# wrk:", " | ".join(l.strip() for l in out.splitlines() if "Requests/sec" in l or "requests in" in l or "Socket errors" in l))
srv.send_signal(signal.SIGTERM); srv.wait()
