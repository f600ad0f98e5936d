/* stdout throughput: 16 MiB in 64 KiB writes (one exit per 65,280-byte block in the Keep). */
#include <string.h>
#include <unistd.h>

int main(void) {
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 256; i++) {
        size_t done = 0;
        while (done < sizeof buf) {
            ssize_t n = write(1, buf + done, sizeof buf - done);
            if (n <= 0) return 1;
            done += (size_t)n;
        }
    }
    return 0;
}
