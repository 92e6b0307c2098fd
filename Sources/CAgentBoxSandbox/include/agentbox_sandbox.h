#ifndef AGENTBOX_SANDBOX_H
#define AGENTBOX_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// The most file descriptors one control message carries (a process's stdin, stdout and stderr).
#define AB_MAX_FDS 3
/// The largest control message, in bytes.
#define AB_MAX_MESSAGE 262144
/// The longest line the supervisor writes on its reply pipe, newline included. The server stops a sandbox whose
/// replies run longer: only a compromised supervisor writes one.
#define AB_MAX_REPLY_LINE 256

/// Sends `len` bytes of `buf` as one message on the SOCK_SEQPACKET socket `sock`, with `nfds` descriptors attached
/// (SCM_RIGHTS). Returns 0, or -1 with errno set.
int ab_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// Receives one message into `buf` (at most `cap` bytes) and up to AB_MAX_FDS attached descriptors into `fds`
/// (their count into `*nfds`; received descriptors are close-on-exec). Returns the message length, 0 at end of
/// stream, or -1 with errno set. A message or descriptor list that did not fit is an error (EMSGSIZE), and any
/// descriptors that came with it are closed.
ssize_t ab_recv_with_fds(int sock, void *buf, size_t cap, int *fds, int *nfds);

/// The most descriptors a pre-started sandbox's bind message carries (its mounts).
#define AB_BIND_MAX_FDS 64
/// ab_send_with_fds for up to AB_BIND_MAX_FDS descriptors.
int ab_send_with_many_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/// ab_recv_with_fds for up to `max_fds` (at most AB_BIND_MAX_FDS) descriptors.
ssize_t ab_recv_with_many_fds(int sock, void *buf, size_t cap, int *fds, int max_fds, int *nfds);
/// Brings the loopback interface of the calling thread's network namespace up. Returns 0, or -1 with errno set.
int ab_loopback_up(void);
/// Makes `fd` blocking or non-blocking. Returns 0, or -1 with errno set.
int ab_set_nonblocking(int fd, int nonblocking);

#endif

#ifndef AGENTBOX_SANDBOX_SPAWN_H
#define AGENTBOX_SANDBOX_SPAWN_H
/// Starts `path` in a new session and returns its pid, or -1 with errno set (the child's errno when a set-up step or
/// exec failed).
///
/// In the child, descriptor i (0 <= i < nfds) is `fds[i]` and every other descriptor is closed; signals are
/// unblocked and SIGPIPE is reset. Before exec the child writes "0" to each of `cgroup_fds` (open `cgroup.procs`
/// files), so that it and everything it starts are in those cgroups from the first instruction; and when
/// `set_ids` is non-zero it drops supplementary groups and switches to `gid` and `uid` for good.
///
/// Creates a user namespace owned by host uid `owner`, with `map` ("inside outside count" lines) as both its uid and
/// gid map, and returns a descriptor of it (the process that made it is gone).
int ab_userns_open(uint32_t owner, const char *map);
/// A detached copy of the mount at `dir_fd`, idmapped through `userns_fd`, nosuid and nodev (read-only if asked).
int ab_idmapped_tree(int dir_fd, int userns_fd, int read_only);
/// A detached bind mount of `path` relative to `dir_fd` (or of `dir_fd` itself when `path` is ""), with its
/// submounts when `recursive`: nosuid, nodev, and read-only if asked (for a pre-started sandbox to attach).
int ab_detached_clone(int dir_fd, const char *path, int read_only, int recursive);
/// A detached overlay of `lower_fds` (top first) with `upper_fd`/`work_fd` (or read-only with `upper_fd` -1), made
/// on a thread whose root is `root_fd` (the paths the overlay shows in mountinfo are relative to it).
/// On failure, `message` holds the file system's own explanation when it gave one.
int ab_overlay_mount(const int *lower_fds, int nlower, int upper_fd, int work_fd, int root_fd, char *message,
                     size_t message_size);

/// Makes `count` (at most 8) overlays at once, each as ab_overlay_mount does and on a thread of its own: overlay i's
/// lower layers are `lower_fds[first[i]]`… (`nlower[i]` of them), its upper and work directories `upper_fds[i]` and
/// `work_fds[i]`. `results[i]` is its mount's descriptor, or -errno with its file system's words in the i-th
/// `message_size` bytes of `messages`. Returns 0 when every one was made, else -1 (the made ones are open: close them).
int ab_overlay_mount_all(int count, const int *lower_fds, const int *first, const int *nlower, const int *upper_fds,
                         const int *work_fds, int root_fd, int *results, char *messages, size_t message_size);
/// With `nmounts` > 0, the child first enters a mount namespace of its own (private to it: nothing propagates back)
/// and attaches each detached mount of `mount_fds` at `mount_targets` there, so that they are seen by it and what it
/// starts, never by the host, and vanish with the last process that uses them.
///
/// The child joins each namespace of `ns_fds` (`nns` of them) while it is still the server's root, before it drops
/// to `uid`: how a sandbox gets the network and IPC namespaces a pool made ahead of its boot.
///
/// Exists because no Swift package can map more than fds 0-2 into a child or switch its credentials before exec.
pid_t ab_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds,
               const int *cgroup_fds, int ncgroups, int set_ids, uid_t uid, gid_t gid,
               const int *mount_fds, const char *const *mount_targets, int nmounts, const int *ns_fds, int nns);

/// The limit on open files (soft, hard) that every child `ab_spawn` starts after this call gets, set in the child
/// before exec; 0, 0 (the default): the child keeps the server's. A server that raised its own limit far past what
/// its workspaces' programs expect gives them the one it started with.
void ab_spawn_set_open_file_limit(unsigned long soft, unsigned long hard);

/// Makes a new network namespace (its loopback up, ports below 1024 open to every uid of it) and a new IPC namespace,
/// both owned by the host's user namespace, on a thread of their own, and returns descriptors of them
/// (close-on-exec) in `net_fd` and `ipc_fd`. Needs root. Returns 0, or -1 with errno set.
int ab_namespaces_open(int *net_fd, int *ipc_fd);
#endif

/// pipe2(fds, O_CLOEXEC), which Swift's Glibc module does not export.
int ab_pipe_cloexec(int fds[2]);

/// open(path, O_PATH | O_CLOEXEC [| O_DIRECTORY]) — a descriptor that names a file or directory without opening it
/// for reading, for bwrap's --bind-fd. Returns the descriptor, or -1 with errno set.
int ab_open_path(const char *path, int directory);

/// Like ab_open_path for a directory given by an absolute path, but no symlink on the way is followed (openat2 with
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a path where one now lies fails with ELOOP.
int ab_open_directory_path_nofollow(const char *absolute_path);

/// openat2(root, path, {flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS [| RESOLVE_NO_SYMLINKS]}): opens `path`
/// (relative) so that resolving it can never leave the directory `root`: `..` above it, absolute symlinks and
/// symlinks that lead outside fail with EXDEV. Retries while the kernel answers EAGAIN (a rename raced a `..`), a
/// bounded number of times. Returns the descriptor, or -1 with errno set.
int ab_open_beneath(int root, const char *path, int flags, unsigned mode, int no_symlinks);

/// What tells a directory from one made later in its place: its device, inode and birth time (statx on the descriptor,
/// which may be O_PATH), into `identity`. Returns 0, or -1 with errno set.
int ab_directory_identity(int fd, uint64_t identity[4]);
/// renameat2 with RENAME_NOREPLACE when `noreplace`. Returns 0, or -1 with errno set.
int ab_rename(int from_dir, const char *from, int to_dir, const char *to, int noreplace);

/// O_PATH (010000000 on Linux), which Swift's Glibc module does not export.
#define AB_O_PATH 010000000

/// Copies the whole of regular file `src` into the empty file `dst`: first as a reflink (FICLONE, which shares the
/// blocks on btrfs, XFS and other copy-on-write file systems), else with copy_file_range (an in-kernel copy), else
/// with read and write. Returns 1 when the blocks are shared, 0 when copied, or -1 with errno set.
int ab_clone_file(int src, int dst);

/// inotify_init1(IN_NONBLOCK | IN_CLOEXEC). Returns the descriptor, or -1 with errno set.
int ab_inotify_init(void);

/// inotify_add_watch on the directory that the descriptor `dir_fd` names (through /proc/self/fd, so that no path is
/// resolved again). Returns the watch descriptor, or -1 with errno set.
int ab_inotify_watch_fd(int inotify_fd, int dir_fd, unsigned mask);

/// syncfs(fd): flushes the file system that holds `fd`. Returns 0, or -1 with errno set.
int ab_syncfs(int fd);
/* Moves the calling thread into the network namespace fd (setns CLONE_NEWNET); sockets it creates stay there. */
int ab_join_network_namespace(int fd);
/* A socket listening on 127.0.0.1:port inside the network namespace fd, made by a short-lived thread that joins
 * it (the calling thread stays where it is). Returns the descriptor (non-blocking), or -errno. */
int ab_listen_in_network_namespace(int namespace_fd, int port);
/* Resets and closes every connection queued on the listening socket `fd` and not accepted yet (accept4 with
   SOCK_CLOEXEC | SOCK_NONBLOCK, SO_LINGER 0, close) after making it non-blocking. Returns how many, or -1 with errno. */
int ab_drop_queued_connections(int fd);
/* Starts writing back the dirty pages of [offset, offset+length) of fd, without waiting (sync_file_range). */
int ab_start_writeback(int fd, long long offset, long long length);

/// ioctl(fd, TIOCSWINSZ) with `cols` × `rows`. Returns 0, or -1 with errno set.
int ab_set_window_size(int fd, unsigned short cols, unsigned short rows);

#include <stdint.h>

/// Attaches the open file `backing_fd` to a free loop device (LOOP_CTL_GET_FREE, then LOOP_CONFIGURE with
/// LO_FLAGS_AUTOCLEAR: the device detaches itself once nothing holds it, the mount included). Returns the device's
/// descriptor, which must stay open until the device is mounted, with its number in `*number`; or -1 with errno set.
int ab_loop_attach(int backing_fd, int *number);

/// Creates the btrfs subvolume `name` in the directory `dir_fd` (BTRFS_IOC_SUBVOL_CREATE). Returns 0, or -1 with errno.
int ab_btrfs_subvolume_create(int dir_fd, const char *name);

/// Snapshots the subvolume `source_fd` as `name` in `dir_fd`, read-only when `readonly` (BTRFS_IOC_SNAP_CREATE_V2): one
/// transaction, whatever the subvolume holds. Returns 0, or -1 with errno set.
int ab_btrfs_snapshot_create(int source_fd, int dir_fd, const char *name, int readonly);

/// The id of the subvolume that holds `fd` (BTRFS_IOC_INO_LOOKUP). Returns 0, or -1 with errno set.
int ab_btrfs_subvolume_id(int fd, uint64_t *id);

/// Deletes subvolume `id` of the file system of `fs_fd` (BTRFS_IOC_SNAP_DESTROY_V2 by id), after the subvolumes
/// inside it, which a workspace may have made; each leaves quota group `group` first (0: none). Returns 0, or -1
/// with errno set.
int ab_btrfs_subvolume_delete(int fs_fd, uint64_t id, uint64_t group);

/// Enables quotas on the file system of `fs_fd`: simple quotas (Linux 6.7) when `simple`, else full qgroups.
int ab_btrfs_quota_enable(int fs_fd, int simple);

/// Creates (or with `create` 0 removes) quota group `qgroup` (level << 48 | id). Returns 0, or -1 with errno set.
int ab_btrfs_qgroup_create(int fs_fd, uint64_t qgroup, int create);

/// Makes quota group `member` a member of `parent` (or with `assign` 0 no longer one). Returns 0, or -1 with errno.
int ab_btrfs_qgroup_assign(int fs_fd, uint64_t member, uint64_t parent, int assign);

/// Limits quota group `qgroup` to `max_bytes` (0: no limit). Returns 0, or -1 with errno set.
int ab_btrfs_qgroup_limit(int fs_fd, uint64_t qgroup, uint64_t max_bytes);

/// The file system id of the btrfs that holds `fs_fd` (names its /sys/fs/btrfs directory). Returns 0, or -1.
int ab_btrfs_fsid(int fs_fd, unsigned char fsid[16]);

/// An epoll set (close-on-exec) for ControlSocketReader. Returns its descriptor, or -1 with errno set.
int ab_epoll_create(void);
/// Watches `fd` for input and hang-up (level-triggered), reported with `token`. Returns 0, or -1 with errno set.
int ab_epoll_add(int epfd, int fd, uint64_t token);
/// Stops watching `fd`. Returns 0, or -1 with errno set.
int ab_epoll_remove(int epfd, int fd);
/// Waits for ready descriptors and stores up to `max` of their tokens; returns their count, or -1 with errno set.
int ab_epoll_wait(int epfd, uint64_t *tokens, int max);
/// The most descriptors one message may carry (the kernel's SCM_MAX_FD).
#define AB_SCM_MAX_FD 253
/// Receives one message without waiting (MSG_DONTWAIT, MSG_TRUNC: returns the message's whole length even when it
/// did not fit `cap`), with room for every descriptor a message can carry (close-on-exec; stored in `fds`, their
/// count in `*nfds`: none is dropped, and so closed, by the kernel on this thread). `*flags` receives msg_flags.
/// Returns the length, 0 at the end (or for an empty message), or -1 with errno set.
ssize_t ab_recv_message(int sock, void *buf, size_t cap, int *fds, int *nfds, int *flags);
