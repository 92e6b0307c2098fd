// agentbox-sandbox-init: the first process (PID 1) of a workspace sandbox, and the parent of every process the
// server starts in it.
//
// It is small and written in C on purpose: it lives in every awake workspace (memory per workspace is a goal), it
// must fork safely (single-threaded), and it runs on the sandbox's own userland without a Swift runtime.
//
//   fd 0  control socket (SOCK_SEQPACKET) from the server. One message per request, fields separated by NUL:
//           spawn  NUL id NUL cwd NUL argc NUL argv... NUL envc NUL env... NUL   (+ stdin, stdout, stderr attached)
//           spawn-tty NUL id NUL cwd NUL cols NUL rows NUL argc NUL argv... NUL envc NUL env... NUL
//                  (+ one socket attached): starts the process on a new pseudo-terminal of the sandbox (its
//                  controlling terminal) and sends the terminal's master descriptor back through that socket
//           signal NUL id NUL signo NUL    signal the process's group
//           kill   NUL id NUL              SIGKILL the process, its group and every descendant
//           park   NUL                     (a pre-started sandbox's PID 1) kill every other process of the sandbox,
//                  report their exits, give its tmpfs mounts back what they held when it was built (park.c), then
//                  reply `parked`, or `unparkable REASON` when it cannot be given back. From the request on, spawns
//                  fail (EPERM, stage setup) until `unpark`
//           unpark NUL                     processes may start again (the workspace's next boot took the sandbox)
//   fd 1  the same control socket, the other way: replies, one line per event, each written whole by one write() of
//           at most AB_MAX_REPLY_LINE bytes (one message each):
//           ready | started ID PID | failed ID ERRNO STAGE | exited ID CODE SIGNAL | parked | unparkable REASON |
//           error TEXT
//   fd 2  the same socket again: diagnostics (ours and bwrap's, one message per write), which the server keeps apart by
//         their not parsing as replies. Never write a byte the workspace chose here (a file name may hold a newline,
//         and then a forged reply): say what failed with strerror() and names of our own only.
//
// The workspace runs as the same uid as this process, so the supervisor makes itself non-dumpable: the kernel then
// refuses the workspace ptrace, /proc/1/mem, /proc/1/fd and /proc/1/environ, through which it could stop the
// supervisor or write forged replies on its socket. Its children drop every descriptor but their own stdio before
// they exec, and an exec makes them dumpable again (the workspace may debug its own programs).
//
// When the control socket closes (the server stops the workspace, or died), it kills every process of the
// sandbox and exits; as PID 1 of the PID namespace its exit takes the namespace down with it.
//
// Options: --nproc N and --as BYTES set RLIMIT_NPROC and RLIMIT_AS on every child (for hosts without cgroups);
// --oom-reset makes each child undo the supervisor's OOM protection (oom_score_adj 0); --prestarted starts a sandbox
// ahead of its workspace, bound later through descriptor 3 (prestart.c).
#define _GNU_SOURCE
#include "agentbox_sandbox.h"
#include "park.h"
#include "prestart.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agentbox_syscalls.h"

extern char **environ;

struct child { unsigned long long id; pid_t pid; };
static struct child *children;
static size_t child_count, child_capacity;
static long long limit_nproc = -1, limit_as = -1;
static int oom_reset;
static char message[AB_MAX_MESSAGE + 1];

static void reply(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *format, ...) {
    char line[AB_MAX_REPLY_LINE + 1];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    if (length <= 0) return;
    if (length > AB_MAX_REPLY_LINE) {
        // Cut, but still one line: the server stops a sandbox whose replies run past the limit.
        length = AB_MAX_REPLY_LINE;
        line[length - 1] = '\n';
    }
    const char *cursor = line;
    while (length > 0) {
        ssize_t written = write(1, cursor, (size_t)length);
        if (written < 0) {
            if (errno == EINTR) continue;
            return;  // the server is gone; the control socket will tell us too
        }
        cursor += written;
        length -= (int)written;
    }
}

static void remember(unsigned long long id, pid_t pid) {
    if (child_count == child_capacity) {
        size_t capacity = child_capacity ? child_capacity * 2 : 64;
        struct child *grown = realloc(children, capacity * sizeof(*children));
        if (!grown) { kill(pid, SIGKILL); return; }
        children = grown;
        child_capacity = capacity;
    }
    children[child_count++] = (struct child){ id, pid };
}

static struct child *find_by_id(unsigned long long id) {
    for (size_t i = 0; i < child_count; i++) if (children[i].id == id) return &children[i];
    return NULL;
}

static void forget_at(size_t index) {
    children[index] = children[--child_count];
}

// Splits `length` bytes of `message` into NUL-terminated fields. Returns the field count, at most `max`.
static int split_fields(char *buffer, size_t length, char **fields, int max) {
    int count = 0;
    size_t start = 0;
    for (size_t i = 0; i < length && count < max; i++) {
        if (buffer[i] == '\0') {
            fields[count++] = buffer + start;
            start = i + 1;
        }
    }
    return count;
}

static void close_fds(int *fds, int count) {
    for (int i = 0; i < count; i++) close(fds[i]);
}

// In a child before exec: closes every descriptor above stdio except `keep`, so that nothing of the supervisor's
// (its control socket, its reply pipe, other processes' descriptors) reaches the workspace, even for the moment
// before exec. close_range needs Linux 5.9; before, /proc/self/fd lists them (a process may always read its own).
static void close_other_descriptors(int keep) {
    if ((keep == 3 || syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0)
        && syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0) return;
    DIR *directory = opendir("/proc/self/fd");
    if (!directory) return;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        int fd = atoi(entry->d_name);
        if (fd > 2 && fd != keep && fd != dirfd(directory)) close(fd);
    }
    closedir(directory);
}

// Waits until the child `pid` has exec'd (its close-on-exec status pipe reaches its end) or reported a failure.
// The workspace can stop the child before that (same uid, SIGSTOP), so the wait also ends when the server hangs up
// (fd 0): then the child is killed and -1 returned, and the main loop sees the hang-up and stops the sandbox.
static ssize_t wait_for_exec(int status_fd, pid_t pid, int report[2]) {
    for (;;) {
        struct pollfd polls[2] = { { .fd = status_fd, .events = POLLIN }, { .fd = 0, .events = 0 } };
        if (poll(polls, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;  // cannot poll: wait for the child alone
        }
        if (polls[0].revents) break;
        if (polls[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
    }
    ssize_t got;
    do { got = read(status_fd, report, 2 * sizeof(int)); } while (got < 0 && errno == EINTR);
    return got < 0 ? 0 : got;
}

static void child_fail(int pipe_fd, int error, char stage) {
    int report[2] = { error, stage };
    ssize_t ignored = write(pipe_fd, report, sizeof(report));
    (void)ignored;
    _exit(127);
}

// Opens a new pseudo-terminal of the sandbox's own devpts, sized cols x rows; returns the master (close-on-exec), or
// -1 with errno set. The child opens the slave from the master (TIOCGPTPEER), never by its path: /dev is a directory
// the workspace's root may change, so /dev/pts/N could lead elsewhere.
static int open_terminal(unsigned short cols, unsigned short rows) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    struct winsize size = { .ws_row = rows, .ws_col = cols };
    if (grantpt(master) < 0 || unlockpt(master) < 0 || ioctl(master, TIOCSWINSZ, &size) < 0) {
        int saved = errno;
        close(master);
        errno = saved;
        return -1;
    }
    return master;
}

// Between a park request and the unpark, no process starts: one whose request crossed the park must not live on in
// a sandbox its workspace has left.
static int parked;

static void spawn(char **fields, int count, int *fds, int nfds, int tty) {
    // fields: "spawn", id, cwd, argc, argv..., envc, env...   or   "spawn-tty", id, cwd, cols, rows, argc, ...
    int first = tty ? 5 : 3;  // index of argc
    if (count < first + 2 || nfds != (tty ? 1 : 3)) { reply("error malformed spawn request\n"); close_fds(fds, nfds); return; }
    unsigned long long id = strtoull(fields[1], NULL, 10);
    if (parked) { reply("failed %llu %d setup\n", id, EPERM); close_fds(fds, nfds); return; }
    const char *cwd = fields[2];
    long argc = strtol(fields[first], NULL, 10);
    if (argc < 1 || first + 1 + argc >= count) { reply("error malformed spawn arguments\n"); close_fds(fds, nfds); return; }
    char **argv = calloc((size_t)argc + 1, sizeof(char *));
    long envc = strtol(fields[first + 1 + argc], NULL, 10);
    if (envc < 0 || first + 2 + argc + envc > count) { reply("error malformed spawn environment\n"); free(argv); close_fds(fds, nfds); return; }
    char **envp = calloc((size_t)envc + 1, sizeof(char *));
    if (!argv || !envp) { reply("failed %llu %d alloc\n", id, ENOMEM); free(argv); free(envp); close_fds(fds, nfds); return; }
    for (long i = 0; i < argc; i++) argv[i] = fields[first + 1 + i];
    for (long i = 0; i < envc; i++) envp[i] = fields[first + 2 + argc + i];

    int master = -1;
    if (tty) {
        long cols = strtol(fields[3], NULL, 10), rows = strtol(fields[4], NULL, 10);
        if (cols < 1 || cols > 65535 || rows < 1 || rows > 65535) cols = 80, rows = 24;
        master = open_terminal((unsigned short)cols, (unsigned short)rows);
        if (master < 0) {
            reply("failed %llu %d terminal\n", id, errno);
            free(argv); free(envp); close_fds(fds, nfds);
            return;
        }
    }

    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0) {
        reply("failed %llu %d pipe\n", id, errno);
        free(argv); free(envp); close_fds(fds, nfds);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        if (tty) {
            // The master's own peer (not a path), made the controlling terminal of this new session.
            int slave = ioctl(master, TIOCGPTPEER, O_RDWR);
            if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) child_fail(status_pipe[1], errno, 't');
            if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) child_fail(status_pipe[1], errno, 'd');
            if (slave > 2) close(slave);
        } else if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0) {
            child_fail(status_pipe[1], errno, 'd');
        }
        close_other_descriptors(status_pipe[1]);
        if (oom_reset) {
            // A non-dumpable process's /proc files belong to root, its oom_score_adj too. Holding nothing of the
            // supervisor's any more, the child may become dumpable (as exec would make it anyway) and reset it.
            prctl(PR_SET_DUMPABLE, 1);
            int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
            if (fd >= 0) { ssize_t ignored = write(fd, "0", 1); (void)ignored; close(fd); }
        }
        if (limit_nproc >= 0) { struct rlimit r = { (rlim_t)limit_nproc, (rlim_t)limit_nproc }; setrlimit(RLIMIT_NPROC, &r); }
        if (limit_as >= 0) { struct rlimit r = { (rlim_t)limit_as, (rlim_t)limit_as }; setrlimit(RLIMIT_AS, &r); }
        if (chdir(cwd) < 0) child_fail(status_pipe[1], errno, 'c');
        environ = envp;
        execvp(argv[0], argv);
        child_fail(status_pipe[1], errno, 'e');
    }
    int saved = errno;
    close(status_pipe[1]);
    if (pid < 0) {
        close(status_pipe[0]);
        reply("failed %llu %d fork\n", id, saved);
    } else {
        int report[2];
        ssize_t got = wait_for_exec(status_pipe[0], pid, report);
        close(status_pipe[0]);
        if (got < 0) {
            // The server hung up while the child had not exec'd yet: it is killed, nothing to report.
        } else if (got == (ssize_t)sizeof(report)) {
            // exec never happened; reap the child now so it is not reported as an exit.
            waitpid(pid, NULL, 0);
            const char *stage = report[1] == 'c' ? "cwd" : report[1] == 'e' ? "exec" : report[1] == 't' ? "terminal" : "setup";
            reply("failed %llu %d %s\n", id, report[0], stage);
        } else {
            remember(id, pid);
            // The terminal goes to the server before the start is reported, so it is there when the server looks.
            if (tty && ab_send_with_fds(fds[0], "pty", 3, &master, 1) < 0) kill(pid, SIGKILL);
            reply("started %llu %d\n", id, (int)pid);
        }
    }
    if (master >= 0) close(master);
    close_fds(fds, nfds);
    free(argv);
    free(envp);
}

// Reads the parent and process group of `pid` from /proc. Returns 0 on success.
static int read_stat(pid_t pid, pid_t *ppid, pid_t *pgrp) {
    char path[64], buffer[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = read(fd, buffer, sizeof(buffer) - 1);
    close(fd);
    if (length <= 0) return -1;
    buffer[length] = '\0';
    char *end = strrchr(buffer, ')');  // the command name may itself hold spaces and parentheses
    if (!end) return -1;
    char state;
    int parent, group;
    if (sscanf(end + 1, " %c %d %d", &state, &parent, &group) != 3) return -1;
    *ppid = parent;
    *pgrp = group;
    return 0;
}

// SIGKILLs every descendant of `root` (found through parentage in /proc) and their process groups; `root` itself
// and its group too unless `spare_root` (the supervisor killing what it adopted).
static void kill_descendants(pid_t root, int spare_root) {
    if (root <= 1 && !spare_root) return;
    enum { MAX = 65536 };
    static pid_t pids[MAX], parents[MAX], groups[MAX];
    static char marked[MAX];
    size_t count = 0;
    DIR *proc = opendir("/proc");
    if (proc) {
        struct dirent *entry;
        while ((entry = readdir(proc)) != NULL && count < MAX) {
            char *end;
            long pid = strtol(entry->d_name, &end, 10);
            if (*end != '\0' || pid <= 1 || pid == getpid()) continue;
            pid_t parent, group;
            if (read_stat((pid_t)pid, &parent, &group) == 0) {
                pids[count] = (pid_t)pid;
                parents[count] = parent;
                groups[count] = group;
                marked[count] = pid == root || parent == root;
                count++;
            }
        }
        closedir(proc);
    }
    // Mark descendants until nothing changes (the list is not ordered by parentage).
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < count; i++) {
            if (marked[i]) continue;
            for (size_t j = 0; j < count; j++) {
                if (marked[j] && parents[i] == pids[j]) { marked[i] = 1; changed = 1; break; }
            }
        }
    }
    pid_t own_group = getpgrp();
    // Stop the whole tree first so nothing forks while it is being killed, then kill it.
    for (size_t i = 0; i < count; i++) if (marked[i]) kill(pids[i], SIGSTOP);
    if (!spare_root) kill(-root, SIGKILL);
    for (size_t i = 0; i < count; i++) {
        if (!marked[i]) continue;
        kill(pids[i], SIGKILL);
        if (groups[i] > 1 && groups[i] != own_group) kill(-groups[i], SIGKILL);
    }
}

// SIGKILLs `root`, its process group and every descendant still linked to it by parentage.
static void kill_tree(pid_t root) {
    kill_descendants(root, 0);
}

static void signal_request(char **fields, int count, int tree) {
    if (count < (tree ? 2 : 3)) { reply("error malformed signal request\n"); return; }
    struct child *child = find_by_id(strtoull(fields[1], NULL, 10));
    if (!child) return;  // already exited: its exit is or was reported
    if (tree) {
        kill_tree(child->pid);
    } else {
        int signo = (int)strtol(fields[2], NULL, 10);
        // The process leads its own group (setsid): signal the group, as a terminal would.
        if (kill(-child->pid, signo) < 0) kill(child->pid, signo);
    }
}

// Reports the exit of a process the server started; orphans adopted by PID 1 are reaped silently.
static void report_exit(pid_t pid, int status) {
    for (size_t i = 0; i < child_count; i++) {
        if (children[i].pid != pid) continue;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        int signo = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        reply("exited %llu %d %d\n", children[i].id, code, signo);
        forget_at(i);
        return;
    }
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) report_exit(pid, status);
}

// The `park` request: as PID 1, kill(-1) reaches every other process of the sandbox. Each round kills what is left
// and waits for a child; a process forked meanwhile is killed by the next round. Every process of the PID namespace
// descends from PID 1 (orphans are re-parented to it), so once kill(-1) finds no one, no process is left.
static void park(int prestarted) {
    parked = 1;
    if (getpid() != 1 || !prestarted) { reply("unparkable unsupported\n"); return; }
    for (int idle = 0;;) {
        if (kill(-1, SIGKILL) != 0 && errno == ESRCH) break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid > 0) { report_exit(pid, status); idle = 0; continue; }
        if (pid < 0 && errno == EINTR) continue;
        // Signalled but none of ours (no child left): a process that entered the namespace from outside.
        if (++idle > 100) { reply("unparkable stuck\n"); return; }
    }
    const char *reason = ab_park_reset();
    if (reason) reply("unparkable %s\n", reason); else reply("parked\n");
}

int main(int argc, char **argv) {
    // First of all: the workspace (same uid) must never attach to us or open our descriptors through /proc.
    if (prctl(PR_SET_DUMPABLE, 0) < 0) { perror("agentbox-sandbox-init: PR_SET_DUMPABLE"); return 1; }
    int prestarted = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prestarted") == 0) prestarted = 1;
        else if (strcmp(argv[i], "--nproc") == 0 && i + 1 < argc) limit_nproc = atoll(argv[++i]);
        else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) limit_as = atoll(argv[++i]);
        else if (strcmp(argv[i], "--oom-reset") == 0) oom_reset = 1;
        else { fprintf(stderr, "agentbox-sandbox-init: unknown option %s\n", argv[i]); return 2; }
    }
    // A pre-started sandbox: returns in its PID 1 once a workspace is bound to it (prestart.c).
    if (prestarted && ab_prestart() != 0) return 1;
    signal(SIGPIPE, SIG_IGN);
    // Orphans of our processes are re-parented to us rather than to the host's init, so none escapes a stop.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) { perror("agentbox-sandbox-init: signalfd"); return 1; }
    fcntl(0, F_SETFD, FD_CLOEXEC);
    fcntl(1, F_SETFD, FD_CLOEXEC);
    // What a park gives back, recorded before any process runs (only a pre-started sandbox parks).
    if (prestarted && getpid() == 1) ab_park_record();
    reply("ready\n");

    for (;;) {
        struct pollfd polls[2] = { { .fd = 0, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
        if (poll(polls, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (polls[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            while (read(sfd, &info, sizeof(info)) == sizeof(info)) {}
            reap();
        }
        if (polls[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int fds[AB_MAX_FDS], nfds = 0;
            ssize_t length = ab_recv_with_fds(0, message, AB_MAX_MESSAGE, fds, &nfds);
            if (length == 0 || (length < 0 && errno != EMSGSIZE && errno != EAGAIN)) break;  // the server is gone
            if (length < 0) { if (errno == EMSGSIZE) reply("error request too large\n"); continue; }
            message[length] = '\0';
            char *fields[4096];
            int count = split_fields(message, (size_t)length, fields, 4096);
            if (count == 0) { close_fds(fds, nfds); continue; }
            if (strcmp(fields[0], "spawn") == 0) spawn(fields, count, fds, nfds, 0);
            else if (strcmp(fields[0], "spawn-tty") == 0) spawn(fields, count, fds, nfds, 1);
            else {
                close_fds(fds, nfds);
                if (strcmp(fields[0], "signal") == 0) signal_request(fields, count, 0);
                else if (strcmp(fields[0], "kill") == 0) signal_request(fields, count, 1);
                else if (strcmp(fields[0], "park") == 0) park(prestarted);
                else if (strcmp(fields[0], "unpark") == 0) parked = 0;
                else reply("error unknown request %s\n", fields[0]);
            }
        }
    }
    // Stop: every process of the sandbox dies with us. As PID 1 of the sandbox's PID namespace, kill(-1) reaches
    // exactly the sandbox. Anywhere else (the unsandboxed backend) kill(-1) would reach every process the user may
    // signal on the host, so there only the trees of our own children are killed.
    if (getpid() == 1) {
        kill(-1, SIGKILL);
    } else {
        kill_descendants(getpid(), 1);
    }
    // Reap all of them (orphans were re-parented to us), so none is left behind as a zombie of the host's init.
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
    return 0;
}
