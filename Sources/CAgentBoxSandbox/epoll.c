// A thin layer over epoll for the server's reader of supervisors' control sockets (ControlSocketReader.swift):
// Swift's Glibc module does not carry <sys/epoll.h>.
#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <sys/epoll.h>

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
