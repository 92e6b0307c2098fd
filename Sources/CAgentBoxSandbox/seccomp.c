// The seccomp filter of every workspace: a classic BPF program that bwrap loads (--seccomp FD) just before it execs
// the sandbox's init, so that the init and everything it starts run under it.
//
// It is a deny list, modelled on what Docker's and containerd's default profile refuses to a container without
// capabilities: the calls that widen the kernel's attack surface (io_uring, bpf, keyrings, userfaultfd, perf) or that
// only an administrator of the host needs (modules, kexec, mounts, namespaces, swap, reboot, clock). The sandbox has
// no capabilities, so most of these fail anyway; the filter keeps their kernel code out of reach, where many of the
// bugs that became container escapes were. Everything else is allowed, so that a workspace stays a normal Linux box
// (ptrace and process_vm_* included: since Linux 4.8 a tracer cannot use them to step around seccomp).
#define _GNU_SOURCE
#include "agentbox_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "agentbox_syscalls.h"

#if defined(__linux__) && (defined(__x86_64__) || (defined(__aarch64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__))
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define AB_AUDIT_ARCH AUDIT_ARCH_X86_64
// x32 calls arrive with the x86_64 architecture and this bit set in the number, with numbers of their own.
#define AB_X32_SYSCALL_BIT 0x40000000u
#else
#define AB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

// Namespace flags. CLONE_NEWTIME (0x80) exists only for unshare and clone3: in clone's flags those bits are the
// exit signal.
#define AB_CLONE_NAMESPACES 0x7E020000u  // NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
#define AB_UNSHARE_NAMESPACES (AB_CLONE_NAMESPACES | 0x80u)
#define AB_AF_VSOCK 40

enum check {
    REFUSE,            // EPERM
    REFUSE_ENOSYS,     // ENOSYS, for calls whose callers fall back to an older one
    CLONE_FLAGS,       // EPERM when the flags ask for a new namespace
    UNSHARE_FLAGS,     // the same, for unshare
    PERSONALITY,       // EPERM unless the persona is one of the default ones (or the query 0xffffffff)
    SOCKET_FAMILY,     // EPERM for AF_VSOCK, which no network namespace confines
};

struct rule { unsigned nr; enum check check; };

static const struct rule rules[] = {
    // Kernel attack surface that a build or a test does not need.
    { SYS_add_key, REFUSE }, { SYS_keyctl, REFUSE }, { SYS_request_key, REFUSE },
    { SYS_bpf, REFUSE }, { SYS_perf_event_open, REFUSE }, { SYS_userfaultfd, REFUSE },
    { SYS_io_uring_setup, REFUSE }, { SYS_io_uring_enter, REFUSE }, { SYS_io_uring_register, REFUSE },
    { SYS_open_by_handle_at, REFUSE }, { SYS_fanotify_init, REFUSE },
    // Kernel code and the machine itself.
    { SYS_init_module, REFUSE }, { SYS_finit_module, REFUSE }, { SYS_delete_module, REFUSE },
    { SYS_kexec_load, REFUSE }, { SYS_kexec_file_load, REFUSE }, { SYS_reboot, REFUSE },
    { SYS_swapon, REFUSE }, { SYS_swapoff, REFUSE }, { SYS_acct, REFUSE }, { SYS_syslog, REFUSE },
    { SYS_quotactl, REFUSE }, { SYS_quotactl_fd, REFUSE }, { SYS_vhangup, REFUSE },
    { SYS_settimeofday, REFUSE }, { SYS_clock_settime, REFUSE },
    { SYS_sethostname, REFUSE }, { SYS_setdomainname, REFUSE },
    { SYS_mbind, REFUSE }, { SYS_set_mempolicy, REFUSE }, { SYS_get_mempolicy, REFUSE },
    { SYS_set_mempolicy_home_node, REFUSE }, { SYS_migrate_pages, REFUSE }, { SYS_move_pages, REFUSE },
    // Mounts, old and new API.
    { SYS_mount, REFUSE }, { SYS_umount2, REFUSE }, { SYS_pivot_root, REFUSE }, { SYS_chroot, REFUSE },
    { SYS_open_tree, REFUSE }, { SYS_open_tree_attr, REFUSE }, { SYS_move_mount, REFUSE }, { SYS_fsopen, REFUSE },
    { SYS_fsconfig, REFUSE }, { SYS_fsmount, REFUSE }, { SYS_fspick, REFUSE }, { SYS_mount_setattr, REFUSE },
    // Namespaces.
    { SYS_setns, REFUSE }, { SYS_unshare, UNSHARE_FLAGS }, { SYS_clone, CLONE_FLAGS }, { SYS_clone3, REFUSE_ENOSYS },
    // Arguments.
    { SYS_personality, PERSONALITY }, { SYS_socket, SOCKET_FAMILY },
    // Obsolete calls that some architectures (or headers) still have.
#ifdef SYS_lookup_dcookie
    { SYS_lookup_dcookie, REFUSE },
#endif
#ifdef SYS_uselib
    { SYS_uselib, REFUSE },
#endif
#ifdef SYS_ustat
    { SYS_ustat, REFUSE },
#endif
#ifdef SYS_sysfs
    { SYS_sysfs, REFUSE },
#endif
#ifdef SYS__sysctl
    { SYS__sysctl, REFUSE },
#endif
#ifdef SYS_iopl
    { SYS_iopl, REFUSE },
#endif
#ifdef SYS_ioperm
    { SYS_ioperm, REFUSE },
#endif
#ifdef SYS_nfsservctl
    { SYS_nfsservctl, REFUSE },
#endif
#ifdef SYS_umount
    { SYS_umount, REFUSE },
#endif
};

#define RULE_COUNT (sizeof(rules) / sizeof(rules[0]))
// A subtree of at most this many rules is tested one by one; above it, one comparison halves the rules.
#define LEAF_RULES 4

#define OFFSET_NR ((unsigned)offsetof(struct seccomp_data, nr))
#define OFFSET_ARCH ((unsigned)offsetof(struct seccomp_data, arch))
// The low 32 bits of the first argument (both architectures are little-endian). Every check reads only those: the
// kernel truncates clone's and personality's arguments to 32 bits, socket's family is an int, and unshare refuses
// high bits itself (EINVAL).
#define OFFSET_ARG0_LOW ((unsigned)offsetof(struct seccomp_data, args[0]))

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define RET_ENOSYS (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))

struct program {
    struct sock_filter *code;
    size_t count, capacity;
};

static size_t emit(struct program *p, unsigned short code, unsigned k, unsigned char jt, unsigned char jf) {
    if (p->count < p->capacity) p->code[p->count] = (struct sock_filter){ code, jt, jf, k };
    return p->count++;
}

static void load(struct program *p, unsigned offset) { emit(p, BPF_LD | BPF_W | BPF_ABS, offset, 0, 0); }
static void ret(struct program *p, unsigned value) { emit(p, BPF_RET | BPF_K, value, 0, 0); }

// Instructions of a rule's check, after its number matched. Each ends in a return on every path, so the
// accumulator (the syscall number) survives only on the path that skips the check.
static unsigned char check_length(enum check check) {
    switch (check) {
    case REFUSE: case REFUSE_ENOSYS: return 1;
    case CLONE_FLAGS: case UNSHARE_FLAGS: case SOCKET_FAMILY: return 4;
    case PERSONALITY: return 8;
    }
    return 0;
}

static void emit_check(struct program *p, enum check check) {
    switch (check) {
    case REFUSE: ret(p, RET_EPERM); break;
    case REFUSE_ENOSYS: ret(p, RET_ENOSYS); break;
    case CLONE_FLAGS:
    case UNSHARE_FLAGS:
        load(p, OFFSET_ARG0_LOW);
        emit(p, BPF_JMP | BPF_JSET | BPF_K, check == CLONE_FLAGS ? AB_CLONE_NAMESPACES : AB_UNSHARE_NAMESPACES, 0, 1);
        ret(p, RET_EPERM);
        ret(p, RET_ALLOW);
        break;
    case SOCKET_FAMILY:
        load(p, OFFSET_ARG0_LOW);
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, AB_AF_VSOCK, 0, 1);
        ret(p, RET_EPERM);
        ret(p, RET_ALLOW);
        break;
    case PERSONALITY: {
        // PER_LINUX, PER_LINUX32, UNAME26, UNAME26 | PER_LINUX32, and 0xffffffff, which only reads the persona.
        static const unsigned allowed[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffffu };
        load(p, OFFSET_ARG0_LOW);
        for (unsigned char i = 0; i < 5; i++) emit(p, BPF_JMP | BPF_JEQ | BPF_K, allowed[i], (unsigned char)(5 - i), 0);
        ret(p, RET_EPERM);
        ret(p, RET_ALLOW);
        break;
    }
    }
}

// Emits the lookup of the syscall number (in the accumulator) among sorted[lo, hi): a binary search by `jge`, whose
// "greater or equal" side is reached by an unconditional jump (conditional jumps reach only 255 instructions).
static void emit_lookup(struct program *p, const struct rule *sorted, size_t lo, size_t hi) {
    if (hi - lo <= LEAF_RULES) {
        for (size_t i = lo; i < hi; i++) {
            emit(p, BPF_JMP | BPF_JEQ | BPF_K, sorted[i].nr, 0, check_length(sorted[i].check));
            emit_check(p, sorted[i].check);
        }
        ret(p, RET_ALLOW);
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    emit(p, BPF_JMP | BPF_JGE | BPF_K, sorted[mid].nr, 0, 1);
    size_t jump = emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
    emit_lookup(p, sorted, lo, mid);
    if (jump < p->capacity) p->code[jump].k = (unsigned)(p->count - jump - 1);
    emit_lookup(p, sorted, mid, hi);
}

static int by_number(const void *a, const void *b) {
    unsigned x = ((const struct rule *)a)->nr, y = ((const struct rule *)b)->nr;
    return x < y ? -1 : x > y;
}

size_t ab_seccomp_program(void *program, size_t capacity) {
    struct rule sorted[RULE_COUNT];
    memcpy(sorted, rules, sizeof(rules));
    qsort(sorted, RULE_COUNT, sizeof(sorted[0]), by_number);
    struct program p = { .code = program, .capacity = capacity };
    load(&p, OFFSET_ARCH);
    emit(&p, BPF_JMP | BPF_JEQ | BPF_K, AB_AUDIT_ARCH, 1, 0);
    ret(&p, SECCOMP_RET_KILL_PROCESS);
    load(&p, OFFSET_NR);
#ifdef AB_X32_SYSCALL_BIT
    emit(&p, BPF_JMP | BPF_JGE | BPF_K, AB_X32_SYSCALL_BIT, 0, 1);
    ret(&p, RET_ENOSYS);
#endif
    emit_lookup(&p, sorted, 0, RULE_COUNT);
    return p.count <= capacity ? p.count : 0;
}

int ab_seccomp_open(void) {
    struct sock_filter program[AB_SECCOMP_MAX_INSTRUCTIONS];
    size_t count = ab_seccomp_program(program, AB_SECCOMP_MAX_INSTRUCTIONS);
    if (count == 0) { errno = E2BIG; return -1; }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return -1;
    // A few kilobytes: an empty pipe takes them whole, so a single write never blocks.
    const char *bytes = (const char *)program;
    size_t left = count * sizeof(program[0]);
    while (left > 0) {
        ssize_t written = write(fds[1], bytes, left);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) {
            int saved = errno;
            close(fds[0]);
            close(fds[1]);
            errno = saved;
            return -1;
        }
        bytes += written;
        left -= (size_t)written;
    }
    close(fds[1]);
    return fds[0];
}

#else

size_t ab_seccomp_program(void *program, size_t capacity) {
    (void)program;
    (void)capacity;
    return 0;
}

int ab_seccomp_open(void) {
    errno = ENOSYS;
    return -1;
}

#endif
