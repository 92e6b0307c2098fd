#define _GNU_SOURCE
#include <sched.h>
#include "agentbox_sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int ab_clone_file(int src, int dst) {
    if (ioctl(dst, FICLONE, src) == 0) return 1;
    // Not a copy-on-write file system (EOPNOTSUPP, EINVAL, EXDEV): copy the bytes.
    for (;;) {
        ssize_t n = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0);
        if (n == 0) return 0;
        if (n > 0) continue;
        if (errno == EINTR) continue;
        if (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP) break;
        return -1;
    }
    char buffer[1 << 16];
    for (;;) {
        ssize_t n = read(src, buffer, sizeof buffer);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(dst, buffer + done, (size_t)(n - done));
            if (w < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            done += w;
        }
    }
}

int ab_inotify_init(void) { return inotify_init1(IN_NONBLOCK | IN_CLOEXEC); }

int ab_inotify_watch_fd(int inotify_fd, int dir_fd, unsigned mask) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", dir_fd);
    return inotify_add_watch(inotify_fd, path, mask);
}

int ab_syncfs(int fd) { return syncfs(fd); }

int ab_join_network_namespace(int fd) { return setns(fd, CLONE_NEWNET); }

struct ab_listen_request {
    int namespace_fd;
    int port;
    int result;
};

static void *ab_listen_thread(void *argument) {
    struct ab_listen_request *request = argument;
    request->result = -1;
    if (setns(request->namespace_fd, CLONE_NEWNET) != 0) { request->result = -errno; return NULL; }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { request->result = -errno; return NULL; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)request->port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 128) != 0) {
        request->result = -errno;
        close(fd);
        return NULL;
    }
    request->result = fd;
    return NULL;
}

int ab_listen_in_network_namespace(int namespace_fd, int port) {
    struct ab_listen_request request = { .namespace_fd = namespace_fd, .port = port, .result = -EINVAL };
    pthread_t thread;
    int failed = pthread_create(&thread, NULL, ab_listen_thread, &request);
    if (failed) return -failed;
    pthread_join(thread, NULL);
    return request.result;
}

int ab_drop_queued_connections(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
    int dropped = 0;
    for (;;) {
        int connection = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (connection < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return dropped;
            return -1;
        }
        struct linger reset = { .l_onoff = 1, .l_linger = 0 };
        (void)setsockopt(connection, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(connection);
        dropped++;
    }
}

int ab_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int ab_set_window_size(int fd, unsigned short cols, unsigned short rows) {
    struct winsize size = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &size);
}
