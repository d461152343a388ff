/* bench/api/bare.c: the HTTP ceiling for the api benchmark.
 *
 * A bare libmicrohttpd server that answers every GET with a fixed small JSON
 * body (about the size of a cluster object) and does nothing else: no routing,
 * no parsing, no ZeroMQ round trip. It uses libmicrohttpd the fastest way
 * measured on this machine: an internal polling thread with epoll and a pool
 * of 4 threads, 1024 connections at most, 30 s idle timeout. dexter-api runs
 * libmicrohttpd differently (its own event loop, one by default: see
 * services/api/api_loop.c), because every answer waits on the scheduler; a
 * bare server run that way would be slower and flatter the ratio. So the
 * ratio dexter-api / bare compares the api with the best HTTP server this
 * library gives here.
 *
 * Usage: bare PORT   (binds 127.0.0.1:PORT, stops on SIGTERM/SIGINT)
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "bench_body.h"


static struct MHD_Response *g_ok;   /* shared, persistent response */
static struct MHD_Response *g_405;

static MHD_Result_t on_request(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_data_size,
                               void **con_cls)
{
    (void)cls; (void)url; (void)version; (void)upload_data;
    /* Answer on the second call, as MHD intends: libmicrohttpd 0.9.75 closes
     * the connection (no keep-alive) when a response is queued on the first
     * call, before it has seen that the request has no body. */
    static int seen;
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        if (*upload_data_size) { *upload_data_size = 0; return MHD_YES; } /* drain */
        return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, g_405);
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, g_ok);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "bare: bad port %s\n", argv[1]);
        return 2;
    }
    g_ok = MHD_create_response_from_buffer(sizeof BODY - 1, (void *)BODY, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(g_ok, "Content-Type", "application/json");
    MHD_add_response_header(g_ok, "Cache-Control", "no-store"); /* as the api */
    static const char ERR[] = "{\"code\":\"METHOD_NOT_ALLOWED\",\"message\":\"GET only\"}";
    g_405 = MHD_create_response_from_buffer(sizeof ERR - 1, (void *)ERR, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(g_405, "Content-Type", "application/json");
    MHD_add_response_header(g_405, "Allow", "GET");

    /* Block the stop signals before MHD starts its threads (they inherit the
     * mask), then wait for one in main: no handler, no race. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* The fastest plain libmicrohttpd set-up here (bench/README.md). */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
                                            on_request, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)4,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                                            MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bare: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    fprintf(stderr, "bare: listening on 127.0.0.1:%d\n", port);
    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(g_ok);
    MHD_destroy_response(g_405);
    return 0;
}
