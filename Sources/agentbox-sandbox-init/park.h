#ifndef AGENTBOX_PARK_H
#define AGENTBOX_PARK_H
#include <sys/types.h>
/// Notes a tmpfs the init mounted at `path` (as the sandbox will see it), whose device is `device` (stat right after
/// the mount, before anything can be mounted over it): what a park gives back (see park.c).
void ab_park_note_tmpfs(const char *path, dev_t device);
/// Notes a detached mount of the IPC namespace's mqueue file system, through which a park removes message queues
/// (-1: none could be made, and the sandbox never parks).
void ab_park_note_message_queues(int fd);
/// Records every entry of the noted tmpfs mounts and what PID 1 runs with, as the sandbox was built: what a park
/// restores. Call it before the first process.
void ab_park_record(void);
/// Once no process but PID 1 is left: gives the noted tmpfs mounts back their recorded entries (every other entry
/// removed, owners and modes restored), removes every POSIX message queue, and checks what cannot be given back.
/// Returns NULL when the sandbox is as it was built, or a one-word reason why it cannot be parked.
const char *ab_park_reset(void);
#endif
