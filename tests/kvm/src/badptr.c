/* Bad user pointers: the shim checks them against the page tables (EFAULT), as Linux does. */
#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

static const char *res(long r) { return r == -1 && errno == EFAULT ? "EFAULT" : "other"; }

int main(void) {
    printf("write: %s\n", res(syscall(SYS_write, 1, (void *)0x10, 5)));
    printf("read: %s\n", res(syscall(SYS_read, 0, (void *)0x10, 5)));
    printf("uname: %s\n", res(syscall(SYS_uname, (void *)0x10)));
    printf("getrandom: %s\n", res(syscall(SYS_getrandom, (void *)0x10, 8, 0)));
    printf("writev: %s\n", res(syscall(SYS_writev, 1, (void *)0x10, 1)));
    return 0;
}
