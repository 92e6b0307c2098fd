#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agentbox_syscalls.h"

#define AB_SPAWN_MAX_FDS 64

// The kernel's layout of rt_sigaction's argument (glibc's struct sigaction is another).
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

// Set once at the server's start, before any spawn; read by the children (a plain load in the vfork child).
static _Atomic unsigned long open_file_soft, open_file_hard;

void ab_spawn_set_open_file_limit(unsigned long soft, unsigned long hard) {
    open_file_soft = soft;
    open_file_hard = hard;
}

pid_t ab_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds,
               const int *cgroup_fds, int ncgroups, int set_ids, uid_t uid, gid_t gid,
               const int *mount_fds, const char *const *mount_targets, int nmounts, const int *ns_fds, int nns) {
    if (nfds < 0 || nfds > AB_SPAWN_MAX_FDS) { errno = EINVAL; return -1; }
    // Written by the child, read by the parent: vfork shares memory until the child execs or exits.
    volatile int child_errno = 0;
    int moved[AB_SPAWN_MAX_FDS];
    struct rlimit open_files = { open_file_soft, open_file_hard };
    // Every signal blocked across the vfork: a handler of the server's run in the child would run on the parent's
    // stack with the parent's thread's state. The child resets the handlers it inherited, then unblocks.
    sigset_t all, saved_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_mask);
    pid_t pid = vfork();
    if (pid == 0) {
        // Only system calls from here on: the child shares the parent's memory.
        struct kernel_sigaction dfl = { SIG_DFL, 0, NULL, 0 };
        for (int sig = 1; sig < 65; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;
            struct kernel_sigaction current;
            if (syscall(SYS_rt_sigaction, sig, NULL, &current, sizeof(unsigned long)) != 0) continue;
            // The ignored ones too (exec would keep them: the server ignores SIGPIPE, and a workspace saw 32 ignored), as
            // a service manager does: the sandbox starts from the defaults.
            if (current.handler != SIG_DFL) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(unsigned long));
        }
        sigset_t none;
        sigemptyset(&none);
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(long));
        if (setsid() < 0) goto fail;
        for (int i = 0; i < ncgroups; i++) {
            if (write(cgroup_fds[i], "0", 1) != 1) goto fail;
        }
        if (nmounts > 0) {
            if (unshare(CLONE_NEWNS) != 0) goto fail;
            if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) goto fail;
            for (int i = 0; i < nmounts; i++) {
                if (syscall(SYS_move_mount, mount_fds[i], "", AT_FDCWD, mount_targets[i], MOVE_MOUNT_F_EMPTY_PATH) != 0)
                    goto fail;
            }
        }
        // Pre-made namespaces (a pooled network and IPC namespace): joined while still root, before the ids drop.
        for (int i = 0; i < nns; i++) {
            if (setns(ns_fds[i], 0) != 0) goto fail;
        }
        // Lowering a limit needs no privilege; raw, like the calls below (the child shares the parent's memory).
        if (open_files.rlim_max > 0 && syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &open_files, NULL) != 0) goto fail;
        // Move every source above the target range first, so that mapping one never clobbers another.
        for (int i = 0; i < nfds; i++) {
            moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, AB_SPAWN_MAX_FDS + 3);
            if (moved[i] < 0) goto fail;
        }
        for (int i = 0; i < nfds; i++) {
            if (dup2(moved[i], i) < 0) goto fail;
        }
        syscall(SYS_close_range, (unsigned)nfds, ~0U, CLOSE_RANGE_CLOEXEC);
        if (set_ids) {
            // Raw system calls: glibc's wrappers would try to change every thread of the (shared) parent.
            if (syscall(SYS_setgroups, 0, NULL) < 0) goto fail;
            if (syscall(SYS_setresgid, gid, gid, gid) < 0) goto fail;
            if (syscall(SYS_setresuid, uid, uid, uid) < 0) goto fail;
        }
        execve(path, argv, envp);
    fail:
        child_errno = errno ? errno : EINVAL;
        _exit(127);
    }
    int spawn_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    errno = spawn_errno;
    if (pid < 0) return -1;
    if (child_errno != 0) {
        int saved = child_errno;
        waitpid(pid, NULL, 0);
        errno = saved;
        return -1;
    }
    return pid;
}
