/* getrandom: served inside the shim from RDRAND/RDSEED. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int main(void) {
    unsigned char a[64], b[64], z[64] = {0};
    if (getrandom(a, sizeof a, 0) != sizeof a) { puts("short"); return 1; }
    if (getrandom(b, sizeof b, 0) != sizeof b) { puts("short"); return 1; }
    printf("nonzero: %s\n", memcmp(a, z, 64) ? "yes" : "no");
    printf("differ: %s\n", memcmp(a, b, 64) ? "yes" : "no");
    return 0;
}
