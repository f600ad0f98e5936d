/* clock_gettime: time comes from the host (untrusted, range-checked by the shim). */
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec a, b, r;
    if (clock_gettime(CLOCK_MONOTONIC, &a) != 0) return 1;
    if (clock_gettime(CLOCK_MONOTONIC, &b) != 0) return 1;
    if (clock_gettime(CLOCK_REALTIME, &r) != 0) return 1;
    int mono_ok = (b.tv_sec > a.tv_sec) || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec);
    printf("monotonic %s\n", mono_ok ? "ok" : "BACKWARDS");
    printf("realtime after 2020: %s\n", r.tv_sec > 1577836800 ? "yes" : "no");
    printf("nsec in range: %s\n", (r.tv_nsec >= 0 && r.tv_nsec < 1000000000) ? "yes" : "no");
    return mono_ok ? 0 : 1;
}
