/* A fault: a store to an unmapped address. The Keep stops with a clear report. */
#include <stdio.h>

int main(void) {
    puts("before");
    fflush(stdout);
    *(volatile int *)0x10 = 1;
    puts("after");
    return 0;
}
