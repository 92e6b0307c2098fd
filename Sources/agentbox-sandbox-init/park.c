// Parking: a sleeping workspace keeps its sandbox, with no process in it, so that its next wake only starts processes.
//
// A park (the `park` request, main.c) kills every process of the PID namespace but PID 1 and reaps them; then the
// file systems that die with a sandbox, its tmpfs mounts, are given back what they held when the sandbox was built
// (ab_park_record, before the first process ran): every other entry is removed, and the recorded ones get their mode
// and owner back. So a woken workspace finds what a fresh sandbox has: its persistent files (workspace, home, system
// layer), an empty /tmp, /run and /var/tmp, a /dev and a root as built. What cannot be given back refuses the park,
// and the server then stops the sandbox as before:
//   changed   a recorded entry is missing or was replaced (another inode at its path)
//   ipc       System V shared memory, semaphores or message queues are left (removing another uid's needs
//             CAP_SYS_ADMIN, which the sandbox's root does not have)
//   files     more than PARK_MAX_REMOVALS entries to remove (stopping frees them at once)
//   busy      an entry could not be removed
//   mounts    the mount table cannot be read
// Nothing runs in the sandbox meanwhile, so the walk races with no one.
#define _GNU_SOURCE
#include "park.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PARK_MAX_REMOVALS = 100000, PARK_MAX_MOUNTS = 64, PARK_MAX_ENTRIES = 4096 };

struct recorded {
    char *path;
    ino_t inode;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    int seen;
};

static char *mounts[PARK_MAX_MOUNTS];
static int mount_count;
static struct recorded *entries;
static size_t entry_count;
static int recorded_ok;
static size_t removals;
static int too_many;
static int stuck;

// The mount points of the tmpfs mounts, from /proc/self/mountinfo ("ID PARENT MAJ:MIN ROOT POINT OPTIONS ... - TYPE").
static int read_tmpfs_mounts(void) {
    FILE *file = fopen("/proc/self/mountinfo", "re");
    if (!file) return -1;
    char line[4096];
    while (fgets(line, sizeof(line), file)) {
        char *separator = strstr(line, " - ");
        if (!separator || strncmp(separator + 3, "tmpfs ", 6) != 0) continue;
        char *saveptr = NULL, *field = strtok_r(line, " ", &saveptr);
        for (int i = 0; field && i < 4; i++) field = strtok_r(NULL, " ", &saveptr);
        if (!field || field[0] != '/' || strchr(field, '\\')) continue;  // an escaped (odd) path: not one of ours
        if (mount_count == PARK_MAX_MOUNTS) { fclose(file); return -1; }
        mounts[mount_count] = strdup(field);
        if (!mounts[mount_count]) { fclose(file); return -1; }
        mount_count++;
    }
    fclose(file);
    return 0;
}

// glibc's nftw reports "/", the top of a walk from it, as "" once the walk is done with it (FTW_DEPTH).
static const char *normal(const char *path) { return path[0] ? path : "/"; }

static int record_one(const char *path, const struct stat *info, int type, struct FTW *where) {
    (void)type; (void)where;
    path = normal(path);
    if (entry_count == PARK_MAX_ENTRIES) return 1;
    char *copy = strdup(path);
    if (!copy) return 1;
    entries[entry_count++] = (struct recorded){ copy, info->st_ino, info->st_mode, info->st_uid, info->st_gid, 0 };
    return 0;
}

void ab_park_record(void) {
    entries = calloc(PARK_MAX_ENTRIES, sizeof(*entries));
    if (!entries || read_tmpfs_mounts() != 0) return;
    for (int i = 0; i < mount_count; i++) {
        if (nftw(mounts[i], record_one, 16, FTW_PHYS | FTW_MOUNT) != 0) return;
    }
    recorded_ok = 1;
}

static struct recorded *find(const char *path, ino_t inode) {
    for (size_t i = 0; i < entry_count; i++) {
        if (entries[i].inode == inode && strcmp(entries[i].path, path) == 0) return &entries[i];
    }
    return NULL;
}

static int reset_one(const char *path, const struct stat *info, int type, struct FTW *where) {
    (void)where;
    path = normal(path);
    struct recorded *entry = find(path, info->st_ino);
    if (entry && (entry->mode & S_IFMT) == (info->st_mode & S_IFMT)) {
        entry->seen = 1;
        if (!S_ISLNK(info->st_mode) && (info->st_mode & 07777) != (entry->mode & 07777)) chmod(path, entry->mode & 07777);
        if (info->st_uid != entry->uid || info->st_gid != entry->gid) lchown(path, entry->uid, entry->gid);
        return 0;
    }
    if (++removals > PARK_MAX_REMOVALS) { too_many = 1; return 1; }
    // Depth first: a directory's entries are gone before it (a new directory holds no mount: nothing may mount).
    if ((type == FTW_DP || type == FTW_D ? rmdir(path) : unlink(path)) != 0) {
        if (!stuck) fprintf(stderr, "agentbox-sandbox-init: park: cannot remove %s: %s\n", path, strerror(errno));
        stuck = 1;
    }
    return 0;
}

const char *ab_park_reset(void) {
    if (!recorded_ok) return "mounts";
    static const char *ipc[] = { "/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg" };
    for (size_t i = 0; i < sizeof(ipc) / sizeof(ipc[0]); i++) {
        FILE *file = fopen(ipc[i], "re");
        if (!file) continue;  // a kernel without System V IPC
        int lines = 0, c;
        while ((c = fgetc(file)) != EOF && lines < 2) if (c == '\n') lines++;
        fclose(file);
        if (lines > 1) return "ipc";  // the header, then one line per object
    }
    removals = 0;
    too_many = 0;
    stuck = 0;
    for (size_t i = 0; i < entry_count; i++) entries[i].seen = 0;
    for (int i = 0; i < mount_count; i++) {
        nftw(mounts[i], reset_one, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
        if (too_many) return "files";
    }
    if (stuck) return "busy";
    for (size_t i = 0; i < entry_count; i++) if (!entries[i].seen) return "changed";
    return NULL;
}
