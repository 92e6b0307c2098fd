// Namespaces made ahead of a sandbox's boot (the sandbox pool): a network namespace with its loopback up and an IPC
// namespace, made by the server (root) on a thread of their own and held by descriptors until a boot joins them.
#define _GNU_SOURCE
#include "agentbox_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct namespaces_result {
    int net_fd, ipc_fd, error;
};

int ab_loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    int result = ioctl(fd, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        result = ioctl(fd, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

// Runs on a thread that exists only for this: unshare() changes the namespaces of the calling thread alone, and the
// thread's end lets go of them (the descriptors keep them).
static void *make_namespaces(void *argument) {
    struct namespaces_result *result = argument;
    result->net_fd = result->ipc_fd = -1;
    if (unshare(CLONE_NEWNET | CLONE_NEWIPC) != 0 || ab_loopback_up() != 0) {
        result->error = errno;
        return NULL;
    }
    // bwrap's own network namespace was owned by the workspace's user namespace, where its root could bind ports
    // below 1024; this one is the host's, so the ports are opened to every uid of the namespace instead (a
    // namespace of one workspace: the port numbers guard nothing there). /proc/sys/net shows the caller's namespace.
    int sysctl = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
    if (sysctl < 0 || write(sysctl, "0", 1) != 1) {
        result->error = errno;
        if (sysctl >= 0) close(sysctl);
        return NULL;
    }
    close(sysctl);
    result->net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    result->ipc_fd = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
    if (result->net_fd < 0 || result->ipc_fd < 0) {
        result->error = errno;
        if (result->net_fd >= 0) close(result->net_fd);
        if (result->ipc_fd >= 0) close(result->ipc_fd);
        result->net_fd = result->ipc_fd = -1;
    }
    return NULL;
}

int ab_namespaces_open(int *net_fd, int *ipc_fd) {
    struct namespaces_result result = {-1, -1, 0};
    pthread_t thread;
    int error = pthread_create(&thread, NULL, make_namespaces, &result);
    if (error != 0) {
        errno = error;
        return -1;
    }
    pthread_join(thread, NULL);
    if (result.net_fd < 0) {
        errno = result.error ? result.error : EINVAL;
        return -1;
    }
    *net_fd = result.net_fd;
    *ipc_fd = result.ipc_fd;
    return 0;
}
