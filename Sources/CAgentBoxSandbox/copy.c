#define _GNU_SOURCE
#include <sched.h>
#include "agentbox_sandbox.h"

#include <errno.h>
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

int ab_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int ab_set_window_size(int fd, unsigned short cols, unsigned short rows) {
    struct winsize size = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &size);
}
