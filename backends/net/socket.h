// Socket set-up shared by every model: listeners, accept, flags, the open-file limit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cb::net {

// Result of opening listeners: the fds (one, or one per thread with SO_REUSEPORT), the bound port,
// or an error message with its context ("unable to bind 127.0.0.1:8080: Address already in use").
struct ListenResult {
  std::vector<int> fds;
  std::uint16_t port = 0;
  std::string error;
};

// Opens `count` listening TCP sockets on host:port (port 0 picks a free port; all sockets share it).
// With count > 1 the sockets use SO_REUSEPORT so that the kernel spreads connections between them.
// A port already in use by anyone (with or without SO_REUSEPORT) is an error. Sockets are blocking;
// callers that need non-blocking ones call set_nonblocking.
ListenResult open_listeners(const std::string& host, std::uint16_t port, int count, int backlog);

// Sets O_NONBLOCK. Returns false on failure.
bool set_nonblocking(int fd);

// Sets TCP_NODELAY: every model answers small responses that must not wait for Nagle.
void set_nodelay(int fd);

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns a human-readable note if it changed
// something (empty otherwise).
std::string raise_nofile_limit();

// Closes fd, ignoring EINTR (Linux closes the fd anyway).
void close_fd(int fd);

// Writes all of buf to a blocking fd (MSG_NOSIGNAL). Returns false if the peer is gone.
bool write_all(int fd, const char* buf, std::size_t len);

}  // namespace cb::net
