/* uname, getpid, ioctl(TIOCGWINSZ) on stdout (not a terminal here). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname u;
    if (uname(&u) != 0) return 1;
    printf("sysname=%s machine=%s\n", u.sysname, u.machine);
    printf("pid positive: %s\n", getpid() > 0 ? "yes" : "no");
    struct winsize w;
    int r = ioctl(1, TIOCGWINSZ, &w);
    printf("winsize: %d errno %s\n", r, r == 0 ? "-" : (errno == ENOTTY ? "ENOTTY" : "other"));
    return 0;
}
