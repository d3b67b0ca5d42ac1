#ifndef JADUGAR_CHIREDIS_SHIM_H
#define JADUGAR_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <sys/socket.h>

/* Accessors for fields whose C types import awkwardly into Swift (a fixed-size char array, an
   array of pointers), so that the adapter never indexes raw C memory itself. */

/* The context's error text; valid while the context lives. */
static inline const char *jadugar_redis_errstr(const redisContext *context) {
    return context->errstr;
}

/* The context's socket, or -1. */
static inline int jadugar_redis_fd(const redisContext *context) {
    return context->fd;
}

/* Element `index` of an array reply. */
static inline redisReply *jadugar_redis_element(const redisReply *reply, size_t index) {
    return reply->element[index];
}

/* Shuts a socket down in both directions, so that a thread blocked reading it returns. Safe to
   call from another thread than the one that owns the context: it touches only the kernel socket. */
static inline int jadugar_redis_shutdown_socket(int fd) {
    return shutdown(fd, SHUT_RDWR);
}

#endif
