/*
 * Two floe ICE agents in one C program, each on a loopback UDP socket the program owns.
 * They exchange credentials and candidates in memory (the "signalling"), connect with
 * STUN checks over the sockets, and send one datagram each way through floe_agent_send.
 *
 * The loop is the one every sans-IO floe agent wants (docs/c-api.md):
 *   after any input: send every floe_agent_poll_transmit, handle every floe_agent_poll_event,
 *   then sleep until floe_agent_poll_timeout or a datagram, whichever comes first.
 *
 * Exit status 0 when both got the other's message within 5 seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <floe.h>

typedef struct {
    const char *name;
    FloeAgent *agent;
    int fd;
    FloeAddr local;
    bool connected;
    char got[64];
} Peer;

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void fail(const char *what) {
    fprintf(stderr, "sansio_pair: %s: %s\n", what, floe_last_error());
    exit(1);
}

static FloeAddr from_sockaddr(const struct sockaddr_in *sin) {
    FloeAddr a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    a.port = ntohs(sin->sin_port);
    memcpy(a.ip, &sin->sin_addr, 4);
    return a;
}

static struct sockaddr_in to_sockaddr(const FloeAddr *a) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(a->port);
    memcpy(&sin.sin_addr, a->ip, 4);
    return sin;
}

static void open_peer(Peer *p, const char *name, bool controlling, uint64_t seed) {
    p->name = name;
    p->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(p->fd, (struct sockaddr *)&sin, &len) != 0) {
        perror("socket");
        exit(1);
    }
    p->local = from_sockaddr(&sin);

    FloeAgentConfig config = floe_agent_config_default();
    config.controlling = controlling;
    config.seed = seed;
    p->agent = floe_agent_new(&config, now_us());
    if (!p->agent) fail("floe_agent_new");
    if (floe_agent_add_host(p->agent, now_us(), &p->local, 0) != FLOE_RESULT_OK)
        fail("floe_agent_add_host");
    p->connected = false;
    p->got[0] = '\0';
}

/* Signalling, in memory: the peer's ufrag and pwd. */
static void give_credentials(Peer *from, Peer *to) {
    char *ufrag = floe_agent_local_ufrag(from->agent);
    char *pwd = floe_agent_local_pwd(from->agent);
    if (!ufrag || !pwd) fail("local credentials");
    if (floe_agent_set_remote_credentials(to->agent, ufrag, pwd) != FLOE_RESULT_OK)
        fail("floe_agent_set_remote_credentials");
    floe_string_free(ufrag);
    floe_string_free(pwd);
}

/* Sends everything the agent queued, from the program's socket. */
static void flush(Peer *p) {
    FloeTransmit t;
    while (floe_agent_poll_transmit(p->agent, &t)) {
        if (t.transport != FLOE_TRANSPORT_UDP) continue; /* no TURN streams here */
        struct sockaddr_in to = to_sockaddr(&t.destination);
        if (sendto(p->fd, t.data, t.len, 0, (struct sockaddr *)&to, sizeof to) < 0)
            perror("sendto");
    }
}

/* Events: trickled candidates go to the other peer (signalling), states are noted. */
static void events(Peer *p, Peer *other) {
    FloeEvent e;
    while (floe_agent_poll_event(p->agent, &e)) {
        switch (e.kind) {
        case FLOE_EVENT_KIND_LOCAL_CANDIDATE:
            printf("%s: %s\n", p->name, e.text);
            if (floe_agent_add_remote_candidate(other->agent, now_us(), e.text) != FLOE_RESULT_OK)
                fail("floe_agent_add_remote_candidate");
            break;
        case FLOE_EVENT_KIND_CONNECTION_STATE:
            if (e.connection_state == FLOE_CONNECTION_STATE_CONNECTED ||
                e.connection_state == FLOE_CONNECTION_STATE_COMPLETED)
                p->connected = true;
            if (e.connection_state == FLOE_CONNECTION_STATE_FAILED) {
                fprintf(stderr, "%s: ICE failed\n", p->name);
                exit(1);
            }
            break;
        case FLOE_EVENT_KIND_SELECTED_PAIR: {
            char l[48], r[48];
            floe_addr_format(&e.pair.local, l, sizeof l);
            floe_addr_format(&e.pair.remote, r, sizeof r);
            printf("%s: selected %s -> %s%s\n", p->name, l, r, e.pair.nominated ? " (nominated)" : "");
            break;
        }
        default:
            break;
        }
    }
}

static void receive(Peer *p) {
    uint8_t buf[2048];
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(p->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
    if (n < 0) return;
    FloeAddr remote = from_sockaddr(&from);
    FloeReceived r;
    if (floe_agent_handle_receive(p->agent, now_us(), &p->local, &remote, buf, (size_t)n, &r) !=
        FLOE_RESULT_OK)
        fail("floe_agent_handle_receive");
    if (r.is_data) {
        size_t k = r.len < sizeof p->got - 1 ? r.len : sizeof p->got - 1;
        memcpy(p->got, r.data, k); /* r.data points into buf */
        p->got[k] = '\0';
        printf("%s: received \"%s\"\n", p->name, p->got);
    }
}

static void send_text(Peer *p, const char *text) {
    FloeTransmit t;
    if (floe_agent_send(p->agent, (const uint8_t *)text, strlen(text), &t) != FLOE_RESULT_OK)
        fail("floe_agent_send");
    struct sockaddr_in to = to_sockaddr(&t.destination);
    if (sendto(p->fd, t.data, t.len, 0, (struct sockaddr *)&to, sizeof to) < 0) perror("sendto");
}

int main(void) {
    printf("floe %s\n", floe_version());
    Peer a, b;
    open_peer(&a, "a", true, 1);
    open_peer(&b, "b", false, 2);
    give_credentials(&a, &b);
    give_credentials(&b, &a);

    uint64_t deadline = now_us() + 5000000u;
    bool sent = false;
    while (now_us() < deadline) {
        Peer *peers[2] = {&a, &b};
        for (int i = 0; i < 2; i++) {
            events(peers[i], peers[1 - i]);
            flush(peers[i]);
        }
        if (a.connected && b.connected && !sent) {
            send_text(&a, "hello from a");
            send_text(&b, "hello from b");
            sent = true;
        }
        if (a.got[0] && b.got[0]) break;

        /* Sleep until the earliest timer or a datagram. */
        uint64_t now = now_us(), wake = deadline;
        for (int i = 0; i < 2; i++) {
            uint64_t at;
            if (floe_agent_poll_timeout(peers[i]->agent, &at) && at < wake) wake = at;
        }
        int ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
        struct pollfd fds[2] = {{a.fd, POLLIN, 0}, {b.fd, POLLIN, 0}};
        if (poll(fds, 2, ms) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int i = 0; i < 2; i++)
            if (fds[i].revents & POLLIN) receive(peers[i]);
        now = now_us();
        for (int i = 0; i < 2; i++)
            if (floe_agent_handle_timeout(peers[i]->agent, now) != FLOE_RESULT_OK)
                fail("floe_agent_handle_timeout");
    }

    int ok = strcmp(a.got, "hello from b") == 0 && strcmp(b.got, "hello from a") == 0;
    floe_agent_close(a.agent, now_us());
    floe_agent_close(b.agent, now_us());
    floe_agent_free(a.agent);
    floe_agent_free(b.agent);
    close(a.fd);
    close(b.fd);
    printf(ok ? "ok\n" : "FAILED: no data both ways in 5 s\n");
    return ok ? 0 : 1;
}
