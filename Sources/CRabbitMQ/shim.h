#ifndef JADUGAR_CRABBITMQ_SHIM_H
#define JADUGAR_CRABBITMQ_SHIM_H
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

// amqp_login_with_properties is variadic: Swift cannot call it, so one wrapper per SASL method.

/// Logs in with SASL PLAIN (user name and password).
static inline amqp_rpc_reply_t jadugar_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                        int channel_max, int frame_max, int heartbeat,
                                                        const amqp_table_t *properties, const char *user,
                                                        const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/// Logs in with SASL EXTERNAL (the TLS client certificate names the user).
static inline amqp_rpc_reply_t jadugar_amqp_login_external(amqp_connection_state_t state, const char *vhost,
                                                           int channel_max, int frame_max, int heartbeat,
                                                           const amqp_table_t *properties, const char *identity) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_EXTERNAL, identity);
}

// The wake-up descriptor of a connection thread: an eventfd that callers write to and the thread polls
// beside the socket. Macros (EFD_*, POLLIN) do not all reach Swift, hence these wrappers.

/// A non-blocking, close-on-exec eventfd, or -1 with errno set.
static inline int jadugar_wakeup_create(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/// Adds one to the eventfd, waking a poll on it. Retries on EINTR; EAGAIN means it is already signalled.
static inline void jadugar_wakeup_signal(int fd) {
    uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/// Resets the eventfd after a wake-up.
static inline void jadugar_wakeup_drain(int fd) {
    uint64_t value;
    while (read(fd, &value, sizeof value) < 0 && errno == EINTR) {
    }
}

/// Waits until `socket_fd` (if >= 0) is readable or `wake_fd` is signalled, at most `timeout_ms`
/// (-1: no limit). Returns a bit set: 1 the socket is readable (or failed), 2 the wake-up fired; 0 on
/// timeout; -1 on error (errno set; EINTR is reported as 0).
static inline int jadugar_wait_readable(int socket_fd, int wake_fd, int timeout_ms) {
    struct pollfd fds[2];
    int count = 0;
    int socket_index = -1;
    if (socket_fd >= 0) {
        fds[count].fd = socket_fd;
        fds[count].events = POLLIN;
        fds[count].revents = 0;
        socket_index = count++;
    }
    fds[count].fd = wake_fd;
    fds[count].events = POLLIN;
    fds[count].revents = 0;
    int wake_index = count++;
    int ready = poll(fds, (nfds_t)count, timeout_ms);
    if (ready < 0) {
        return errno == EINTR ? 0 : -1;
    }
    int result = 0;
    if (socket_index >= 0 && fds[socket_index].revents != 0) result |= 1;
    if (fds[wake_index].revents != 0) result |= 2;
    return result;
}

/// Waits until `socket_fd` is readable (or failed), at most `timeout_ms`. Returns 1 when it is,
/// 0 on timeout or EINTR, -1 on error (errno set).
static inline int jadugar_wait_socket(int socket_fd, int timeout_ms) {
    struct pollfd pfd = {.fd = socket_fd, .events = POLLIN, .revents = 0};
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready < 0) return errno == EINTR ? 0 : -1;
    return ready > 0 ? 1 : 0;
}

/// Writes all of `length` bytes to a non-blocking socket, waiting in `poll` while its buffer is
/// full (at most `timeout_ms` per wait; -1 for no limit). Returns 0, or -1 with errno set
/// (ETIMEDOUT when a wait ran out).
static inline int jadugar_send_all(int fd, const void *bytes, size_t length, int timeout_ms) {
    const char *cursor = (const char *)bytes;
    while (length > 0) {
        ssize_t sent = send(fd, cursor, length, MSG_NOSIGNAL);
        if (sent > 0) {
            cursor += sent;
            length -= (size_t)sent;
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
            int ready = poll(&pfd, 1, timeout_ms);
            if (ready == 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            if (ready < 0 && errno != EINTR) return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

/// Holds back partial TCP segments (`on` = 1) until released (`on` = 0), so that a burst of small
/// writes leaves in as few packets as possible. Linux only; elsewhere it does nothing.
static inline void jadugar_tcp_cork(int fd, int on) {
#ifdef TCP_CORK
    if (fd >= 0) (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
#else
    (void)fd;
    (void)on;
#endif
}

#endif
