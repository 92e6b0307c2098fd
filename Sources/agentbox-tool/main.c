// agentbox-tool: the command behind `agentbox-{toolkit}` inside a workspace. It is a relay: it sends its name and
// arguments to the server over the workspace's own Unix socket (mounted at /.agentbox/run/tools.sock; the socket is
// the workspace's identity) and writes what comes back to stdout and stderr, then exits with the code it is given.
// Parsing flags against the tools' schemas, help, validation and the call itself all happen in the server.
//
// Request:  "AGENTBOX-TOOL 1\n", then "T<len>\n<toolkit>", "S<len>\n<session id>" (optional), "A<len>\n<argument>"
//           per argument, and ".\n".
// Reply:    any number of "O<len>\n<bytes>" (stdout) and "E<len>\n<bytes>" (stderr), then "X<code>\n".
//
// `tool mcp` (run by its own name, not as agentbox-TOOLKIT) is the stdio MCP server of the workspace's toolkits that
// every agent session is given: it sends "AGENTBOX-MCP 1\n", the session id (optional) and ".\n", then relays stdin to
// the socket and the socket to stdout, as they are (newline-delimited JSON-RPC), until either side ends. The server
// speaks MCP.
// Static, libc only: it runs inside sandboxes that need not have any library of the host.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(const char *message) {
    dprintf(2, "agentbox-tool: %s\n", message);
    return 1;
}

static int write_all(int fd, const void *data, size_t length) {
    const char *p = data;
    while (length > 0) {
        ssize_t n = write(fd, p, length);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        length -= (size_t)n;
    }
    return 0;
}

static int send_field(int fd, char kind, const char *value) {
    char header[32];
    size_t length = strlen(value);
    int n = snprintf(header, sizeof header, "%c%zu\n", kind, length);
    return write_all(fd, header, (size_t)n) || write_all(fd, value, length) ? -1 : 0;
}

// Buffered reads of the reply.
static char buffer[65536];
static size_t buffered, offset;

static int next_byte(int fd) {
    if (offset == buffered) {
        ssize_t n;
        do { n = read(fd, buffer, sizeof buffer); } while (n < 0 && errno == EINTR);
        if (n <= 0) return -1;
        buffered = (size_t)n;
        offset = 0;
    }
    return (unsigned char)buffer[offset++];
}

// A decimal number ending in a newline (at most 12 digits).
static long read_number(int fd) {
    long value = 0;
    int digits = 0, c, negative = 0;
    while ((c = next_byte(fd)) != '\n') {
        if (c == '-' && digits == 0 && !negative) { negative = 1; continue; }
        if (c < '0' || c > '9' || ++digits > 12) return -1000000;
        value = value * 10 + (c - '0');
    }
    return negative ? -value : value;
}

static int copy_bytes(int from, int to, long length) {
    while (length > 0) {
        int c = next_byte(from);
        if (c < 0) return -1;
        // Write what is buffered in one go.
        size_t run = buffered - offset + 1;
        if ((long)run > length) run = (size_t)length;
        if (write_all(to, buffer + offset - 1, run) < 0 && errno != EPIPE) return -1;
        offset += run - 1;
        length -= (long)run;
    }
    return 0;
}

// One direction of the MCP relay: bytes read from `from`, waiting to be written to `to`.
struct direction {
    int from, to;
    char data[65536];
    size_t length, offset;
    int ended;
};

// Moves what it can without blocking; 0 when the direction is still open, 1 when it is done, -1 on a write error.
static int pump(struct direction *d, short readable, short writable) {
    if (d->length == 0 && !d->ended && readable) {
        ssize_t n = read(d->from, d->data, sizeof d->data);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
        if (n <= 0) d->ended = 1;
        else d->length = (size_t)n, d->offset = 0;
    }
    if (d->length > 0 && writable) {
        ssize_t n = write(d->to, d->data + d->offset, d->length);
        if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
        d->offset += (size_t)n;
        d->length -= (size_t)n;
    }
    return d->ended && d->length == 0;
}

static struct direction up, down;

// Relays stdin to the socket and the socket to stdout, both ways at once, holding at most 64 KiB each way.
static int relay_mcp(int fd) {
    const char *session = getenv("AGENTBOX_SESSION_ID");
    if (write_all(fd, "AGENTBOX-MCP 1\n", 15) < 0 || (session && *session && send_field(fd, 'S', session) < 0)
        || write_all(fd, ".\n", 2) < 0) {
        return fail("the server closed the connection");
    }
    signal(SIGPIPE, SIG_IGN);  // a side that went away is a write error, not the end of this process
    up = (struct direction){.from = 0, .to = fd};
    down = (struct direction){.from = fd, .to = 1};
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
    int up_done = 0;
    for (;;) {
        struct pollfd polls[4] = {
            {.fd = !up_done && up.length == 0 && !up.ended ? 0 : -1, .events = POLLIN},
            {.fd = up.length > 0 ? fd : -1, .events = POLLOUT},
            {.fd = down.length == 0 && !down.ended ? fd : -1, .events = POLLIN},
            {.fd = down.length > 0 ? 1 : -1, .events = POLLOUT},
        };
        if (poll(polls, 4, -1) < 0) {
            if (errno == EINTR) continue;
            return fail("poll failed");
        }
        if (!up_done) {
            int state = pump(&up, polls[0].revents, polls[1].revents);
            if (state < 0) return 0;  // the server went away
            if (state == 1) {
                up_done = 1;
                shutdown(fd, SHUT_WR);  // the client is done: the server sees the end and finishes
            }
        }
        int state = pump(&down, polls[2].revents, polls[3].revents);
        if (state != 0) return 0;  // the server ended the connection, or stdout is gone
    }
}

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    const char *prefix = "agentbox-";
    int mcp = strncmp(name, prefix, strlen(prefix)) != 0 && argc == 2 && strcmp(argv[1], "mcp") == 0;
    if (!mcp && (strncmp(name, prefix, strlen(prefix)) != 0 || name[strlen(prefix)] == '\0')) {
        return fail("run me as agentbox-TOOLKIT (a toolkit attached to this workspace), or as `tool mcp` (their MCP server)");
    }
    const char *path = getenv("AGENTBOX_TOOLS_SOCKET");
    if (path == NULL || *path == '\0') path = "/.agentbox/run/tools.sock";
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) return fail("the tools socket's path is too long");
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        dprintf(2, "agentbox-tool: cannot reach the toolkits of this workspace (%s: %s)\n", path, strerror(errno));
        return 1;
    }
    if (mcp) return relay_mcp(fd);
    const char *session = getenv("AGENTBOX_SESSION_ID");
    if (write_all(fd, "AGENTBOX-TOOL 1\n", 16) < 0 || send_field(fd, 'T', name + strlen(prefix)) < 0
        || (session && *session && send_field(fd, 'S', session) < 0)) {
        return fail("the server closed the connection");
    }
    for (int i = 1; i < argc; i++) {
        if (send_field(fd, 'A', argv[i]) < 0) return fail("the server closed the connection");
    }
    if (write_all(fd, ".\n", 2) < 0) return fail("the server closed the connection");
    for (;;) {
        int kind = next_byte(fd);
        if (kind < 0) return fail("the server closed the connection before the call ended");
        long number = read_number(fd);
        if (number == -1000000) return fail("the server's reply is malformed");
        switch (kind) {
        case 'O':
        case 'E':
            if (number < 0 || copy_bytes(fd, kind == 'O' ? 1 : 2, number) < 0) return fail("the server's reply was cut short");
            break;
        case 'X':
            return (int)(number & 0xff);
        default:
            return fail("the server's reply is malformed");
        }
    }
}
