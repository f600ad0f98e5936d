/*
 * hello.c - the smallest useful workload.
 *
 * Tests: a plain WASI preview 1 command runs, its stdout reaches the caller, and a
 * return from main is reported as a normal exit.
 * Expected: stdout is exactly "Hello from inside a Keep!\n", stderr is empty,
 * exit code 0.
 */
#include <stdio.h>

int main(void) {
    fputs("Hello from inside a Keep!\n", stdout);
    return 0;
}
