#ifndef AGENTBOX_PRESTART_H
#define AGENTBOX_PRESTART_H
/// `--prestarted`: makes the sandbox's namespaces and forks its PID 1, which waits for the bind message and carries it
/// out (see prestart.c). Returns 0 in PID 1, bound, which then goes on as the sandbox's init; the launcher never
/// returns (it exits with PID 1's status). Returns -1 when the namespaces cannot be made.
int ab_prestart(void);
#endif
