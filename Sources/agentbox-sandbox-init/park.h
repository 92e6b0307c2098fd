#ifndef AGENTBOX_PARK_H
#define AGENTBOX_PARK_H
/// Records every entry of the sandbox's tmpfs mounts (its root, /dev, /tmp, /run, /var/tmp and any tmpfs the
/// workspace asked for) as the sandbox was built: what a park restores (see park.c). Call it before the first process.
void ab_park_record(void);
/// Once no process but PID 1 is left: gives the tmpfs mounts back their recorded entries (every other entry removed,
/// modes and owners restored) and checks that no System V IPC object is left. Returns NULL when the sandbox is as it
/// was built, or a one-word reason why it cannot be parked.
const char *ab_park_reset(void);
#endif
