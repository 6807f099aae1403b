/*
 * A `floe connect`-like C program on floe's socket-owning peer (FloePeer): floe opens
 * the sockets and runs ICE on its own thread; this program only carries signalling
 * (JSON lines over two files, e.g. named pipes: the format of docs/connect.md, so the
 * other side can be `floe connect --signal files:OUT,IN`) and data.
 *
 * usage: peer_chat offer|answer SIGNAL_IN SIGNAL_OUT MESSAGE
 *
 * It sends MESSAGE as one datagram once connected, prints every datagram it receives as
 * "received: ...", and exits 0 once it has sent and received, 1 on failure or after
 * 10 seconds.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <floe.h>

static FILE *signal_out;
static atomic_int received;

/* floe's thread: a signalling message for the other side. */
static void on_signal(void *user, const char *line) {
    (void)user;
    fprintf(signal_out, "%s\n", line);
    fflush(signal_out);
}

/* floe's thread: a datagram from the other side. */
static void on_data(void *user, const uint8_t *data, size_t len) {
    (void)user;
    printf("received: %.*s\n", (int)len, (const char *)data);
    fflush(stdout);
    atomic_store(&received, 1);
}

static void on_state(void *user, FloeConnectionState state) {
    (void)user;
    if (state == FLOE_CONNECTION_STATE_FAILED) fprintf(stderr, "peer_chat: connection failed\n");
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[1], "offer") != 0 && strcmp(argv[1], "answer") != 0)) {
        fprintf(stderr, "usage: %s offer|answer SIGNAL_IN SIGNAL_OUT MESSAGE\n", argv[0]);
        return 2;
    }
    /* Open the output before the input: `floe connect` opens both at once. */
    signal_out = fopen(argv[3], "w");
    int in = open(argv[2], O_RDONLY);
    if (!signal_out || in < 0) {
        perror("peer_chat: signalling files");
        return 1;
    }

    FloePeerConfig config;
    memset(&config, 0, sizeof config);
    config.offerer = strcmp(argv[1], "offer") == 0;
    FloeAddr bind;
    floe_addr_parse("127.0.0.1:0", &bind);
    config.bind = &bind;
    config.bind_count = 1;
    config.connect_timeout_ms = 10000;
    config.on_signal = on_signal;
    config.on_data = on_data;
    config.on_state = on_state;
    FloePeer *peer = floe_peer_new(&config);
    if (!peer) {
        fprintf(stderr, "peer_chat: %s\n", floe_last_error());
        return 1;
    }

    char buf[65536];
    size_t have = 0;
    int sent = 0, status = 1;
    double deadline = seconds() + 10.0;
    while (seconds() < deadline) {
        struct pollfd p = {in, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
            ssize_t n = read(in, buf + have, sizeof buf - 1 - have);
            if (n > 0) {
                have += (size_t)n;
                buf[have] = '\0';
                char *start = buf, *nl;
                while ((nl = strchr(start, '\n')) != NULL) {
                    *nl = '\0';
                    if (*start && floe_peer_handle_signal(peer, start) != FLOE_RESULT_OK)
                        fprintf(stderr, "peer_chat: bad signalling: %s\n", floe_last_error());
                    start = nl + 1;
                }
                have = (size_t)(buf + have - start);
                memmove(buf, start, have);
            } else if (n == 0) {
                /* The other side closed its end; keep waiting for data. */
                close(in);
                in = -1;
            }
        }
        if (!sent && floe_peer_wait(peer, 0) == FLOE_RESULT_OK) {
            const char *msg = argv[4];
            if (floe_peer_send(peer, (const uint8_t *)msg, strlen(msg)) == FLOE_RESULT_OK) sent = 1;
        }
        if (sent && atomic_load(&received)) {
            FloePeerStats stats;
            if (floe_peer_stats(peer, &stats) == FLOE_RESULT_OK && stats.has_selected) {
                char l[48], r[48];
                floe_addr_format(&stats.selected.local, l, sizeof l);
                floe_addr_format(&stats.selected.remote, r, sizeof r);
                fprintf(stderr, "peer_chat: path %s -> %s, %llu bytes out, %llu in\n", l, r,
                        (unsigned long long)stats.bytes_sent,
                        (unsigned long long)stats.bytes_received);
            }
            status = 0;
            break;
        }
        if (in < 0) usleep(20000);
    }
    if (status != 0) fprintf(stderr, "peer_chat: no exchange within 10 s (%s)\n", floe_last_error());
    floe_peer_free(peer);
    if (in >= 0) close(in);
    fclose(signal_out);
    return status;
}
