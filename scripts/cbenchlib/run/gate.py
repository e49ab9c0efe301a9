"""The start gate (spawn(gate=True)): several load generators started on their hosts, held until the
harness releases them together, so neither process start-up nor an ssh round trip skews the start.
Used by every host's spawn (localhost, netnshost, sshhost) and read by run/generators.py."""
from __future__ import annotations

import re

# The start gate (spawn(gate=True)): runs
# before the command on its host, says it is armed, waits for one byte on its standard input,
# reports the time it was released on that host's CLOCK_MONOTONIC (the harness's own clock on
# this machine and in its namespaces) and its own CPU time so far (the command's rusage includes
# it: exec keeps a process's CPU times, and wait4 adds those of children it reaped, such as a
# pyenv shim's), then execs the command with /dev/null as its standard input. EOF instead of the
# byte (the harness died or gave up): exit 125, the command never runs.
# python3 -S: no site module, ~10 ms of start-up, all of it before the release. On this machine
# (and its namespaces) the harness's own interpreter runs it (LocalHost._gate_argv).
GATE_SCRIPT = ("import os,sys,time\n"
               "os.write(2,b'cbench-gate-armed\\n')\n"
               "if os.read(0,1)!=b'g':os._exit(125)\n"
               "t=os.times()\n"
               "os.write(2,b'cbench-gate-go %d %.6f %.6f\\n'%(time.monotonic_ns(),t.user+t.children_user,"
               "t.system+t.children_system))\n"
               "n=os.open(os.devnull,os.O_RDONLY);os.dup2(n,0);os.close(n)\n"
               "os.execvp(sys.argv[1],sys.argv[1:])\n")
GATE_ARGV = ["python3", "-S", "-c", GATE_SCRIPT]
GATE_ARMED = "cbench-gate-armed"
GATE_GO_RE = re.compile(r"^cbench-gate-go (\d+) ([0-9.]+) ([0-9.]+)$", re.M)
