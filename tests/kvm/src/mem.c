/* brk, mmap, munmap, mprotect, madvise: served inside the shim with no exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <errno.h>

int main(void) {
    /* musl's sbrk only takes 0, so call brk directly. */
    char *b0 = (char *)syscall(SYS_brk, 0);
    if ((char *)syscall(SYS_brk, b0 + (1 << 20)) != b0 + (1 << 20)) { puts("brk grow failed"); return 1; }
    memset(b0, 0x5a, 1 << 20);
    if (((unsigned char *)b0)[(1 << 20) - 1] != 0x5a) { puts("brk memory bad"); return 1; }
    if ((char *)syscall(SYS_brk, b0 + (1 << 19)) != b0 + (1 << 19)) { puts("brk shrink failed"); return 1; }
    puts("brk ok");

    size_t len = 4 << 20;
    unsigned char *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { puts("mmap failed"); return 1; }
    for (size_t i = 0; i < len; i += 4096) if (m[i] != 0) { puts("mmap not zeroed"); return 1; }
    for (size_t i = 0; i < len; i++) m[i] = (unsigned char)i;
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++) sum += m[i];
    printf("mmap sum %lu\n", sum);
    if (mprotect(m, 4096, PROT_READ) != 0) { puts("mprotect failed"); return 1; }
    if (mprotect(m, 4096, PROT_READ | PROT_WRITE) != 0) { puts("mprotect back failed"); return 1; }
    m[0] = 42;
    if (madvise(m + 4096, 4096, MADV_DONTNEED) != 0) { puts("madvise failed"); return 1; }
    printf("after dontneed %d %d\n", m[4096], m[0]);
    if (munmap(m, len) != 0) { puts("munmap failed"); return 1; }
    printf("mprotect unmapped: %s\n", mprotect(m, 4096, PROT_READ) == -1 && errno == ENOMEM ? "ENOMEM" : "other");
    unsigned char *r = mmap(0, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED || mprotect(r, 8192, PROT_READ | PROT_WRITE) != 0) { puts("reserve failed"); return 1; }
    r[0] = 1;
    puts("reserve ok");
    unsigned char *f = mmap((void *)0x200000000, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (f != (void *)0x200000000) { puts("fixed mmap failed"); return 1; }
    f[8191] = 1;
    puts("fixed ok");
    /* malloc goes through brk/mmap in musl */
    char *p[64];
    for (int i = 0; i < 64; i++) { p[i] = malloc(1000 * (i + 1)); memset(p[i], i, 1000 * (i + 1)); }
    for (int i = 0; i < 64; i++) free(p[i]);
    char *big = malloc(8 << 20);
    if (!big) { puts("malloc big failed"); return 1; }
    memset(big, 1, 8 << 20);
    free(big);
    puts("malloc ok");
    return 0;
}
