/* read: stdin comes from the host through the call block. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char buf[4096];
    ssize_t n;
    long total = 0;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        if (write(1, buf, n) != n) return 1;
        total += n;
    }
    printf("\n%ld bytes\n", total);
    return n < 0 ? 1 : 0;
}
