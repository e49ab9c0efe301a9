#include "backends/net/accept.h"

#include <sys/socket.h>

#include <cerrno>
#include <thread>

#include "backends/net/socket.h"

namespace cb::net {

Accepted accept_connection(int listen_fd, bool nonblocking) {
  int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, flags);
    if (fd >= 0) return {accept_status::ok, fd};
    switch (errno) {
      case EINTR: continue;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM: return {accept_status::out_of_descriptors, -1};
      case EINVAL:  // shutdown(2) of the listener: how the blocking models wake their acceptors
      case EBADF:
      case ENOTSOCK: return {accept_status::stopped, -1};
      default: return {accept_status::again, -1};  // EAGAIN, ECONNABORTED, EPROTO, EPERM, network errors
    }
  }
}

int accept_blocking(int listen_fd) {
  for (;;) {
    Accepted a = accept_connection(listen_fd, /*nonblocking=*/false);
    switch (a.status) {
      case accept_status::ok:
        set_nodelay(a.fd);
        count_accepted();
        return a.fd;
      case accept_status::stopped: return -1;
      case accept_status::out_of_descriptors: std::this_thread::sleep_for(kAcceptRetryDelay); break;
      case accept_status::again: break;  // that client left: the next accept may succeed
    }
  }
}

void close_connection(int fd) {
  close_fd(fd);
  count_closed();
}

void Acceptor::adopt(int fd) {
  set_nodelay(fd);
  count_accepted();
}

}  // namespace cb::net
