// The pieces of a workspace's system layer that only the kernel's newer interfaces give: a user namespace with a
// range of ids mapped (the workspace's root is an unprivileged host uid), mounts "idmapped" through it (so that the
// host's root-owned /usr appears owned by the workspace's root), and an overlay built from descriptors. All of it is
// done by the server, which is root in the host's namespaces; nothing here runs in a sandbox.
#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agentbox_syscalls.h"

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = (ssize_t)strlen(text);
    ssize_t written = write(fd, text, (size_t)length);
    int saved = errno;
    close(fd);
    errno = saved;
    return written == length ? 0 : -1;
}

struct userns_child {
    uint32_t owner;
    int ready, hold, hold_writer, ready_reader;
};

// Runs on a stack of its own in the parent's memory (CLONE_VM): raw system calls only, no errno, no allocation.
static int userns_child(void *argument) {
    struct userns_child *child = argument;
    // Its copies of the parent's ends: with them open, the read below would never see the end of the pipe.
    syscall(SYS_close, child->hold_writer);
    syscall(SYS_close, child->ready_reader);
    char status = 'x';
    // The namespace's owner is the workspace's root uid: bwrap, running as it, may then join the namespace.
    if (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setresgid, child->owner, child->owner, child->owner) != 0 ||
        syscall(SYS_setresuid, child->owner, child->owner, child->owner) != 0 || syscall(SYS_unshare, CLONE_NEWUSER) != 0)
        status = 'e';
    if (syscall(SYS_write, child->ready, &status, 1) != 1) return 1;
    char byte;
    // Until the parent has the namespace: it writes a byte. Not the pipe's end: a child that another thread of the
    // server cloned meanwhile holds a copy of every descriptor open then, the write end among them, so the end of
    // the pipe could wait for that child, and that child for this one's parent (two boots at once hung both).
    syscall(SYS_read, child->hold, &byte, 1);
    return 0;
}

int ab_userns_open(uint32_t owner, const char *map) {
    int ready[2], hold[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return -1;
    if (pipe2(hold, O_CLOEXEC) != 0) {
        close(ready[0]);
        close(ready[1]);
        return -1;
    }
    // Not fork: copying the server's page tables cost 2-3 ms a boot. The child shares the memory and uses a small
    // stack of its own.
    size_t stack_size = 64 << 10;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    struct userns_child child = { owner, ready[1], hold[0], hold[1], ready[0] };
    // The child starts with every signal blocked (it inherits this mask): a handler of the server's run in it would
    // run with this thread's state, in memory it shares. SIGKILL still ends it.
    sigset_t all, saved_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_mask);
    pid_t pid = stack == MAP_FAILED ? -1 : clone(userns_child, (char *)stack + stack_size, CLONE_VM | SIGCHLD, &child);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    close(ready[1]);
    if (pid < 0) {
        close(ready[0]);
        close(hold[0]);
        close(hold[1]);
        if (stack != MAP_FAILED) munmap(stack, stack_size);
        errno = saved;
        return -1;
    }
    char status = 0;
    ssize_t got;
    do { got = read(ready[0], &status, 1); } while (got < 0 && errno == EINTR);
    close(ready[0]);
    int result = -1;
    saved = EPERM;
    if (got == 1 && status == 'x') {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
        if (write_file(path, map) == 0) {
            snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
            if (write_file(path, map) == 0) {
                snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
                result = open(path, O_RDONLY | O_CLOEXEC);
            }
        }
        saved = errno;
    }
    char done = 'x';
    while (write(hold[1], &done, 1) < 0 && errno == EINTR) {}
    close(hold[1]);
    close(hold[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    munmap(stack, stack_size);
    if (result < 0) errno = saved;
    return result;
}

int ab_idmapped_tree(int dir_fd, int userns_fd, int read_only) {
    int tree = (int)syscall(SYS_open_tree, dir_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0) return -1;
    struct mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
    attr.userns_fd = (uint64_t)userns_fd;
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
        int saved = errno;
        close(tree);
        errno = saved;
        return -1;
    }
    return tree;
}

int ab_detached_clone(int dir_fd, const char *path, int read_only, int recursive) {
    int tree = (int)syscall(SYS_open_tree, dir_fd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (path[0] ? 0 : AT_EMPTY_PATH)
                            | (recursive ? AT_RECURSIVE : 0));
    if (tree < 0) return -1;
    struct mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof(attr)) != 0) {
        int saved = errno;
        close(tree);
        errno = saved;
        return -1;
    }
    return tree;
}

struct overlay_call {
    const int *lower_fds;
    int nlower, upper_fd, work_fd, root_fd;
    char *message;
    size_t message_size;
    int result, error;
};

static int overlay_mount(const int *lower_fds, int nlower, int upper_fd, int work_fd, char *message, size_t message_size);

// The overlay records its layers' paths as the mounting thread sees them, and shows them in every /proc/PID/mountinfo:
// made on a thread whose root is the workspace's system directory, they read "/usr/upper", never the data directory.
static void *overlay_thread(void *argument) {
    struct overlay_call *call = argument;
    if (unshare(CLONE_FS) != 0 || fchdir(call->root_fd) != 0 || chroot(".") != 0) {
        call->result = -1;
        call->error = errno;
        return NULL;
    }
    call->result = overlay_mount(call->lower_fds, call->nlower, call->upper_fd, call->work_fd, call->message, call->message_size);
    call->error = errno;
    return NULL;
}

int ab_overlay_mount(const int *lower_fds, int nlower, int upper_fd, int work_fd, int root_fd, char *message,
                     size_t message_size) {
    if (message_size > 0) message[0] = 0;
    struct overlay_call call = { lower_fds, nlower, upper_fd, work_fd, root_fd, message, message_size, -1, 0 };
    pthread_t thread;
    int failed = pthread_create(&thread, NULL, overlay_thread, &call);
    if (failed != 0) { errno = failed; return -1; }
    pthread_join(thread, NULL);
    errno = call.error;
    return call.result;
}

int ab_overlay_mount_all(int count, const int *lower_fds, const int *first, const int *nlower, const int *upper_fds,
                         const int *work_fds, int root_fd, int *results, char *messages, size_t message_size) {
    if (count < 0 || count > 8) { errno = EINVAL; return -1; }
    struct overlay_call calls[8];
    pthread_t threads[8];
    int started[8] = {0};
    for (int i = 0; i < count; i++) {
        if (message_size > 0) messages[i * message_size] = 0;
        calls[i] = (struct overlay_call){ lower_fds + first[i], nlower[i], upper_fds[i], work_fds[i], root_fd,
                                          messages + i * message_size, message_size, -1, 0 };
        int failed = pthread_create(&threads[i], NULL, overlay_thread, &calls[i]);
        if (failed != 0) { calls[i].result = -1; calls[i].error = failed; } else started[i] = 1;
    }
    int failures = 0;
    for (int i = 0; i < count; i++) {
        if (started[i]) pthread_join(threads[i], NULL);
        results[i] = calls[i].result >= 0 ? calls[i].result : -(calls[i].error ? calls[i].error : EINVAL);
        if (calls[i].result < 0) failures++;
    }
    return failures == 0 ? 0 : -1;
}

static int overlay_mount(const int *lower_fds, int nlower, int upper_fd, int work_fd, char *message, size_t message_size) {
    int context = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
    if (context < 0) return -1;
    int failed = 0;
    for (int i = 0; i < nlower && !failed; i++)
        failed = syscall(SYS_fsconfig, context, FSCONFIG_SET_FD, "lowerdir+", NULL, lower_fds[i]) != 0;
    if (!failed && upper_fd >= 0) {
        failed = syscall(SYS_fsconfig, context, FSCONFIG_SET_FD, "upperdir", NULL, upper_fd) != 0 ||
                 syscall(SYS_fsconfig, context, FSCONFIG_SET_FD, "workdir", NULL, work_fd) != 0;
    }
    if (!failed) failed = syscall(SYS_fsconfig, context, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0;
    int mount_fd = -1;
    if (!failed) mount_fd = (int)syscall(SYS_fsmount, context, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    int saved = errno;
    if (mount_fd < 0 && message_size > 0) {
        // The file system's own words, when it left any ("overlayfs: ..."), say more than the errno.
        ssize_t length = read(context, message, message_size - 1);
        message[length > 0 ? length : 0] = 0;
    }
    close(context);
    errno = saved;
    return mount_fd;
}
