// Cluster mode: `cbench-server --processes N` runs N forked copies of one model, each
// with its own --threads, sharing the listeners main opened before the fork (one accept queue,
// as Unicorn, Puma's and Falcon's cluster modes and Apache prefork have it). The parent process
// serves nothing: it supervises.
//
// Contract of the supervisor (the parent):
// - Readiness: every worker reports once it is about to run its model (worker_ready()); the
//   parent prints main's readiness line once, after all N have reported, with the extra fields
//   processes=N and workers=PID,PID,... (pid= is the parent's).
// - A worker that dies while the server is not stopping is forked again into its slot, at most
//   kMaxRestarts times within kRestartWindow (a model that crashes at start-up must not turn
//   into a fork loop); beyond that the parent stops the rest and exits 1.
// - SIGTERM or SIGINT: the parent sends SIGTERM to every worker, waits kStopGrace for them, sends
//   SIGKILL to any left, and exits 0 if every worker's exit status was 0 during the whole run
//   (a worker that exited non-zero, as a sanitizer report makes it, gives 1 at the end even if it
//   was restarted; a worker killed by a signal is only restarted and reported on stderr).
// - A parent killed with SIGKILL leaves no worker: each worker asks for SIGKILL when its parent
//   dies (PR_SET_PDEATHSIG) and checks getppid() right after asking, which closes the window in
//   which the parent died between fork and prctl. PR_SET_PDEATHSIG fires when the *thread* that
//   forked exits; the parent forks only from its main thread and runs no other, so that is the
//   process's death. A pipe whose EOF workers watch would need every model's loop to watch it
//   (a blocking-pool worker sits in accept or in a handler's sleep); the prctl needs nothing from
//   the models, and SIGKILL cannot be blocked by a stuck one.
//
// Listeners: all of main's listeners are inherited by every worker. A model with one listener
// then has one accept queue drained by N processes (the kernel wakes one blocked accept per
// connection; epoll models all wake and the losers' accept returns EAGAIN, as with threads).
// A per-thread-listener model (SO_REUSEPORT group of --threads sockets, opened once here) gives
// thread i of every worker listener i: the kernel hashes connections over --threads queues, each
// shared by the N processes, so no connection is tied to one process. SO_REUSEPORT per process
// (each worker opening its own socket, so each has a private queue: a connection hashed to a busy
// worker waits while another is idle) is not offered; that is what Unicorn and Puma avoid.
//
// Mechanism counters (--counters-out PATH, counters.h) in cluster mode: each worker counts in
// its own address space and writes its own file, PATH.w<slot> (slot 0..N-1; a restarted worker
// takes over its slot's file and starts again from zero, with its new pid in the JSON). The
// parent writes nothing: on SIGUSR1 it forwards SIGUSR1 to every live worker, and each writes a
// fresh snapshot. The harness (scripts/cbenchlib/servercounters.py) sends SIGUSR1 to the parent,
// waits for all N files to be fresh, and sums them, keeping each worker's figures beside the
// sum. Chosen over the parent merging the files: that would make the supervisor wait for N
// asynchronous writes inside its loop and decide what a worker that does not answer means, which
// the harness already does for one file; per-worker files also give the per-worker figures.
// A worker restarted within a measured window has a new pid in its file; the harness then
// leaves that window's sum out rather than report an undercount.
#pragma once
#include <signal.h>

#include <vector>

#include "backends/server/model.h"

namespace cb::server {

// Forks opt.processes workers and supervises them. Returns only in a worker (which then runs the
// model as a single-process server would, with the listeners it inherited); the parent exits
// from inside (std::exit with the status described above). Call before any thread is started,
// with SIGINT and SIGTERM blocked (main's sigwait arrangement), and after the listeners are open.
void run_cluster(const Options& opt, const std::vector<int>& listeners);

// Whether a stop signal (SIGTERM/SIGINT, as sigwaitinfo reported it) stops this process: always
// outside a worker; in a worker only if its parent (or the worker itself) sent it. A stray
// SIGTERM to one worker, or a process-group signal (the harness's stop, a terminal's Ctrl-C),
// is left to the parent, which stops every worker: a model's stop may shut down the listener
// (blocking-pool's shutdown() wakes its blocked accepts), and the listener is shared, so one
// worker stopping alone would stop the accept queue of all of them. To replace one worker, kill
// it (SIGKILL): the parent restarts it.
bool stop_signal_accepted(const siginfo_t& info);

// In a worker: tells the parent this worker is serving (once; later calls and calls outside a
// worker do nothing). Main calls it where a single-process server prints its readiness line.
void worker_ready();

// In a worker: its slot (0..N-1, kept by a restarted worker); -1 outside a worker. Main appends
// ".w<slot>" to --counters-out with it (the per-worker files above).
int worker_slot();

}  // namespace cb::server
