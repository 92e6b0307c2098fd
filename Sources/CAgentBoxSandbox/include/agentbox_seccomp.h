#ifndef AGENTBOX_SECCOMP_H
#define AGENTBOX_SECCOMP_H

#include <stddef.h>

/// The most instructions the workspace filter may take (the kernel's limit is 4096; ours needs about 200).
#define AB_SECCOMP_MAX_INSTRUCTIONS 1024

/// Writes the workspace's seccomp filter, a classic BPF program (`struct sock_filter`, 8 bytes per instruction), into
/// `program` (room for `capacity` instructions). Returns the instruction count, or 0 when it does not fit.
///
/// The filter refuses what a container runtime's default profile refuses to a container without capabilities:
/// kernel keyrings, bpf, perf_event_open, userfaultfd, io_uring, modules and kexec, every mount call, new namespaces
/// (clone and unshare with CLONE_NEW* flags, setns; clone3, whose flags it cannot read, gets ENOSYS so that libc falls
/// back to clone), swap, reboot, accounting, quotas, the kernel log, clock setting, NUMA policy, open_by_handle_at,
/// AF_VSOCK sockets and personality flags other than the default ones, with EPERM. Everything else, ptrace and
/// process_vm_readv/writev included, is allowed. Another architecture's calls (i386 on x86_64, arm on aarch64) kill
/// the process; x32 calls fail with ENOSYS. Syscall numbers are looked up by binary search, in a handful of
/// comparisons.
size_t ab_seccomp_program(void *program, size_t capacity);

/// A pipe holding the filter, to hand to `bwrap --seccomp FD`: returns its read end (close-on-exec, the write end
/// already closed, so bwrap reads the program to its end), or -1 with errno set.
int ab_seccomp_open(void);

#endif
