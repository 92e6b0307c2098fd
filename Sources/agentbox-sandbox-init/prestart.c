// A pre-started sandbox (`agentbox-sandbox-init --prestarted`): started by the server before it knows which
// workspace the sandbox is for, so that a boot does not wait for bubblewrap, new namespaces and an exec.
//
// The server starts this binary as its own root, with descriptors 0-2 as for any init, 3 a SOCK_SEQPACKET socket, the
// *bind socket*, and 4 the stage directory (below). This process (the launcher, in the host's PID namespace) makes a user namespace with no id map
// yet, and mount, PID, UTS, IPC and network namespaces owned by it, and forks the sandbox's PID 1, then waits for it
// and exits with its status (as bwrap does). PID 1:
//   1. makes every mount it inherited a slave (nothing it mounts propagates back), pivots into the stage (a directory
//      the server made, with this PID namespace's /proc and the host's device nodes mounted in it: the host's mount
//      tree is gone before any workspace is bound), brings its loopback up, opens the
//      ports below 1024 to every uid of its network namespace (as the server's pooled namespaces did), and says
//      "prestarted" on the bind socket; the launcher said "pid N" (PID 1's host pid) there before;
//   2. waits for the bind message. Before sending it, the server has written the namespace's id map (the
//      workspace's range) and moved PID 1 into the workspace's cgroups;
//   3. becomes the namespace's root, builds the workspace's root file system in a tmpfs from the message's
//      operations and the detached mounts that came with it (the workspace's idmapped storage tree, its system
//      layer's overlays, read-only binds of AgentBox's binaries), mounts /proc and /dev, pivots into it, enters a
//      cgroup namespace of its own, sets the hostname, keeps only the given capabilities, sets no_new_privs and loads
//      the seccomp filter: what bwrap does with our arguments, without bwrap's read of the mount table per mount;
//   4. closes the bind socket and is the sandbox's init from then on (main.c).
// Until the bind, nothing but this code runs in the sandbox, and its namespace maps no id: it can reach nothing of
// the host's that its mount namespace does not already show it, and its files would be nobody's.
//
// The bind message: fields separated by NUL, descriptors attached (SCM_RIGHTS). Paths are absolute in the new root
// and may not hold "..". Operations, in order:
//   storage IDX                 attach descriptor IDX (a detached tree) where `bind` takes its sources from
//   tree IDX PATH               attach descriptor IDX (a detached directory tree) at PATH (made if missing)
//   tree-file IDX PATH          attach descriptor IDX (a detached file mount) at PATH (an empty file, made)
//   bind REL PATH               bind REL (relative, inside the storage tree) at PATH
//   tmpfs PATH MODE SIZE        a tmpfs (MODE octal, SIZE bytes, 0: the default) at PATH
//   dir PATH MODE               a directory with exactly MODE (octal; the umask does not apply)
//   symlink TARGET PATH         a symbolic link
//   proc PATH                   the PID namespace's /proc
//   dev PATH                    a minimal /dev (a directory of the root's tmpfs): null, zero, full, random, urandom,
//                               tty from the host, devpts, shm
//   hostname NAME               the UTS namespace's host name
//   chdir PATH                  the working directory once in the new root
//   caps HEX                    the capabilities kept (bounding, permitted, effective, inheritable, ambient)
//   continue                    (last) another message follows with more operations (at most 8 messages in all)
#define _GNU_SOURCE
#include "prestart.h"
#include "park.h"
#include "agentbox_sandbox.h"
#include "agentbox_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agentbox_syscalls.h"

#define BIND_SOCKET 3
#define STAGE_DIRECTORY 4
// After the pre-start, PID 1's root is the stage (see prestarted_init); the workspace's root is built at NEW_ROOT in it.
#define NEW_ROOT "/root"
#define STORAGE "/storage"
#define MAX_BIND_MESSAGE 65536

// The host's device nodes a sandbox's /dev has (bwrap's --dev), bound into the stage at the pre-start and from there
// into the workspace's /dev (SandboxRoot.prepareStage makes a file for each in the stage).
static const char *const device_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

static int fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *format, ...) {
    int saved = errno;
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    // One line: fd 2 is the server's control socket too (see main.c), and a path in the text is not ours to trust.
    for (char *c = text; *c; c++) if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    dprintf(2, "agentbox-sandbox-init: %s: %s\n", text, strerror(saved));
    errno = saved;
    return -1;
}

static int send_line(const char *text) {
    return send(BIND_SOCKET, text, strlen(text), MSG_NOSIGNAL) < 0 ? -1 : 0;
}

// `path` in the new root: absolute, no ".." component, and short enough.
static int in_root(const char *path, char *out, size_t capacity) {
    if (path[0] != '/' || strstr(path, "/../") || (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0)) {
        errno = EINVAL;
        return fail("bind: bad path %s", path);
    }
    if ((size_t)snprintf(out, capacity, NEW_ROOT "%s", path) >= capacity) { errno = ENAMETOOLONG; return fail("bind: %s", path); }
    return 0;
}

// mkdir -p: the directory with `mode`, each missing parent with 0700, as bwrap makes them (less the umask).
static int make_directories(const char *path, mode_t mode) {
    char buffer[4096];
    if (strlen(path) >= sizeof(buffer)) { errno = ENAMETOOLONG; return -1; }
    strcpy(buffer, path);
    for (char *cursor = buffer + 1; *cursor; cursor++) {
        if (*cursor != '/') continue;
        *cursor = '\0';
        if (mkdir(buffer, 0700) != 0 && errno != EEXIST) return -1;
        *cursor = '/';
    }
    if (mkdir(buffer, mode) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int make_file(const char *path) {
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (make_directories(parent, 0700) != 0) return -1;
    }
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0 && errno != EEXIST) return -1;
    if (fd >= 0) close(fd);
    return 0;
}

static int attach(int fd, const char *target) {
    return (int)syscall(SYS_move_mount, fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

// Adds flags to a mount (never clears one, so a flag the kernel locked is never in the way).
static int set_attributes(const char *path, unsigned long long set) {
    struct mount_attr attributes = { .attr_set = set };
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, 0, &attributes, sizeof(attributes));
}

static int mount_tmpfs(const char *path, unsigned mode, unsigned long long size) {
    char options[64];
    if (size > 0) snprintf(options, sizeof(options), "mode=%o,size=%llu", mode, size);
    else snprintf(options, sizeof(options), "mode=%o", mode);
    return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options);
}

// Notes for a park (park.c) the tmpfs just mounted at `here`, which the sandbox will see at `path`, by its device.
static void note_tmpfs(const char *path, const char *here) {
    struct stat info;
    if (stat(here, &info) == 0) ab_park_note_tmpfs(path, info.st_dev);
    else ab_park_note_tmpfs(path, (dev_t)-1);  // never matches: the sandbox will not park
}

static int make_dev(const char *dev) {
    char path[4096], target[4096];
    if (strlen(dev) > sizeof(path) - 64) { errno = ENAMETOOLONG; return fail("bind: %s", dev); }
    // A directory of the root's tmpfs, not a tmpfs of its own: each superblock of a sandbox costs every memory cgroup
    // of the host a shrinker slot (docs/ARCHITECTURE.md, kernel memory per awake workspace).
    if (make_directories(dev, 0755) != 0 || chmod(dev, 0755) != 0) return fail("create %s", dev);
    for (size_t i = 0; i < sizeof(device_nodes) / sizeof(device_nodes[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dev, device_nodes[i]);
        snprintf(target, sizeof(target), "/dev/%s", device_nodes[i]);
        if (make_file(path) != 0) return fail("create %s", path);
        if (mount(target, path, NULL, MS_BIND, NULL) != 0) return fail("bind %s", target);
        if (set_attributes(path, MOUNT_ATTR_NOSUID) != 0) return fail("nosuid %s", path);
    }
    static const char *const links[][2] = {
        { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
        { "/proc/self/fd/2", "stderr" }, { "/proc/kcore", "core" }, { "pts/ptmx", "ptmx" },
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dev, links[i][1]);
        if (symlink(links[i][0], path) != 0) return fail("symlink %s", path);
    }
    snprintf(path, sizeof(path), "%s/shm", dev);
    if (mkdir(path, 0755) != 0) return fail("mkdir %s", path);
    snprintf(path, sizeof(path), "%s/pts", dev);
    if (mkdir(path, 0755) != 0) return fail("mkdir %s", path);
    if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") != 0)
        return fail("mount devpts");
    return 0;
}

static int keep_capabilities(unsigned long long keep) {
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
        if (!(keep >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return fail("drop capability %d", cap);
    }
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    for (int i = 0; i < 2; i++) {
        data[i].effective = data[i].permitted = data[i].inheritable = (uint32_t)(keep >> (32 * i));
    }
    if (syscall(SYS_capset, &header, data) != 0) return fail("capset");
    for (int cap = 0; cap < 64; cap++) {
        if ((keep >> cap & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) return fail("ambient capability %d", cap);
    }
    return 0;
}

static int load_seccomp(void) {
    static struct sock_filter program[AB_SECCOMP_MAX_INSTRUCTIONS];
    size_t count = ab_seccomp_program(program, AB_SECCOMP_MAX_INSTRUCTIONS);
    if (count == 0) { errno = E2BIG; return fail("seccomp filter"); }
    struct sock_fprog filter = { .len = (unsigned short)count, .filter = program };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("no_new_privs");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0) return fail("seccomp");
    return 0;
}

static int descriptor(const char *field, const int *fds, int nfds) {
    char *end;
    long index = strtol(field, &end, 10);
    if (!*field || *end || index < 0 || index >= nfds) { errno = EBADF; return fail("bind: no descriptor %s", field); }
    return fds[index];
}

struct bind_state {
    char directory[4096];
    unsigned long long caps;
    int has_caps;
    int more;  // the message ended with "continue": another follows
};

// Carries out one bind message's operations. Returns 0, or -1 after saying why on stderr.
static int run_operations(char *message, size_t length, const int *fds, int nfds, struct bind_state *state) {
    static char *fields[4096];
    int count = 0;
    size_t start = 0;
    for (size_t i = 0; i < length; i++) {
        if (message[i] != '\0') continue;
        if (count == (int)(sizeof(fields) / sizeof(fields[0]))) { errno = E2BIG; return fail("bind: too many fields"); }
        fields[count++] = message + start;
        start = i + 1;
    }
    if (start != length) { errno = EINVAL; return fail("bind: the message does not end with a field's end"); }
    char path[4096], source[4096];
    state->more = 0;
    for (int i = 0; i < count;) {
        const char *op = fields[i];
        if (strcmp(op, "continue") == 0) {
            if (i != count - 1) { errno = EINVAL; return fail("bind: continue before the message's end"); }
            state->more = 1;
            break;
        }
        int arguments = strcmp(op, "storage") == 0 || strcmp(op, "proc") == 0 || strcmp(op, "dev") == 0
                || strcmp(op, "hostname") == 0 || strcmp(op, "chdir") == 0 || strcmp(op, "caps") == 0 ? 1
            : strcmp(op, "tmpfs") == 0 ? 3
            : strcmp(op, "tree") == 0 || strcmp(op, "tree-file") == 0 || strcmp(op, "bind") == 0 || strcmp(op, "dir") == 0
                || strcmp(op, "symlink") == 0 ? 2 : -1;
        if (arguments < 0) { errno = EINVAL; return fail("bind: unknown operation %s", op); }
        if (i + arguments >= count) { errno = EINVAL; return fail("bind: %s needs %d fields", op, arguments); }
        const char *a = fields[i + 1], *b = arguments > 1 ? fields[i + 2] : NULL, *c = arguments > 2 ? fields[i + 3] : NULL;
        i += 1 + arguments;
        if (strcmp(op, "storage") == 0) {
            int fd = descriptor(a, fds, nfds);
            if (fd < 0) return -1;
            if (attach(fd, STORAGE) != 0) return fail("attach the storage tree");
        } else if (strcmp(op, "tree") == 0 || strcmp(op, "tree-file") == 0) {
            int fd = descriptor(a, fds, nfds);
            if (fd < 0 || in_root(b, path, sizeof(path)) != 0) return -1;
            int made = op[4] ? make_file(path) : make_directories(path, 0755);
            if (made != 0) return fail("create %s", b);
            if (attach(fd, path) != 0) return fail("attach %s", b);
        } else if (strcmp(op, "bind") == 0) {
            if (a[0] == '/' || strstr(a, "..")) { errno = EINVAL; return fail("bind: bad source %s", a); }
            if ((size_t)snprintf(source, sizeof(source), STORAGE "/%s", a) >= sizeof(source)) { errno = ENAMETOOLONG; return fail("bind: %s", a); }
            if (in_root(b, path, sizeof(path)) != 0) return -1;
            if (make_directories(path, 0755) != 0) return fail("create %s", b);
            if (mount(source, path, NULL, MS_BIND | MS_REC, NULL) != 0) return fail("bind %s at %s", a, b);
        } else if (strcmp(op, "tmpfs") == 0) {
            if (in_root(a, path, sizeof(path)) != 0) return -1;
            if (make_directories(path, 0755) != 0) return fail("create %s", a);
            if (mount_tmpfs(path, (unsigned)strtoul(b, NULL, 8), strtoull(c, NULL, 10)) != 0) return fail("tmpfs at %s", a);
            note_tmpfs(a, path);
        } else if (strcmp(op, "dir") == 0) {
            if (in_root(a, path, sizeof(path)) != 0) return -1;
            if (make_directories(path, 0700) != 0 || chmod(path, (mode_t)strtoul(b, NULL, 8) & 07777) != 0) return fail("create %s", a);
        } else if (strcmp(op, "symlink") == 0) {
            if (in_root(b, path, sizeof(path)) != 0) return -1;
            if (symlink(a, path) != 0) return fail("symlink %s", b);
        } else if (strcmp(op, "proc") == 0) {
            if (in_root(a, path, sizeof(path)) != 0) return -1;
            if (make_directories(path, 0755) != 0) return fail("create %s", a);
            if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) return fail("mount proc");
        } else if (strcmp(op, "dev") == 0) {
            if (in_root(a, path, sizeof(path)) != 0 || make_dev(path) != 0) return -1;
        } else if (strcmp(op, "hostname") == 0) {
            if (sethostname(a, strlen(a)) != 0) return fail("sethostname");
        } else if (strcmp(op, "chdir") == 0) {
            if ((size_t)snprintf(state->directory, sizeof(state->directory), "%s", a) >= sizeof(state->directory)) {
                errno = ENAMETOOLONG;
                return fail("bind: chdir");
            }
        } else if (strcmp(op, "caps") == 0) {
            state->caps = strtoull(a, NULL, 16);
            state->has_caps = 1;
        }
    }
    return 0;
}

// Carries out the bind: the first message, and the ones it announces ("continue" as its last operation: the server
// sends what it has ready first, and the rest, its system layer's overlays, once they are made). Returns 0, or -1
// after saying why on stderr.
static int bind_workspace(char *message, size_t length, int *fds, int nfds) {
    if (syscall(SYS_setgroups, 0, NULL) != 0) return fail("setgroups");
    if (syscall(SYS_setresgid, 0, 0, 0) != 0) return fail("setresgid (no id map?)");
    if (syscall(SYS_setresuid, 0, 0, 0) != 0) return fail("setresuid (no id map?)");
    // A change of credentials resets both the dumpable flag (to fs.suid_dumpable, which a host may set to 1) and the
    // parent-death signal: the workspace's root, whose uid we now have, must never trace us or open /proc/1/fd/1 (the
    // output pipe), and we still go with the launcher.
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) return fail("PR_SET_DUMPABLE");
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail("PR_SET_PDEATHSIG");
    if (mount_tmpfs(NEW_ROOT, 0755, 0) != 0) return fail("mount " NEW_ROOT);
    note_tmpfs("/", NEW_ROOT);
    static struct bind_state state = { "/", 0, 0, 0 };
    for (int messages = 1;; messages++) {
        int result = run_operations(message, length, fds, nfds, &state);
        for (int i = 0; i < nfds; i++) close(fds[i]);
        nfds = 0;
        if (result != 0) return -1;
        if (!state.more) break;
        if (messages == 8) { errno = E2BIG; return fail("bind: too many messages"); }
        ssize_t received = ab_recv_with_many_fds(BIND_SOCKET, message, MAX_BIND_MESSAGE, fds, AB_BIND_MAX_FDS, &nfds);
        if (received <= 0) { errno = received == 0 ? EPIPE : errno; return fail("receive the rest of the bind"); }
        length = (size_t)received;
        message[length] = '\0';
    }
    // The new root replaces the stage, which goes with what is left in it (the storage tree too: what the sandbox
    // needs of it is bound in the new root).
    if (chdir(NEW_ROOT) != 0) return fail("chdir " NEW_ROOT);
    if (syscall(SYS_pivot_root, ".", ".") != 0) return fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) return fail("detach the old root");
    if (chdir(state.directory) != 0 && chdir("/") != 0) return fail("chdir %s", state.directory);
    // The workspace's cgroups are the root of what it sees (the server moved us into them before the message).
    if (unshare(CLONE_NEWCGROUP) != 0) return fail("cgroup namespace");
    // The IPC namespace's POSIX message queues, reachable to a park (park.c) through a detached mount of their file
    // system, made while we may (it is in no mount table: the sandbox's view is bwrap's).
    // Without it (a kernel without POSIX message queues) the sandbox works as before and never parks.
    int queues = (int)syscall(SYS_fsopen, "mqueue", FSOPEN_CLOEXEC), queues_mount = -1;
    if (queues >= 0) {
        if (syscall(SYS_fsconfig, queues, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0) queues_mount = (int)syscall(SYS_fsmount, queues, FSMOUNT_CLOEXEC, 0);
        close(queues);
    }
    ab_park_note_message_queues(queues_mount < 0 ? -1 : queues_mount);
    // Every capability but the given ones goes; a bind without the field is refused rather than keeping them all.
    if (!state.has_caps) { errno = EINVAL; return fail("bind: no capabilities given"); }
    if (keep_capabilities(state.caps) != 0) return -1;
    return load_seccomp();
}

static int prestarted_init(void) {
    // The launcher waits for us: if the server kills it, we go too, and with us the PID namespace.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return fail("PR_SET_PDEATHSIG");
    prctl(PR_SET_DUMPABLE, 0);
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) return fail("make the mounts slaves");
    // The stage: a directory the server made (descriptor 4: "proc", "dev" with an empty file per device, "root",
    // "storage"), bound read-only, with this PID namespace's /proc and the host's device nodes mounted in it, becomes
    // our root, and the host's mount tree goes: the bind builds the workspace's root in the stage's "root" (what
    // mounts it needs from the host, the stage holds), and its mount calls and pivot then work on a handful of mounts,
    // not the host's whole table. Mounts only: nothing may create a file before the id map exists.
    char stage[4096], path[4200];
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", STAGE_DIRECTORY);
    ssize_t stage_length = readlink(link, stage, sizeof(stage) - 1);
    if (stage_length <= 0 || stage_length >= (ssize_t)sizeof(stage) - 1 || stage[0] != '/') {
        errno = ENAMETOOLONG;
        return fail("the stage directory");
    }
    stage[stage_length] = '\0';
    // Bound by its path (a descriptor of the server's mount namespace cannot be bound from ours), then checked to be
    // the directory the server opened.
    struct stat opened, bound;
    if (fstat(STAGE_DIRECTORY, &opened) != 0) return fail("the stage directory");
    close(STAGE_DIRECTORY);
    if (mount(stage, stage, NULL, MS_BIND, NULL) != 0) return fail("bind the stage");
    if (stat(stage, &bound) != 0 || bound.st_dev != opened.st_dev || bound.st_ino != opened.st_ino) {
        errno = EXDEV;
        return fail("the stage %s is not the directory the server opened", stage);
    }
    if (strlen(stage) > sizeof(path) - 32) { errno = ENAMETOOLONG; return fail("the stage directory"); }
    snprintf(path, sizeof(path), "%s/proc", stage);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) return fail("mount the stage's proc");
    for (size_t i = 0; i < sizeof(device_nodes) / sizeof(device_nodes[0]); i++) {
        char node[64];
        snprintf(node, sizeof(node), "/dev/%s", device_nodes[i]);
        snprintf(path, sizeof(path), "%s/dev/%s", stage, device_nodes[i]);
        if (mount(node, path, NULL, MS_BIND, NULL) != 0) return fail("bind %s in the stage", node);
    }
    if (chdir(stage) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        return fail("pivot into the stage");
    if (set_attributes("/", MOUNT_ATTR_RDONLY) != 0) return fail("make the stage read-only");
    if (ab_loopback_up() != 0) return fail("loopback up");
    // Ports below 1024 open to every uid of the namespace, as the server's pooled network namespaces had them.
    int sysctl = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
    if (sysctl < 0 || write(sysctl, "0", 1) != 1) return fail("ip_unprivileged_port_start");
    close(sysctl);
    if (send_line("prestarted") != 0) return fail("bind socket");
    static char message[MAX_BIND_MESSAGE + 1];
    int fds[AB_BIND_MAX_FDS], nfds = 0;
    ssize_t length = ab_recv_with_many_fds(BIND_SOCKET, message, MAX_BIND_MESSAGE, fds, AB_BIND_MAX_FDS, &nfds);
    if (length == 0) _exit(0);  // the server let the pool go: nothing was ever bound
    if (length < 0) return fail("receive the bind message");
    message[length] = '\0';
    int result = bind_workspace(message, (size_t)length, fds, nfds);
    close(BIND_SOCKET);
    return result;
}

int ab_prestart(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0)
        return fail("unshare");
    pid_t child = fork();
    if (child < 0) return fail("fork");
    if (child == 0) {
        if (prestarted_init() != 0) _exit(1);
        return 0;  // PID 1, bound: main() goes on as the sandbox's init
    }
    // The launcher: says which host pid PID 1 has, lets go of every descriptor, and waits for it.
    char line[32];
    snprintf(line, sizeof(line), "pid %d", (int)child);
    send_line(line);
    for (int fd = 0; fd <= STAGE_DIRECTORY; fd++) close(fd);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) _exit(1);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}
