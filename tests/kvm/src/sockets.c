/* A preopened listening socket served by the VMM (SOCKET host calls), opened as
 * /.keep/sock/0: getsockname, poll with a timeout, accept4 (peer address),
 * readv/writev over three buffers until EOF (echo; one call moves more than the
 * first buffer), getpeername, fcntl O_NONBLOCK (recv -> EAGAIN),
 * shutdown, close, and an undeclared socket refused. Not run natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void) {
    int l = open("/.keep/sock/0", O_RDONLY | O_CLOEXEC);
    printf("open %d\n", l >= 0);
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    int r = getsockname(l, (struct sockaddr *)&a, &al);
    printf("getsockname %d len %d family %d\n", r, (int)al, a.sin_family);
    struct pollfd p = {l, POLLIN, 0};
    r = poll(&p, 1, 20000);
    printf("poll %d in %d\n", r, (p.revents & POLLIN) != 0);
    al = sizeof a;
    int c = accept4(l, (struct sockaddr *)&a, &al, SOCK_CLOEXEC);
    printf("accept %d len %d loopback %d\n", c >= 0, (int)al, a.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    char buf[300], b1[100], b2[50], b3[150];
    struct iovec in[3] = {{b1, sizeof b1}, {b2, sizeof b2}, {b3, sizeof b3}};
    ssize_t n;
    size_t total = 0;
    int spanning = 0;
    while ((n = readv(c, in, 3)) > 0) {
        struct iovec out[3];
        size_t left = (size_t)n;
        int k = 0;
        for (int i = 0; i < 3 && left > 0; i++, k++) {
            size_t t = in[i].iov_len < left ? in[i].iov_len : left;
            out[k].iov_base = in[i].iov_base;
            out[k].iov_len = t;
            left -= t;
        }
        if (writev(c, out, k) != n) return 3;
        spanning |= n > (ssize_t)sizeof b1;
        total += (size_t)n;
    }
    printf("echoed %zu spanning %d\n", total, spanning);
    al = sizeof a;
    r = getpeername(c, (struct sockaddr *)&a, &al);
    printf("getpeername %d len %d\n", r, (int)al);
    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    printf("nonblock %d\n", (fcntl(c, F_GETFL) & O_NONBLOCK) != 0);
    n = recv(c, buf, sizeof buf, 0);
    printf("recv after eof %zd\n", n);
    printf("shutdown %d\n", shutdown(c, SHUT_WR));
    printf("close %d %d\n", close(c), close(l));
    printf("undeclared %d\n", open("/.keep/sock/9", O_RDONLY) < 0 ? errno : 0);
    return 0;
}
