#include "backends/net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cb::net {
namespace {

std::string describe(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

int bind_one(const sockaddr_storage& addr, socklen_t len, bool reuseport, int backlog, std::string& err,
             const std::string& where) {
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = "unable to create socket for " + where + ": " + std::strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    err = "unable to bind " + where + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (listen(fd, backlog) != 0) {
    err = "unable to listen on " + where + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

void set_port(sockaddr_storage& ss, std::uint16_t port) {
  if (ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
  else reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
}

}  // namespace

ListenResult open_listeners(const std::string& host, std::uint16_t port, int count, int backlog) {
  ListenResult r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int gai = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (gai != 0 || res == nullptr) {
    r.error = "unable to resolve " + describe(host, port) + ": " + gai_strerror(gai);
    return r;
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  socklen_t addr_len = res->ai_addrlen;
  freeaddrinfo(res);

  if (count <= 1) {
    int fd = bind_one(addr, addr_len, false, backlog, r.error, describe(host, port));
    if (fd < 0) return r;
    r.fds.push_back(fd);
    r.port = port_of(fd);
    return r;
  }
  // SO_REUSEPORT would let us share a port with another reuseport server (say, a forgotten
  // benchmark). A probe bound without it fails if anyone holds the port, and picks port 0's port.
  int probe = bind_one(addr, addr_len, false, backlog, r.error, describe(host, port));
  if (probe < 0) return r;
  std::uint16_t chosen = port_of(probe);
  ::close(probe);
  set_port(addr, chosen);
  for (int i = 0; i < count; ++i) {
    int fd = bind_one(addr, addr_len, true, backlog, r.error, describe(host, chosen));
    if (fd < 0) {
      for (int f : r.fds) ::close(f);
      r.fds.clear();
      return r;
    }
    r.fds.push_back(fd);
  }
  r.port = chosen;
  return r;
}

bool set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string raise_nofile_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return {};
  rlim_t old = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return {};
  return "raised the open-file soft limit from " + std::to_string(old) + " to " + std::to_string(lim.rlim_cur);
}

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

bool write_all(int fd, const char* buf, std::size_t len) {
  while (len > 0) {
    ssize_t n = ::send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace cb::net
