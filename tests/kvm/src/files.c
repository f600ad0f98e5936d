/* Preopened directory 0 (argv[1]: its path; in a Keep /.keep/dir/0): open, read,
 * pread, lseek, fstat, getdents64, readlink, mkdirat, write, rename, unlinkat, and
 * escapes refused ("..", an absolute symlink). Expects a.txt ("alpha\n") and a
 * symlink "out" -> /etc/passwd in the directory. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct open_how_ { unsigned long long flags, mode, resolve; };

static int openat2_(int dir, const char *path, int flags) {
    struct open_how_ how = { (unsigned long long)flags, 0, 0x08 /* RESOLVE_BENEATH */ };
    return (int)syscall(437, dir, path, &how, sizeof how);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int d = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) { printf("open dir: %d\n", errno); return 1; }
    int f = openat(d, "a.txt", O_RDONLY);
    char buf[64] = {0};
    ssize_t n = read(f, buf, sizeof buf - 1);
    printf("read %zd %s", n, buf);
    memset(buf, 0, sizeof buf);
    n = pread(f, buf, 3, 2);
    printf("pread %zd %s\n", n, buf);
    printf("lseek %ld\n", (long)lseek(f, 1, SEEK_SET));
    struct stat st;
    int r = fstat(f, &st);
    printf("fstat %d size %ld reg %d\n", r, (long)st.st_size, S_ISREG(st.st_mode));
    r = fstatat(d, ".", &st, 0);
    printf("fstatat %d dir %d\n", r, S_ISDIR(st.st_mode));
    close(f);
    char dents[1024];
    long dn = syscall(SYS_getdents64, d, dents, sizeof dents);
    int count = 0;
    for (long off = 0; off < dn; count++) off += *(unsigned short *)(dents + off + 16);
    printf("getdents entries %d\n", count);
    char link[64] = {0};
    printf("readlink %zd %s\n", readlinkat(d, "out", link, sizeof link - 1), link);
    printf("mkdirat %d\n", mkdirat(d, "made", 0755));
    int w = openat(d, "made/new.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    printf("write %zd\n", write(w, "hello", 5));
    printf("ftruncate %d\n", ftruncate(w, 4));
    close(w);
    printf("rename %d\n", renameat(d, "made/new.txt", d, "made/renamed.txt"));
    printf("unlink %d\n", unlinkat(d, "made/renamed.txt", 0));
    printf("rmdir %d\n", unlinkat(d, "made", AT_REMOVEDIR));
    errno = 0;
    printf("dotdot %d", openat2_(d, "../etc/passwd", O_RDONLY) < 0);
    printf(" %d\n", errno);
    errno = 0;
    printf("symlink out %d", openat2_(d, "out", O_RDONLY) < 0);
    printf(" %d\n", errno);
    return 0;
}
