/* What tokio's I/O driver and wasi:sockets need, compared with a native run:
 * eventfd (counter and semaphore modes, EAGAIN when empty), epoll_create1,
 * epoll_ctl ADD/MOD/DEL, epoll_wait edge- and level-triggered on an eventfd, and a
 * socket the program makes itself: socket(NONBLOCK), connect to 127.0.0.1:argv[1]
 * (EINPROGRESS or done), EPOLLOUT, getsockopt(SO_ERROR), setsockopt/getsockopt
 * TCP_NODELAY, send, EPOLLIN when the echo comes back, recv, EAGAIN when drained,
 * getsockname's family, shutdown and close. The test's server echoes 5 bytes. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static int wait_events(int ep, int ms, uint32_t *events) {
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, ms);
    *events = n > 0 ? ev[0].events : 0;
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    uint64_t v;
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    printf("eventfd %d\n", e >= 0);
    v = 3;
    ssize_t w = write(e, &v, 8);
    printf("write %zd\n", w);
    v = 0;
    ssize_t rd = read(e, &v, 8);
    printf("read %zd value %llu\n", rd, (unsigned long long)v);
    rd = read(e, &v, 8);
    printf("read empty %zd errno %d\n", rd, errno);
    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    ssize_t r1 = read(s, &v, 8);
    ssize_t r2 = read(s, &v, 8);
    ssize_t r3 = read(s, &v, 8);
    printf("semaphore reads %zd %zd %zd\n", r1, r2, r3);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll %d\n", ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 7};
    int c1 = epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    int c2 = epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    printf("add %d, again %d errno %d\n", c1, c2, errno);
    uint32_t got;
    printf("wait on empty %d\n", wait_events(ep, 0, &got));
    v = 1;
    write(e, &v, 8);
    int n1 = wait_events(ep, 100, &got);
    printf("wait after write %d in %d\n", n1, (got & EPOLLIN) != 0);
    printf("edge seen once %d\n", wait_events(ep, 0, &got));
    ev.events = EPOLLIN; /* level-triggered: reported while readable */
    printf("mod %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, e, &ev));
    int a = wait_events(ep, 0, &got);
    int b = wait_events(ep, 0, &got);
    printf("level %d %d\n", a, b);
    c1 = epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL);
    c2 = epoll_ctl(ep, EPOLL_CTL_DEL, e, NULL);
    printf("del %d, del again %d errno %d\n", c1, c2, errno);

    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    printf("socket %d\n", c >= 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(c, (struct sockaddr *)&to, sizeof to);
    printf("connect started %d\n", r == 0 || errno == EINPROGRESS);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = 9;
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
    n1 = wait_events(ep, 5000, &got);
    printf("writable %d out %d\n", n1 > 0, (got & EPOLLOUT) != 0);
    int err = -1, one = 1, val = 0;
    socklen_t len = sizeof err;
    c1 = getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len);
    printf("so_error %d %d\n", c1, err);
    printf("nodelay set %d\n", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    len = sizeof val;
    c1 = getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &val, &len);
    printf("nodelay get %d %d\n", c1, val != 0);
    struct sockaddr_in me;
    len = sizeof me;
    c1 = getsockname(c, (struct sockaddr *)&me, &len);
    printf("getsockname %d family %d\n", c1, me.sin_family);
    printf("send %zd\n", send(c, "hello", 5, MSG_NOSIGNAL));
    char buf[16];
    size_t total = 0;
    while (total < 5) {
        if (wait_events(ep, 5000, &got) <= 0) break;
        ssize_t n;
        while ((n = recv(c, buf + total, sizeof buf - total, 0)) > 0) total += (size_t)n;
        if (n < 0 && errno != EAGAIN) break;
    }
    printf("echo %zu %.5s\n", total, buf);
    rd = recv(c, buf, sizeof buf, 0);
    printf("drained %zd errno %d\n", rd, errno);
    c1 = shutdown(c, SHUT_WR);
    c2 = close(c);
    int c3 = close(ep), c4 = close(e), c5 = close(s);
    printf("shutdown %d close %d %d %d %d\n", c1, c2, c3, c4, c5);
    return 0;
}
