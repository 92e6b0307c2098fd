// The disk pool's system calls: a loop device for the pool image, and btrfs subvolumes, snapshots and quota groups,
// each one ioctl (no btrfs-progs at run time: a request never starts a process).
#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

// Linux 6.7; older headers lack it.
#ifndef BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA
#define BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA 4
#endif

int ab_loop_attach(int backing_fd, int *number) {
    int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (control < 0) return -1;
    // Another process may take the free device between GET_FREE and CONFIGURE: that one answers EBUSY, ask again.
    for (int attempt = 0; attempt < 64; attempt++) {
        int n = ioctl(control, LOOP_CTL_GET_FREE);
        if (n < 0) break;
        char path[32];
        snprintf(path, sizeof path, "/dev/loop%d", n);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            // devtmpfs may not have made the node of a device created a moment ago.
            if (mknod(path, S_IFBLK | 0660, makedev(7, (unsigned)n)) != 0 && errno != EEXIST) break;
            fd = open(path, O_RDWR | O_CLOEXEC);
        }
        if (fd < 0) break;
        struct loop_config config;
        memset(&config, 0, sizeof config);
        config.fd = (unsigned)backing_fd;
        // Direct I/O: the image's blocks are not cached a second time in the host's page cache (btrfs caches them).
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
        int configured = ioctl(fd, LOOP_CONFIGURE, &config) == 0;
        if (!configured && errno == EINVAL) {
            // A backing file system without O_DIRECT.
            config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
            configured = ioctl(fd, LOOP_CONFIGURE, &config) == 0;
        }
        if (configured) {
            close(control);
            *number = n;
            return fd;
        }
        int saved = errno;
        close(fd);
        if (saved != EBUSY) {
            errno = saved;
            break;
        }
    }
    int saved = errno;
    close(control);
    errno = saved;
    return -1;
}

int ab_btrfs_subvolume_create(int dir_fd, const char *name) {
    struct btrfs_ioctl_vol_args args;
    memset(&args, 0, sizeof args);
    if (strlen(name) >= sizeof args.name) return errno = ENAMETOOLONG, -1;
    strcpy(args.name, name);
    return ioctl(dir_fd, BTRFS_IOC_SUBVOL_CREATE, &args);
}

int ab_btrfs_snapshot_create(int source_fd, int dir_fd, const char *name, int readonly) {
    struct btrfs_ioctl_vol_args_v2 args;
    memset(&args, 0, sizeof args);
    if (strlen(name) >= sizeof args.name) return errno = ENAMETOOLONG, -1;
    args.fd = source_fd;
    args.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
    strcpy(args.name, name);
    return ioctl(dir_fd, BTRFS_IOC_SNAP_CREATE_V2, &args);
}

int ab_btrfs_subvolume_id(int fd, uint64_t *id) {
    struct btrfs_ioctl_ino_lookup_args args;
    memset(&args, 0, sizeof args);
    args.objectid = BTRFS_FIRST_FREE_OBJECTID;
    if (ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) != 0) return -1;
    *id = args.treeid;
    return 0;
}

/// The subvolumes directly inside subvolume `parent` (its ROOT_REF items in the tree of tree roots).
static int child_subvolumes(int fs_fd, uint64_t parent, uint64_t *children, int capacity) {
    struct btrfs_ioctl_search_args args;
    int count = 0;
    uint64_t next = 0;
    for (;;) {
        memset(&args, 0, sizeof args);
        args.key.tree_id = BTRFS_ROOT_TREE_OBJECTID;
        args.key.min_objectid = args.key.max_objectid = parent;
        args.key.min_type = args.key.max_type = BTRFS_ROOT_REF_KEY;
        args.key.min_offset = next;
        args.key.max_offset = UINT64_MAX;
        args.key.max_transid = UINT64_MAX;
        args.key.nr_items = 4096;
        if (ioctl(fs_fd, BTRFS_IOC_TREE_SEARCH, &args) != 0) return -1;
        if (args.key.nr_items == 0) return count;
        size_t at = 0;
        for (uint32_t i = 0; i < args.key.nr_items; i++) {
            struct btrfs_ioctl_search_header header;
            memcpy(&header, args.buf + at, sizeof header);
            at += sizeof header + header.len;
            if (header.type != BTRFS_ROOT_REF_KEY || header.objectid != parent) continue;
            if (count == capacity) return errno = E2BIG, -1;
            children[count++] = header.offset;
            next = header.offset + 1;
        }
        if (next == 0 || next == UINT64_MAX) return count;
    }
}

static int delete_by_id(int fs_fd, uint64_t id, uint64_t group, int depth) {
    if (group != 0) {
        // Out of the group first, so that the group can be removed at once (not after the cleaner drops the tree).
        struct btrfs_ioctl_qgroup_assign_args relation = {.assign = 0, .src = id, .dst = group};
        ioctl(fs_fd, BTRFS_IOC_QGROUP_ASSIGN, &relation);
    }
    struct btrfs_ioctl_vol_args_v2 args;
    memset(&args, 0, sizeof args);
    args.flags = BTRFS_SUBVOL_SPEC_BY_ID;
    args.subvolid = id;
    if (ioctl(fs_fd, BTRFS_IOC_SNAP_DESTROY_V2, &args) == 0) return 0;
    // A subvolume that holds subvolumes (a workspace may create its own) goes after them.
    if (errno != ENOTEMPTY || depth > 64) return -1;
    uint64_t children[256];
    int count = child_subvolumes(fs_fd, id, children, 256);
    if (count < 0) return -1;
    for (int i = 0; i < count; i++) {
        if (delete_by_id(fs_fd, children[i], group, depth + 1) != 0) return -1;
    }
    return ioctl(fs_fd, BTRFS_IOC_SNAP_DESTROY_V2, &args);
}

int ab_btrfs_subvolume_delete(int fs_fd, uint64_t id, uint64_t group) {
    // The 256 children at a time above are a batch, not a bound: deleting some lets the next search find the rest.
    for (int round = 0; round < 1024; round++) {
        if (delete_by_id(fs_fd, id, group, 0) == 0) return 0;
        if (errno != E2BIG && errno != ENOTEMPTY) return -1;
    }
    return -1;
}

int ab_btrfs_quota_enable(int fs_fd, int simple) {
    struct btrfs_ioctl_quota_ctl_args args;
    memset(&args, 0, sizeof args);
    args.cmd = simple ? BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA : BTRFS_QUOTA_CTL_ENABLE;
    return ioctl(fs_fd, BTRFS_IOC_QUOTA_CTL, &args);
}

int ab_btrfs_qgroup_create(int fs_fd, uint64_t qgroup, int create) {
    struct btrfs_ioctl_qgroup_create_args args = {.create = create ? 1 : 0, .qgroupid = qgroup};
    return ioctl(fs_fd, BTRFS_IOC_QGROUP_CREATE, &args);
}

int ab_btrfs_qgroup_assign(int fs_fd, uint64_t member, uint64_t parent, int assign) {
    struct btrfs_ioctl_qgroup_assign_args args = {.assign = assign ? 1 : 0, .src = member, .dst = parent};
    int result = ioctl(fs_fd, BTRFS_IOC_QGROUP_ASSIGN, &args);
    // Full qgroups answer 1 when the numbers need a rescan; the relation is made all the same.
    return result > 0 ? 0 : result;
}

int ab_btrfs_qgroup_limit(int fs_fd, uint64_t qgroup, uint64_t max_bytes) {
    struct btrfs_ioctl_qgroup_limit_args args;
    memset(&args, 0, sizeof args);
    args.qgroupid = qgroup;
    args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER | BTRFS_QGROUP_LIMIT_MAX_EXCL;
    // Both limits: simple quotas count one figure (referenced = exclusive), full qgroups two; 0 lifts them.
    args.lim.max_rfer = max_bytes ? max_bytes : UINT64_MAX;
    args.lim.max_excl = max_bytes ? max_bytes : UINT64_MAX;
    return ioctl(fs_fd, BTRFS_IOC_QGROUP_LIMIT, &args);
}

int ab_btrfs_fsid(int fs_fd, unsigned char fsid[16]) {
    struct btrfs_ioctl_fs_info_args args;
    memset(&args, 0, sizeof args);
    if (ioctl(fs_fd, BTRFS_IOC_FS_INFO, &args) != 0) return -1;
    memcpy(fsid, args.fsid, 16);
    return 0;
}
