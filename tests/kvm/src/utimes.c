/* A hostile guest on a writable preopen (argv[1]; in a Keep /.keep/dir/0): it makes
 * a symlink "link" to a host file outside the preopen (argv[2], a host path) and
 * sets times through it with utimensat flags 0 (follow) and AT_SYMLINK_NOFOLLOW.
 * The VMM must refuse the first (EXDEV) and set the second on the link itself.
 * Not meant to run natively (there nothing confines the link). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int d = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) { printf("open dir: %d\n", errno); return 1; }
    printf("symlinkat %d\n", symlinkat(argv[2], d, "link"));
    struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
    errno = 0;
    int r = utimensat(d, "link", ts, 0);
    printf("follow %d %d\n", r, r < 0 ? errno : 0);
    errno = 0;
    r = utimensat(d, "link", ts, AT_SYMLINK_NOFOLLOW);
    printf("nofollow %d %d\n", r, r < 0 ? errno : 0);
    return 0;
}
