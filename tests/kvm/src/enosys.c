/* An unsupported syscall returns ENOSYS (and the shim logs it once). */
#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(void) {
    long r1 = syscall(SYS_getppid);
    int e1 = errno;
    long r2 = syscall(SYS_getppid);
    printf("getppid: %s\n", (r1 == -1 && e1 == ENOSYS && r2 == -1) ? "ENOSYS" : "supported");
    return 0;
}
