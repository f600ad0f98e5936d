/* A large output: 2 MiB through stdio (writev batches), then a checksum line. */
#include <stdio.h>

int main(void) {
    unsigned long sum = 0;
    char line[64];
    for (int i = 0; i < 32768; i++) {
        int n = snprintf(line, sizeof line, "%08d abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLM\n", i);
        for (int k = 0; k < n; k++) sum = sum * 31 + (unsigned char)line[k];
        fputs(line, stdout);
    }
    printf("sum %lu\n", sum);
    return 0;
}
