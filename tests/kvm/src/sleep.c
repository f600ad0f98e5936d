/* Time in the Keep: nanosleep(100 ms) is slept in the host and CLOCK_MONOTONIC
 * (extrapolated with the TSC between host readings) sees it; 100,000 reads never
 * go backwards. Prints three ok lines. */
#include <stdio.h>
#include <time.h>

static long long ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    long long a = ns();
    struct timespec req = {0, 100000000};
    if (nanosleep(&req, 0) != 0) return 1;
    long long b = ns();
    printf("slept: %s\n", (b - a >= 100000000LL && b - a < 2000000000LL) ? "ok" : "WRONG");
    long long prev = ns(), backwards = 0;
    for (int i = 0; i < 100000; i++) {
        long long t = ns();
        if (t < prev) backwards++;
        prev = t;
    }
    printf("monotonic: %s\n", backwards == 0 ? "ok" : "BACKWARDS");
    long long c = ns();
    req.tv_nsec = 20000000;
    nanosleep(&req, 0);
    long long d = ns();
    printf("advances: %s\n", (d - c >= 20000000LL && d - c < 2000000000LL) ? "ok" : "WRONG");
    return 0;
}
