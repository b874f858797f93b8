/*
 * echo.c - the round-trip floor on the C side: a server that answers every
 * request frame at once with a fixed payload, doing nothing else, in the
 * way C xenstored does its I/O (poll, read, one write per reply). Compared
 * with src/bench/echo-server.ts it shows what the I/O path costs a Node
 * daemon before any XenStore work.
 *
 *   echo SOCKET PAYLOAD_BYTES     prints "ready", serves one client at a time
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { HEADER = 16, PAYLOAD_MAX = 4096 };

static void serve(int fd, const char *reply, uint32_t reply_len)
{
    static char in[2 * (HEADER + PAYLOAD_MAX)];
    static char out[HEADER + PAYLOAD_MAX];
    size_t have = 0;

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (poll(&p, 1, -1) < 0)
            return;
        ssize_t n = read(fd, in + have, sizeof(in) - have);
        if (n <= 0)
            return;
        have += n;
        for (;;) {
            uint32_t h[4];

            if (have < HEADER)
                break;
            memcpy(h, in, HEADER);
            size_t frame = HEADER + h[3];
            if (h[3] > PAYLOAD_MAX)
                return;
            if (have < frame)
                break;
            h[3] = reply_len;
            memcpy(out, h, HEADER);
            memcpy(out + HEADER, reply, reply_len);
            if (write(fd, out, HEADER + reply_len) != (ssize_t)(HEADER + reply_len))
                return;
            memmove(in, in + frame, have - frame);
            have -= frame;
        }
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    uint32_t reply_len = argc == 3 ? (uint32_t)atoi(argv[2]) : 0;
    char *reply = malloc(reply_len + 1);

    if (argc != 3 || reply_len == 0 || reply_len > PAYLOAD_MAX) {
        fprintf(stderr, "usage: echo SOCKET PAYLOAD_BYTES (1..4096)\n");
        return 2;
    }
    memset(reply, 'x', reply_len);
    reply[reply_len - 1] = 0;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    unlink(argv[1]);
    if (bind(listener, (struct sockaddr *)&sa, sizeof(sa)) || listen(listener, 16)) {
        perror("echo: bind/listen");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(listener, NULL, NULL);

        if (fd < 0)
            return 1;
        serve(fd, reply, reply_len);
        close(fd);
    }
}
