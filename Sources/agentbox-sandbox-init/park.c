// Parking: a sleeping workspace keeps its sandbox, with no process in it, so that its next wake only starts processes.
//
// A park (the `park` request, main.c) kills every process of the PID namespace but PID 1 and reaps them; then the
// state that dies with a sandbox is given back as it was when the sandbox was built (ab_park_record, before the first
// process ran):
//   - the tmpfs file systems the init itself mounted (its root, which holds /dev, /tmp and /run, then /var/tmp and
//     configured tmpfs mounts: noted by prestart.c as it mounts them, never taken from the mount table, where a host
//     directory bound from a host tmpfs looks the same): every entry not recorded is removed, recorded ones get their
//     owner and mode back;
//   - the IPC namespace's POSIX message queues (through an mqueue file system the init mounted, detached, at the bind):
//     all removed.
// What cannot be given back refuses the park, and the server then stops the sandbox as before:
//   changed   a recorded entry is missing or was replaced (another inode or type at its path, another symlink target,
//             another device: a tmpfs that is no longer the init's), or /dev/pts or its ptmx changed owner or mode
//   xattrs    extended attributes (ACLs among them) were set on a recorded entry
//   ipc       System V shared memory, semaphores or message queues are left (removing another uid's needs
//             CAP_SYS_ADMIN, which the sandbox's root does not have), or they cannot be read
//   limits    PID 1's resource limits, nice value, scheduling policy, CPU affinity or I/O priority were changed (the
//             workspace's root has PID 1's uid and may; its children would inherit them)
//   files     more than PARK_MAX_REMOVALS entries to remove (stopping frees them at once)
//   busy      an entry or a message queue could not be removed
//   mounts    what the init mounted could not be recorded
// Nothing else runs in the sandbox meanwhile, and no one else can reach these file systems (they are this sandbox's
// own instances), so the walk races with no one.
#define _GNU_SOURCE
#include "park.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

enum { PARK_MAX_REMOVALS = 100000, PARK_MAX_MOUNTS = 64, PARK_MAX_ENTRIES = 4096 };

struct recorded {
    char *path;
    char *target;  // a symlink's
    ino_t inode;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    ssize_t xattrs;  // the size of its list of extended attributes
    int seen;
};

struct mounted {
    char *path;
    dev_t device;
};

// What PID 1 runs with (its children inherit it).
struct attributes {
    struct rlimit limits[RLIM_NLIMITS];
    int nice;
    int policy;
    struct sched_param parameters;
    cpu_set_t affinity;
    long ioprio;
};

static struct mounted mounts[PARK_MAX_MOUNTS];
static int mount_count;
static int mounts_overflowed;
static int message_queues = -1;
static struct recorded *entries;
static size_t entry_count;
static int recorded_ok;
static struct stat pts, ptmx;
static struct attributes attributes_at_start;
static size_t removals;
static int too_many;
static int stuck;

void ab_park_note_tmpfs(const char *path, dev_t device) {
    if (mount_count == PARK_MAX_MOUNTS) { mounts_overflowed = 1; return; }
    mounts[mount_count].path = strdup(path);
    if (!mounts[mount_count].path) { mounts_overflowed = 1; return; }
    mounts[mount_count].device = device;
    mount_count++;
}

void ab_park_note_message_queues(int fd) { message_queues = fd; }

// glibc's nftw reports "/", the top of a walk from it, as "" once the walk is done with it (FTW_DEPTH).
static const char *normal(const char *path) { return path[0] ? path : "/"; }

static char *link_target(const char *path) {
    char buffer[4096];
    ssize_t length = readlink(path, buffer, sizeof(buffer) - 1);
    if (length < 0) return NULL;
    buffer[length] = '\0';
    return strdup(buffer);
}

static int record_one(const char *path, const struct stat *info, int type, struct FTW *where) {
    (void)where;
    path = normal(path);
    if (entry_count == PARK_MAX_ENTRIES || type == FTW_NS || type == FTW_DNR) return 1;
    struct recorded *entry = &entries[entry_count];
    *entry = (struct recorded){ strdup(path), NULL, info->st_ino, info->st_mode, info->st_uid, info->st_gid, 0, 0 };
    if (!entry->path) return 1;
    if (S_ISLNK(info->st_mode) && !(entry->target = link_target(path))) return 1;
    entry->xattrs = llistxattr(path, NULL, 0);
    if (entry->xattrs < 0 && errno != ENOTSUP) return 1;
    if (entry->xattrs < 0) entry->xattrs = 0;
    entry_count++;
    return 0;
}

static int read_attributes(struct attributes *into) {
    memset(into, 0, sizeof(*into));
    for (int i = 0; i < RLIM_NLIMITS; i++) if (getrlimit(i, &into->limits[i]) != 0) return -1;
    errno = 0;
    into->nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) return -1;
    if ((into->policy = sched_getscheduler(0)) < 0 || sched_getparam(0, &into->parameters) != 0) return -1;
    if (sched_getaffinity(0, sizeof(into->affinity), &into->affinity) != 0) return -1;
    into->ioprio = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    return into->ioprio < 0 ? -1 : 0;
}

void ab_park_record(void) {
    entries = calloc(PARK_MAX_ENTRIES, sizeof(*entries));
    if (!entries || mounts_overflowed || mount_count == 0 || message_queues < 0) return;
    for (int i = 0; i < mount_count; i++) {
        // Still the tmpfs noted when it was mounted: a later mount of the bind (a host directory over a parent of it,
        // say) would have the path lead elsewhere, and that is not ours to give back.
        struct stat info;
        struct statfs system;
        if (lstat(mounts[i].path, &info) != 0 || !S_ISDIR(info.st_mode) || info.st_dev != mounts[i].device) return;
        if (statfs(mounts[i].path, &system) != 0 || system.f_type != TMPFS_MAGIC) return;
        if (nftw(mounts[i].path, record_one, 16, FTW_PHYS | FTW_MOUNT) != 0) return;
    }
    if (lstat("/dev/pts", &pts) != 0 || lstat("/dev/pts/ptmx", &ptmx) != 0) return;
    if (read_attributes(&attributes_at_start) != 0) return;
    recorded_ok = 1;
}

static struct recorded *find(const char *path, ino_t inode) {
    for (size_t i = 0; i < entry_count; i++) {
        if (entries[i].inode == inode && strcmp(entries[i].path, path) == 0) return &entries[i];
    }
    return NULL;
}

static int same_target(const struct recorded *entry, const char *path) {
    if (!entry->target) return 1;
    char *now = link_target(path);
    int same = now && strcmp(now, entry->target) == 0;
    free(now);
    return same;
}

static int changed;
static int xattrs_set;

static int reset_one(const char *path, const struct stat *info, int type, struct FTW *where) {
    (void)where;
    path = normal(path);
    // What cannot be read cannot be given back (the init may read everything: this is not expected).
    if (type == FTW_NS) { stuck = 1; return 0; }
    struct recorded *entry = find(path, info->st_ino);
    if (entry && (entry->mode & S_IFMT) == (info->st_mode & S_IFMT)) {
        entry->seen = 1;
        if (type == FTW_DNR || !same_target(entry, path)) changed = 1;
        if (llistxattr(path, NULL, 0) > entry->xattrs) xattrs_set = 1;
        // The owner first: a change of owner clears the set-user-ID and set-group-ID bits the mode then restores.
        if ((info->st_uid != entry->uid || info->st_gid != entry->gid) && lchown(path, entry->uid, entry->gid) != 0) changed = 1;
        if (!S_ISLNK(info->st_mode) && (info->st_mode & 07777) != (entry->mode & 07777) && chmod(path, entry->mode & 07777) != 0) changed = 1;
        return 0;
    }
    if (++removals > PARK_MAX_REMOVALS) { too_many = 1; return 1; }
    // Depth first: a directory's entries are gone before it (a new directory holds no mount: nothing may mount).
    if ((type == FTW_DP || type == FTW_D || type == FTW_DNR ? rmdir(path) : unlink(path)) != 0) {
        // Not the path: the workspace names its files, and this goes to the server's reply pipe (see main.c).
        if (!stuck) fprintf(stderr, "agentbox-sandbox-init: park: cannot remove a file: %s\n", strerror(errno));
        stuck = 1;
    }
    return 0;
}

// Removes every POSIX message queue of the IPC namespace. Returns 0, or -1 when one stays.
static int remove_message_queues(void) {
    int directory = openat(message_queues, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) return -1;
    DIR *list = fdopendir(directory);
    if (!list) { close(directory); return -1; }
    int result = 0;
    struct dirent *entry;
    while ((entry = readdir(list)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        if (unlinkat(dirfd(list), entry->d_name, 0) != 0) result = -1;
    }
    closedir(list);
    return result;
}

static const char *check_ipc(void) {
    static const char *ipc[] = { "/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg" };
    for (size_t i = 0; i < sizeof(ipc) / sizeof(ipc[0]); i++) {
        FILE *file = fopen(ipc[i], "re");
        if (!file) {
            if (errno == ENOENT) continue;  // a kernel without System V IPC
            return "ipc";
        }
        int lines = 0, c;
        while ((c = fgetc(file)) != EOF && lines < 2) if (c == '\n') lines++;
        fclose(file);
        if (lines > 1) return "ipc";  // the header, then one line per object
    }
    return NULL;
}

const char *ab_park_reset(void) {
    if (!recorded_ok) return "mounts";
    struct attributes now;
    if (read_attributes(&now) != 0 || memcmp(&now, &attributes_at_start, sizeof(now)) != 0) return "limits";
    const char *ipc = check_ipc();
    if (ipc) return ipc;
    struct stat pts_now, ptmx_now;
    if (lstat("/dev/pts", &pts_now) != 0 || lstat("/dev/pts/ptmx", &ptmx_now) != 0) return "changed";
    if (pts_now.st_mode != pts.st_mode || pts_now.st_uid != pts.st_uid || pts_now.st_gid != pts.st_gid
        || ptmx_now.st_mode != ptmx.st_mode || ptmx_now.st_uid != ptmx.st_uid || ptmx_now.st_gid != ptmx.st_gid) {
        return "changed";
    }
    removals = 0;
    too_many = stuck = changed = xattrs_set = 0;
    for (size_t i = 0; i < entry_count; i++) entries[i].seen = 0;
    for (int i = 0; i < mount_count; i++) {
        struct stat info;
        if (lstat(mounts[i].path, &info) != 0 || info.st_dev != mounts[i].device) return "changed";
        int walked = nftw(mounts[i].path, reset_one, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
        if (too_many) return "files";
        // A walk that stopped early (a tree too deep for a path, say) left files unseen: not given back.
        if (walked != 0) return "busy";
    }
    if (stuck) return "busy";
    for (size_t i = 0; i < entry_count; i++) if (!entries[i].seen) return "changed";
    if (changed) return "changed";
    if (xattrs_set) return "xattrs";
    if (remove_message_queues() != 0) return "busy";
    return NULL;
}
