// A thin layer over epoll for the server's reader of supervisors' control sockets (ControlSocketReader.swift):
// Swift's Glibc module does not carry <sys/epoll.h>.
#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

int ab_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int ab_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event event = { .events = EPOLLIN | EPOLLRDHUP, .data = { .u64 = token } };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int ab_epoll_remove(int epfd, int fd) {
    struct epoll_event event = { 0 };
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event);
}

int ab_epoll_wait(int epfd, uint64_t *tokens, int max) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int count = epoll_wait(epfd, events, max, -1);
    for (int i = 0; i < count; i++) tokens[i] = events[i].data.u64;
    return count;
}

ssize_t ab_recv_message(int sock, void *buf, size_t cap, int *fds, int *nfds, int *flags) {
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(int) * AB_SCM_MAX_FD)]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof(control.bytes) };
    *nfds = 0;
    *flags = 0;
    ssize_t received = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (received < 0) return -1;
    *flags = msg.msg_flags;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *incoming = (int *)CMSG_DATA(cmsg);
        for (int i = 0; i < count && *nfds < AB_SCM_MAX_FD; i++) fds[(*nfds)++] = incoming[i];
    }
    return received;
}
