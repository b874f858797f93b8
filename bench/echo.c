/*
 * echo.c - the round-trip floor on the C side: a server that answers every
 * request frame at once with a fixed payload, doing nothing else, in the
 * way C xenstored does its I/O (one poll over every connection, read, one
 * write per reply). Compared with src/bench/echo-server.ts it shows what the
 * I/O path costs a Node daemon before any XenStore work, and with many
 * clients it bounds what any daemon could reach on this machine.
 *
 *   echo SOCKET PAYLOAD_BYTES     prints "ready", serves up to 256 clients
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { HEADER = 16, PAYLOAD_MAX = 4096, MAX_CLIENTS = 256 };

struct client {
    char in[2 * (HEADER + PAYLOAD_MAX)];
    size_t have;
};

static char out[HEADER + PAYLOAD_MAX];

/* Reads what arrived and answers each whole frame; false once the client is gone. */
static int serve(int fd, struct client *c, uint32_t reply_len)
{
    ssize_t n = read(fd, c->in + c->have, sizeof(c->in) - c->have);

    if (n <= 0)
        return 0;
    c->have += n;
    for (;;) {
        uint32_t h[4];

        if (c->have < HEADER)
            return 1;
        memcpy(h, c->in, HEADER);
        if (h[3] > PAYLOAD_MAX)
            return 0;
        size_t frame = HEADER + h[3];
        if (c->have < frame)
            return 1;
        h[3] = reply_len;
        memcpy(out, h, HEADER);
        if (write(fd, out, HEADER + reply_len) != (ssize_t)(HEADER + reply_len))
            return 0;
        memmove(c->in, c->in + frame, c->have - frame);
        c->have -= frame;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    static struct pollfd fds[1 + MAX_CLIENTS];
    static struct client clients[1 + MAX_CLIENTS];
    int listener = socket(AF_UNIX, SOCK_STREAM, 0), count = 1;
    uint32_t reply_len = argc == 3 ? (uint32_t)atoi(argv[2]) : 0;

    if (argc != 3 || reply_len == 0 || reply_len > PAYLOAD_MAX) {
        fprintf(stderr, "usage: echo SOCKET PAYLOAD_BYTES (1..4096)\n");
        return 2;
    }
    memset(out + HEADER, 'x', reply_len);
    out[HEADER + reply_len - 1] = 0;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    unlink(argv[1]);
    if (bind(listener, (struct sockaddr *)&sa, sizeof(sa)) || listen(listener, 64)) {
        perror("echo: bind/listen");
        return 1;
    }
    fds[0] = (struct pollfd){ .fd = listener, .events = POLLIN };
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        if (poll(fds, count, -1) < 0)
            return 1;
        for (int i = count - 1; i >= 1; i--) {
            if (!fds[i].revents || serve(fds[i].fd, &clients[i], reply_len))
                continue;
            close(fds[i].fd);
            fds[i] = fds[--count];
            clients[i] = clients[count];
        }
        if (fds[0].revents && count <= MAX_CLIENTS) {
            int fd = accept(listener, NULL, NULL);

            if (fd < 0)
                return 1;
            fds[count] = (struct pollfd){ .fd = fd, .events = POLLIN };
            clients[count++].have = 0;
        }
    }
}
