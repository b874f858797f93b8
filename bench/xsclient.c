/*
 * xsclient.c - the benchmark client, used unchanged against xenstored-sim
 * and against C xenstored, so that both daemons see the same requests from
 * the same (fast) client. Throughput modes go through libxenstore, one
 * request at a time, as a real toolstack does; the watch fan-out and the
 * idle-connection holder speak the wire protocol on raw sockets so that a
 * thousand connections cost one thread.
 *
 * The daemon is found through $XENSTORED_PATH. Each mode prints one or more
 * result lines "key=value ..." on stdout; errors go to stderr, exit code 1.
 *
 *   write N PREFIX            N WRITEs of PREFIX/<i>           -> secs=
 *   read N PREFIX             N READs of PREFIX/<i>            -> secs=
 *   dir PATH COUNT            COUNT xs_directory(PATH) calls   -> secs= entries=
 *   rm PATH                   one RM                           -> secs=
 *   populate N FAN PREFIX     N nodes PREFIX/d<i/FAN>/n<i%FAN>, 16-byte values
 *   tx N PREFIX               N x (TRANSACTION_START, 5 WRITEs, commit)
 *                                                              -> secs= retries=
 *   mixed CLIENTS OPS PREFIX  CLIENTS threads with a handle each, OPS requests
 *                             each (3 READs to 1 WRITE)        -> secs= ops=
 *   watchfan CONNS PATH RUNS  CONNS raw connections watch PATH; then RUNS
 *                             times one WRITE of PATH, timed until every
 *                             connection has its event        -> one secs= per run
 *   fill N FAN PREFIX         as populate, but on a raw connection with up to
 *                             64 requests in flight: set-up, not a measure
 *   hold CONNS                CONNS raw connections, each with one watch;
 *                             prints "ready", waits for EOF on stdin, then
 *                             checks each still answers      -> alive=
 *   lu BINARY RUNS            live-update -f BINARY, then -s -t 60, timed
 *                             until OK and until the next READ is answered;
 *                             meanwhile another connection keeps READing, and
 *                             its longest wait for a reply is the pause the
 *                             other clients saw    -> ok= next= gap= per run
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

enum { T_READ = 2, T_WATCH = 4, T_WRITE = 11, T_WATCH_EVENT = 15, T_ERROR = 16 };

struct hdr {
    uint32_t type, req_id, tx_id, len;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "xsclient: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
    exit(1);
}

static struct xs_handle *xopen(void)
{
    struct xs_handle *h = xs_open(0);

    if (!h)
        die("xs_open", getenv("XENSTORED_PATH"));
    return h;
}

/* --- libxenstore modes --------------------------------------------------- */

static int cmd_write(int n, const char *prefix)
{
    struct xs_handle *h = xopen();
    char path[256], val[32];
    double t0 = now();

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%d", prefix, i);
        int len = snprintf(val, sizeof(val), "value-%d", i);
        if (!xs_write(h, XBT_NULL, path, val, len))
            die("write", path);
    }
    printf("secs=%.6f\n", now() - t0);
    xs_close(h);
    return 0;
}

static int cmd_read(int n, const char *prefix)
{
    struct xs_handle *h = xopen();
    char path[256];
    unsigned int len;
    double t0 = now();

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%d", prefix, i);
        char *v = xs_read(h, XBT_NULL, path, &len);
        if (!v)
            die("read", path);
        free(v);
    }
    printf("secs=%.6f\n", now() - t0);
    xs_close(h);
    return 0;
}

static int cmd_dir(const char *path, int count)
{
    struct xs_handle *h = xopen();
    unsigned int num = 0;
    double t0 = now();

    for (int i = 0; i < count; i++) {
        char **e = xs_directory(h, XBT_NULL, path, &num);
        if (!e)
            die("directory", path);
        free(e);
    }
    printf("secs=%.6f entries=%u\n", now() - t0, num);
    xs_close(h);
    return 0;
}

static int cmd_rm(const char *path)
{
    struct xs_handle *h = xopen();
    double t0 = now();

    if (!xs_rm(h, XBT_NULL, path))
        die("rm", path);
    printf("secs=%.6f\n", now() - t0);
    xs_close(h);
    return 0;
}

static int cmd_populate(int n, int fan, const char *prefix)
{
    struct xs_handle *h = xopen();
    char path[256], val[32];
    double t0 = now();

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/d%d/n%d", prefix, i / fan, i % fan);
        snprintf(val, sizeof(val), "%016d", i);
        if (!xs_write(h, XBT_NULL, path, val, 16))
            die("write", path);
    }
    printf("secs=%.6f\n", now() - t0);
    xs_close(h);
    return 0;
}

static int cmd_tx(int n, const char *prefix)
{
    struct xs_handle *h = xopen();
    char path[256], val[32];
    int retries = 0;
    double t0 = now();

    for (int i = 0; i < n; i++) {
        for (;;) {
            xs_transaction_t t = xs_transaction_start(h);
            if (t == XBT_NULL)
                die("transaction_start", prefix);
            for (int k = 0; k < 5; k++) {
                snprintf(path, sizeof(path), "%s/%d", prefix, k);
                int len = snprintf(val, sizeof(val), "tx-%d-%d", i, k);
                if (!xs_write(h, t, path, val, len))
                    die("write in transaction", path);
            }
            if (xs_transaction_end(h, t, false))
                break;
            if (errno != EAGAIN)
                die("transaction_end", prefix);
            retries++;
        }
    }
    printf("secs=%.6f retries=%d\n", now() - t0, retries);
    xs_close(h);
    return 0;
}

struct mixed_arg {
    int id, ops;
    const char *prefix;
    struct xs_handle *h;
    pthread_barrier_t *start;
};

static void *mixed_thread(void *p)
{
    struct mixed_arg *a = p;
    char path[256], val[32];
    unsigned int len;

    pthread_barrier_wait(a->start);
    for (int i = 0; i < a->ops; i++) {
        snprintf(path, sizeof(path), "%s/c%d/%d", a->prefix, a->id, i % 100);
        if (i % 4 == 0) {
            int vlen = snprintf(val, sizeof(val), "v%d", i);
            if (!xs_write(a->h, XBT_NULL, path, val, vlen))
                die("write", path);
        } else {
            char *v = xs_read(a->h, XBT_NULL, path, &len);
            if (!v)
                die("read", path);
            free(v);
        }
    }
    return NULL;
}

static int cmd_mixed(int clients, int ops, const char *prefix)
{
    pthread_t th[256];
    struct mixed_arg args[256];
    pthread_barrier_t start;
    char path[256];

    if (clients < 1 || clients > 256)
        clients = 16;
    pthread_barrier_init(&start, NULL, clients + 1);
    for (int c = 0; c < clients; c++) {
        args[c] = (struct mixed_arg){ c, ops, prefix, xopen(), &start };
        /* every path exists before the clock starts: reads never miss */
        for (int i = 0; i < 100; i++) {
            snprintf(path, sizeof(path), "%s/c%d/%d", prefix, c, i);
            if (!xs_write(args[c].h, XBT_NULL, path, "init", 4))
                die("write", path);
        }
        pthread_create(&th[c], NULL, mixed_thread, &args[c]);
    }
    double t0 = now();
    pthread_barrier_wait(&start);
    for (int c = 0; c < clients; c++)
        pthread_join(th[c], NULL);
    printf("secs=%.6f ops=%d\n", now() - t0, clients * ops);
    for (int c = 0; c < clients; c++)
        xs_close(args[c].h);
    return 0;
}

struct probe {
    struct xs_handle *h;
    volatile int stop;
    double longest;
};

/* READs in a loop until told to stop; keeps the longest wait for a reply. */
static void *probe_thread(void *p)
{
    struct probe *pr = p;

    while (!pr->stop) {
        unsigned int len;
        double t0 = now();
        char *v = xs_read(pr->h, XBT_NULL, "/tool/xenstored", &len);

        if (!v)
            die("probe read during live update", "/tool/xenstored");
        free(v);
        if (now() - t0 > pr->longest)
            pr->longest = now() - t0;
    }
    return NULL;
}

static int cmd_lu(const char *binary, int runs)
{
    struct xs_handle *h = xopen();
    char arg[4096];
    struct probe pr = { .h = xopen() };
    pthread_t probe;

    for (int run = 0; run < runs; run++) {
        unsigned int vlen;
        int len = snprintf(arg, sizeof(arg), "-f%c%s", 0, binary) + 1;
        char *ret = xs_control_command(h, "live-update", arg, len);

        if (!ret || strcmp(ret, "OK")) {
            fprintf(stderr, "xsclient: live-update -f: %s\n", ret ? ret : strerror(errno));
            return 1;
        }
        free(ret);
        len = 0;
        len += sprintf(arg + len, "-s") + 1;
        len += sprintf(arg + len, "-t") + 1;
        len += sprintf(arg + len, "60") + 1;
        pr.stop = 0;
        pr.longest = 0;
        if (pthread_create(&probe, NULL, probe_thread, &pr))
            die("pthread_create", NULL);
        double t0 = now();
        ret = xs_control_command(h, "live-update", arg, len);
        while (ret && !strcmp(ret, "BUSY")) { /* oxenstored-style asynchronous update */
            free(ret);
            ret = xs_control_command(h, "live-update", arg, len);
        }
        double ok = now() - t0;
        pr.stop = 1;
        pthread_join(probe, NULL);
        if (!ret || strcmp(ret, "OK")) {
            fprintf(stderr, "xsclient: live-update -s: %s\n", ret ? ret : strerror(errno));
            return 1;
        }
        free(ret);
        char *v = xs_read(h, XBT_NULL, "/tool/xenstored", &vlen);
        double next = now() - t0;
        if (!v)
            die("read after live update", "/tool/xenstored");
        free(v);
        printf("ok=%.6f next=%.6f gap=%.6f\n", ok, next, pr.longest);
        fflush(stdout);
    }
    xs_close(pr.h);
    xs_close(h);
    return 0;
}

/* --- raw wire-protocol connections ---------------------------------------- */

static int raw_connect(void)
{
    const char *path = getenv("XENSTORED_PATH");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (!path || fd < 0)
        die("socket", path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect", path);
    return fd;
}

static void full_write(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write to daemon", NULL);
        p += n;
        len -= n;
    }
}

static void full_read(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ECONNRESET;
            die("read from daemon", NULL);
        }
        p += n;
        len -= n;
    }
}

/* Sends one request: the NUL-terminated string a, then lb raw bytes of b. */
static void send_request(int fd, uint32_t type, uint32_t req_id, const char *a, const char *b, size_t lb)
{
    char msg[sizeof(struct hdr) + 1024];
    size_t la = strlen(a) + 1;
    struct hdr h = { type, req_id, 0, la + lb };

    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), a, la);
    if (b)
        memcpy(msg + sizeof(h) + la, b, lb);
    full_write(fd, msg, sizeof(h) + la + lb);
}

/* Reads one whole message; returns its type. */
static uint32_t recv_msg(int fd, char *payload, size_t cap)
{
    struct hdr h;

    full_read(fd, &h, sizeof(h));
    if (h.len > cap) {
        errno = EMSGSIZE;
        die("reply too long", NULL);
    }
    full_read(fd, payload, h.len);
    return h.type;
}

/* WATCH on a fresh raw connection: waits for both the reply and the initial event. */
static int watching_connection(const char *path, const char *token)
{
    char buf[4096];
    int fd = raw_connect(), got_reply = 0, got_event = 0;

    send_request(fd, T_WATCH, 1, path, token, strlen(token) + 1);
    while (!got_reply || !got_event) {
        uint32_t type = recv_msg(fd, buf, sizeof(buf));
        if (type == T_WATCH_EVENT)
            got_event = 1;
        else if (type == T_WATCH)
            got_reply = 1;
        else {
            errno = EPROTO;
            die("WATCH refused", path);
        }
    }
    return fd;
}

static int cmd_watchfan(int conns, const char *path, int runs)
{
    struct xs_handle *h = xopen();
    int *fds = calloc(conns, sizeof(int));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event *evs = calloc(conns, sizeof(*evs));
    char buf[4096];

    if (!xs_write(h, XBT_NULL, path, "0", 1))
        die("write", path);
    for (int i = 0; i < conns; i++) {
        fds[i] = watching_connection(path, "fan");
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    for (int run = 0; run < runs; run++) {
        char val[16];
        int len = snprintf(val, sizeof(val), "%d", run + 1), pending = conns;
        double t0 = now();

        if (!xs_write(h, XBT_NULL, path, val, len))
            die("write", path);
        while (pending > 0) {
            int n = epoll_wait(ep, evs, conns, 10000);
            if (n <= 0) {
                fprintf(stderr, "xsclient: %d of %d watch events missing\n", pending, conns);
                return 1;
            }
            /* one event per connection: a readable socket holds exactly it */
            for (int k = 0; k < n; k++) {
                if (recv_msg(fds[evs[k].data.u32], buf, sizeof(buf)) == T_WATCH_EVENT)
                    pending--;
            }
        }
        printf("secs=%.6f\n", now() - t0);
        fflush(stdout);
    }
    for (int i = 0; i < conns; i++)
        close(fds[i]);
    xs_close(h);
    return 0;
}

static int cmd_fill(int n, int fan, const char *prefix)
{
    enum { WINDOW = 64 };
    int fd = raw_connect(), sent = 0, answered = 0;
    char path[256], val[32], buf[4096];
    double t0 = now();

    while (answered < n) {
        while (sent < n && sent - answered < WINDOW) {
            snprintf(path, sizeof(path), "%s/d%d/n%d", prefix, sent / fan, sent % fan);
            snprintf(val, sizeof(val), "%016d", sent);
            send_request(fd, T_WRITE, sent, path, val, 16);
            sent++;
        }
        if (recv_msg(fd, buf, sizeof(buf)) == T_ERROR) {
            fprintf(stderr, "xsclient: fill: WRITE failed: %s\n", buf);
            return 1;
        }
        answered++;
    }
    printf("secs=%.6f\n", now() - t0);
    close(fd);
    return 0;
}

static int cmd_hold(int conns)
{
    int *fds = calloc(conns, sizeof(int));
    char path[64], buf[4096];
    int alive = 0;

    for (int i = 0; i < conns; i++) {
        snprintf(path, sizeof(path), "/hold/c%d", i);
        fds[i] = watching_connection(path, "hold");
    }
    printf("ready\n");
    fflush(stdout);
    while (read(0, buf, sizeof(buf)) > 0)
        ;
    for (int i = 0; i < conns; i++) {
        send_request(fds[i], T_READ, 2, "/tool/xenstored", NULL, 0);
        if (recv_msg(fds[i], buf, sizeof(buf)) != T_ERROR)
            alive++;
        close(fds[i]);
    }
    printf("alive=%d\n", alive);
    return 0;
}

int main(int argc, char **argv)
{
    const char *m = argc > 1 ? argv[1] : "";

    if (!strcmp(m, "write") && argc == 4)
        return cmd_write(atoi(argv[2]), argv[3]);
    if (!strcmp(m, "read") && argc == 4)
        return cmd_read(atoi(argv[2]), argv[3]);
    if (!strcmp(m, "dir") && argc == 4)
        return cmd_dir(argv[2], atoi(argv[3]));
    if (!strcmp(m, "rm") && argc == 3)
        return cmd_rm(argv[2]);
    if (!strcmp(m, "populate") && argc == 5)
        return cmd_populate(atoi(argv[2]), atoi(argv[3]), argv[4]);
    if (!strcmp(m, "tx") && argc == 4)
        return cmd_tx(atoi(argv[2]), argv[3]);
    if (!strcmp(m, "mixed") && argc == 5)
        return cmd_mixed(atoi(argv[2]), atoi(argv[3]), argv[4]);
    if (!strcmp(m, "watchfan") && argc == 5)
        return cmd_watchfan(atoi(argv[2]), argv[3], atoi(argv[4]));
    if (!strcmp(m, "fill") && argc == 5)
        return cmd_fill(atoi(argv[2]), atoi(argv[3]), argv[4]);
    if (!strcmp(m, "hold") && argc == 3)
        return cmd_hold(atoi(argv[2]));
    if (!strcmp(m, "lu") && argc == 4)
        return cmd_lu(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: see the comment at the top of xsclient.c\n");
    return 2;
}
