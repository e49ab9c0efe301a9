#include "backends/server/cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

namespace cb::server {
namespace {

using Clock = std::chrono::steady_clock;

// Restarts allowed within kRestartWindow before the parent gives up: enough for a few crashes
// under a test or a hostile client, few enough that a model that dies at start-up stops within
// a second instead of forking forever.
constexpr int kMaxRestarts = 5;
constexpr auto kRestartWindow = std::chrono::seconds(10);
// SIGTERM to SIGKILL for the workers: under the 5 s the harness (runner.STOP_GRACE_S) and the
// conformance suite (STOP_TIMEOUT_S) give the parent, so the parent still exits on its own.
constexpr auto kStopGrace = std::chrono::milliseconds(4000);
// Start-up (the workers reaching worker_ready) is quick; this bounds a worker stuck before it.
constexpr int kReadyTimeoutMs = 20'000;

int g_ready_fd = -1;  // in a worker of the first generation: the write end of the readiness pipe
pid_t g_parent = 0;   // in a worker: the supervisor's pid; 0 outside cluster mode and in the parent
int g_slot = -1;      // in a worker: its slot; -1 outside cluster mode and in the parent

enum class Phase { serving, stopping };

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

class Supervisor {
 public:
  Supervisor(const Options& opt) : opt_(opt), pids_(static_cast<std::size_t>(opt.processes), -1) {
    sigemptyset(&waited_);
    sigaddset(&waited_, SIGINT);
    sigaddset(&waited_, SIGTERM);
    sigaddset(&waited_, SIGCHLD);
    sigaddset(&waited_, SIGUSR1);  // counters snapshot: forwarded to the workers (cluster.h)
    // SIGCHLD is taken with sigtimedwait like the stop signals: blocked here, before any fork.
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, nullptr);
  }

  // Forks worker `slot`. Returns true in the child, false in the parent.
  bool spawn(std::size_t slot, int ready_fd) {
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "cbench-server: unable to fork worker %zu: %s\n", slot, std::strerror(errno));
      return false;  // the slot stays empty; start-up treats it as a failure, restarts retry later
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // the parent died before the prctl took effect
      sigset_t chld;
      sigemptyset(&chld);
      sigaddset(&chld, SIGCHLD);
      sigprocmask(SIG_UNBLOCK, &chld, nullptr);
      g_ready_fd = ready_fd;
      g_parent = parent;
      g_slot = static_cast<int>(slot);
      return true;
    }
    pids_[slot] = pid;
    return false;
  }

  // Start-up: N workers, then the readiness line once all have reported. Returns true in a child.
  bool start(const std::vector<int>& listeners) {
    (void)listeners;  // inherited across fork as they are; nothing to do per worker
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      std::fprintf(stderr, "cbench-server: unable to create the readiness pipe: %s\n", std::strerror(errno));
      std::exit(1);
    }
    std::fflush(stdout);  // nothing buffered may be written twice by the children
    std::fflush(stderr);
    for (std::size_t i = 0; i < pids_.size(); ++i) {
      if (spawn(i, pipe_fds[1])) {
        close(pipe_fds[0]);
        return true;
      }
    }
    close(pipe_fds[1]);
    std::size_t ready = 0;
    const auto deadline = Clock::now() + std::chrono::milliseconds(kReadyTimeoutMs);
    while (ready < pids_.size()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{pipe_fds[0], POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      char buf[64];
      ssize_t got = read(pipe_fds[0], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;  // EOF: every worker has reported or died
      ready += static_cast<std::size_t>(got);
    }
    close(pipe_fds[0]);
    if (ready < pids_.size()) {
      std::fprintf(stderr, "cbench-server: %zu of %zu workers became ready; stopping\n", ready, pids_.size());
      stop_all();
      std::exit(1);
    }
    std::string workers;
    for (pid_t pid : pids_) workers += (workers.empty() ? "" : ",") + std::to_string(pid);
    std::printf("cbench-server ready model=%s host=%s port=%d threads=%d pid=%d processes=%d workers=%s\n",
                opt_.model.c_str(), opt_.host.c_str(), opt_.port, opt_.threads, static_cast<int>(getpid()),
                opt_.processes, workers.c_str());
    std::fflush(stdout);
    return false;
  }

  // The parent's loop: restart dead workers until a stop signal. Returns true in a restarted child.
  bool supervise() {
    for (;;) {
      timespec tick{1, 0};  // a periodic reap in case a SIGCHLD was merged with another
      int sig = sigtimedwait(&waited_, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) return false;
      if (sig == SIGUSR1) {
        for (pid_t p : pids_)
          if (p > 0) kill(p, SIGUSR1);
        continue;
      }
      if (stop_pending()) return false;  // a group-wide SIGTERM: do not restart its victims
      for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;
        std::size_t slot = forget(pid, status);
        if (slot == pids_.size()) continue;
        std::fprintf(stderr, "cbench-server: worker %zu (pid %d) %s; restarting it\n", slot, static_cast<int>(pid),
                     describe(status).c_str());
        const auto now = Clock::now();
        while (!restarts_.empty() && now - restarts_.front() > kRestartWindow) restarts_.pop_front();
        if (static_cast<int>(restarts_.size()) >= kMaxRestarts) {
          std::fprintf(stderr, "cbench-server: workers died %d times within %lld s; giving up\n", kMaxRestarts + 1,
                       static_cast<long long>(kRestartWindow.count()));
          stop_all();
          std::exit(1);
        }
        restarts_.push_back(now);
        std::fflush(stderr);
        if (spawn(slot, -1)) return true;
      }
    }
  }

  // SIGTERM to every worker, SIGKILL after kStopGrace; returns the parent's exit status.
  // SIGTERM is resent every kResendInterval: a worker heeds only its parent's (stop_signal_
  // accepted), and a standard signal does not queue, so the parent's SIGTERM arriving while a
  // group-wide one from someone else is still pending merges into that one and is ignored with it.
  int stop_all() {
    constexpr auto kResendInterval = std::chrono::milliseconds(100);
    const auto deadline = Clock::now() + kStopGrace;
    auto next_send = Clock::now();
    bool killed = false;
    while (alive() > 0) {
      if (!killed && Clock::now() >= next_send) {
        for (pid_t p : pids_)
          if (p > 0) kill(p, SIGTERM);
        next_send = Clock::now() + kResendInterval;
      }
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid > 0) {
        forget(pid, status);
        continue;
      }
      if (pid < 0 && errno == ECHILD) break;
      if (!killed && Clock::now() >= deadline) {
        for (pid_t p : pids_)
          if (p > 0) kill(p, SIGKILL);
        std::fprintf(stderr, "cbench-server: %d workers still running %lld ms after SIGTERM; killed\n", alive(),
                     static_cast<long long>(kStopGrace.count()));
        killed = true;
        failed_ = true;
      }
      timespec wait{0, 20'000'000};  // 20 ms: woken earlier by the next SIGCHLD
      sigtimedwait(&waited_, nullptr, &wait);
    }
    return failed_ ? 1 : 0;
  }

 private:
  // Clears pid's slot and records a failing exit; returns the slot (pids_.size() if unknown).
  std::size_t forget(pid_t pid, int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      failed_ = true;
      std::fprintf(stderr, "cbench-server: worker pid %d %s\n", static_cast<int>(pid), describe(status).c_str());
    }
    for (std::size_t i = 0; i < pids_.size(); ++i) {
      if (pids_[i] == pid) {
        pids_[i] = -1;
        return i;
      }
    }
    return pids_.size();
  }

  int alive() const {
    int n = 0;
    for (pid_t pid : pids_) n += pid > 0;
    return n;
  }

  bool stop_pending() const {
    sigset_t pending;
    sigpending(&pending);
    return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
  }

  const Options& opt_;
  std::vector<pid_t> pids_;  // per slot; -1 while empty
  std::deque<Clock::time_point> restarts_;
  sigset_t waited_;
  bool failed_ = false;
};

}  // namespace

void run_cluster(const Options& opt, const std::vector<int>& listeners) {
  // The supervisor lives on this (the main) thread for the rest of the parent's life: a worker's
  // PR_SET_PDEATHSIG refers to it. It is static because restarted children return through it.
  static Supervisor supervisor(opt);
  if (supervisor.start(listeners)) return;
  if (supervisor.supervise()) return;
  int status = supervisor.stop_all();
  std::fprintf(stderr, "cbench-server: stopped %d workers (status %d)\n", opt.processes, status);
  std::exit(status);
}

bool stop_signal_accepted(const siginfo_t& info) {
  if (g_parent == 0) return true;
  return info.si_pid == g_parent || info.si_pid == getpid();
}

int worker_slot() { return g_slot; }

void worker_ready() {
  if (g_ready_fd < 0) return;
  char byte = 1;
  while (write(g_ready_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  close(g_ready_fd);
  g_ready_fd = -1;
}

}  // namespace cb::server
