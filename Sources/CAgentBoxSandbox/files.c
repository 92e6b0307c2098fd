#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
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
    long fd;
    do { fd = syscall(SYS_openat2, root, path, &how, sizeof(how)); } while (fd < 0 && errno == EINTR);
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
