#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int ab_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > AB_MAX_FDS) { errno = EINVAL; return -1; }
    return ab_send_with_many_fds(sock, buf, len, fds, nfds);
}

int ab_send_with_many_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > AB_BIND_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(int) * AB_BIND_MAX_FDS)]; } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (sent >= 0) return 0;
        if (errno != EINTR) return -1;
    }
}

ssize_t ab_recv_with_fds(int sock, void *buf, size_t cap, int *fds, int *nfds) {
    return ab_recv_with_many_fds(sock, buf, cap, fds, AB_MAX_FDS, nfds);
}

ssize_t ab_recv_with_many_fds(int sock, void *buf, size_t cap, int *fds, int max_fds, int *nfds) {
    if (max_fds < 0 || max_fds > AB_BIND_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    union { struct cmsghdr align; char bytes[CMSG_SPACE(sizeof(int) * AB_BIND_MAX_FDS)]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof(control.bytes) };
    *nfds = 0;
    ssize_t received;
    do { received = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *incoming = (int *)CMSG_DATA(cmsg);
        for (int i = 0; i < count; i++) {
            if (*nfds < max_fds) fds[(*nfds)++] = incoming[i]; else close(incoming[i]);
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (int i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return received;
}

int ab_set_nonblocking(int fd, int nonblocking) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

int ab_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}


int ab_open_path(const char *path, int directory) {
    return open(path, O_PATH | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
}
