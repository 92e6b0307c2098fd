#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

int ab_open_beneath(int root, const char *path, int flags, unsigned mode, int no_symlinks) {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (no_symlinks ? RESOLVE_NO_SYMLINKS : 0);
    long fd = -1;
    // With RESOLVE_BENEATH the kernel answers EAGAIN when a rename anywhere on the system raced a `..` of the walk (it
    // cannot be sure the `..` stayed beneath the root). A workspace that renames in a loop while its symlinks hold
    // `..` made the fs routes fail with 500s that way (found by the escape suite). The walk is safe to repeat; after
    // a bounded number of tries EAGAIN is left to the caller (a 409).
    for (int attempt = 0; attempt < 64; attempt++) {
        do { fd = syscall(SYS_openat2, root, path, &how, sizeof(how)); } while (fd < 0 && errno == EINTR);
        if (fd >= 0 || errno != EAGAIN) break;
    }
    return (int)fd;
}

int ab_open_directory_path_nofollow(const char *absolute_path) {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    do { fd = syscall(SYS_openat2, AT_FDCWD, absolute_path, &how, sizeof(how)); } while (fd < 0 && errno == EINTR);
    return (int)fd;
}

int ab_rename(int from_dir, const char *from, int to_dir, const char *to, int noreplace) {
    return (int)syscall(SYS_renameat2, from_dir, from, to_dir, to, noreplace ? RENAME_NOREPLACE : 0);
}

int ab_directory_identity(int fd, uint64_t identity[4]) {
    struct statx info;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &info) != 0) return -1;
    identity[0] = ((uint64_t)info.stx_dev_major << 32) | info.stx_dev_minor;
    identity[1] = info.stx_ino;
    identity[2] = (info.stx_mask & STATX_BTIME) ? (uint64_t)info.stx_btime.tv_sec : 0;
    identity[3] = (info.stx_mask & STATX_BTIME) ? info.stx_btime.tv_nsec : 0;
    return 0;
}
