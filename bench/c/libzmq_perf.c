/*
 * The libzmq side of zmtp-bench's CURVE comparison, written against the system libzmq
 * (which has CURVE through libsodium; the `zmq` crate's bundled libzmq has none). Shaped
 * like libzmq's own perf/local_thr.cpp and perf/remote_thr.cpp: one process per side,
 * zmq_msg_t reused on receive, one message built per send.
 *
 * zmtp-bench compiles it at run time (cc -O2 ... -lzmq) and drives it over a line protocol
 * on stdout: "ENDPOINT <endpoint> <server public key or ->" once bound, "RESULT <...>" at
 * the end.
 *
 *   libzmq_perf thr-recv <size> <count> <curve 0|1>
 *   libzmq_perf thr-send <endpoint> <size> <count> <server key|->
 *   libzmq_perf hs-server <count> <curve 0|1>
 *   libzmq_perf hs-client <endpoint> <count> <server key|->
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static void die(const char *what) {
    fprintf(stderr, "libzmq_perf: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The client's key pair is made once per process (as an application would). */
static char client_public[41], client_secret[41];

static void curve_server(void *s, char *public_out) {
    char secret[41];
    int one = 1;
    if (zmq_curve_keypair(public_out, secret) != 0) die("zmq_curve_keypair");
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) != 0) die("ZMQ_CURVE_SERVER");
    if (zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40) != 0) die("ZMQ_CURVE_SECRETKEY");
}

static void curve_client(void *s, const char *server_key) {
    if (strcmp(server_key, "-") == 0) return;
    if (client_public[0] == 0 && zmq_curve_keypair(client_public, client_secret) != 0)
        die("zmq_curve_keypair");
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, 40) != 0) die("ZMQ_CURVE_SERVERKEY");
    if (zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, client_public, 40) != 0) die("ZMQ_CURVE_PUBLICKEY");
    if (zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, client_secret, 40) != 0) die("ZMQ_CURVE_SECRETKEY");
}

/* Binds to a port the system picks and announces it. */
static void bind_announce(void *s, int curve) {
    char key[41] = "-";
    char ep[256];
    size_t len = sizeof ep;
    if (curve) curve_server(s, key);
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) die("zmq_bind");
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len) != 0) die("ZMQ_LAST_ENDPOINT");
    printf("ENDPOINT %s %s\n", ep, key);
    fflush(stdout);
}

int main(int argc, char **argv) {
    void *ctx = zmq_ctx_new();
    if (!ctx) die("zmq_ctx_new");
    if (argc == 5 && strcmp(argv[1], "thr-recv") == 0) {
        size_t size = strtoull(argv[2], 0, 10);
        long long count = strtoll(argv[3], 0, 10);
        void *s = zmq_socket(ctx, ZMQ_PULL);
        zmq_msg_t msg;
        long long i, start;
        bind_announce(s, atoi(argv[4]));
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, s, 0) < 0) die("zmq_msg_recv");
        start = now_ns();
        for (i = 1; i < count; i++) {
            if (zmq_msg_recv(&msg, s, 0) < 0) die("zmq_msg_recv");
            if (zmq_msg_size(&msg) != size) die("message of the wrong size");
        }
        printf("RESULT %lld\n", now_ns() - start);
        zmq_msg_close(&msg);
        zmq_close(s);
    } else if (argc == 6 && strcmp(argv[1], "thr-send") == 0) {
        size_t size = strtoull(argv[3], 0, 10);
        long long count = strtoll(argv[4], 0, 10), i;
        void *s = zmq_socket(ctx, ZMQ_PUSH);
        char *buf = calloc(1, size + 1);
        curve_client(s, argv[5]);
        if (zmq_connect(s, argv[2]) != 0) die("zmq_connect");
        for (i = 0; i < count; i++) {
            /* As the zmq crate's send(&[u8]) and zmtp-std's send: the body is copied in. */
            if (zmq_send(s, buf, size, 0) < 0) die("zmq_send");
        }
        zmq_close(s);
        free(buf);
    } else if (argc == 4 && strcmp(argv[1], "hs-server") == 0) {
        long long count = strtoll(argv[2], 0, 10), i;
        void *s = zmq_socket(ctx, ZMQ_ROUTER);
        zmq_msg_t id, body;
        bind_announce(s, atoi(argv[3]));
        for (i = 0; i < count; i++) {
            zmq_msg_init(&id);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0) die("recv");
            if (zmq_msg_send(&id, s, ZMQ_SNDMORE) < 0 || zmq_msg_send(&body, s, 0) < 0)
                die("send");
        }
        zmq_close(s);
    } else if (argc == 5 && strcmp(argv[1], "hs-client") == 0) {
        long long count = strtoll(argv[3], 0, 10), i, start = now_ns();
        int zero = 0;
        char reply[8];
        for (i = 0; i < count; i++) {
            /* A new connection each time: connect, handshake, one round trip, close. */
            void *s = zmq_socket(ctx, ZMQ_DEALER);
            zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
            curve_client(s, argv[4]);
            if (zmq_connect(s, argv[2]) != 0) die("zmq_connect");
            if (zmq_send(s, "x", 1, 0) != 1) die("zmq_send");
            if (zmq_recv(s, reply, sizeof reply, 0) != 1) die("zmq_recv");
            zmq_close(s);
        }
        printf("RESULT %lld\n", now_ns() - start);
    } else {
        fprintf(stderr, "usage: see the comment at the top of libzmq_perf.c\n");
        return 2;
    }
    fflush(stdout);
    zmq_ctx_term(ctx);
    return 0;
}
