/* Synchronous faults as signals (what wasmtime's signal-based traps need):
 * sigaction with SA_SIGINFO and SA_ONSTACK, sigaltstack, SIGSEGV from a guard page
 * in a large PROT_NONE reservation (si_addr, si_code), SIGILL from ud2 and SIGFPE
 * from a division by zero, a handler that changes the interrupted registers and
 * returns through rt_sigreturn, extended state restored after the handler, and
 * siglongjmp out of a handler. Every line is compared with a native run. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

static sigjmp_buf jump;
static volatile void *fault_addr;
static volatile int fault_code, fault_signo, handler_on_alt, alt_flags_in_handler;
static char altstack[64 * 1024];

static void on_fault(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    char here;
    fault_signo = sig;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    handler_on_alt = &here >= altstack && &here < altstack + sizeof altstack;
    stack_t cur;
    sigaltstack(NULL, &cur);
    alt_flags_in_handler = cur.ss_flags;
    siglongjmp(jump, 1);
}

/* SIGILL: skip the 2-byte ud2 and hand a value back in rax. */
static void on_ill(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    fault_signo = sig;
    fault_code = info->si_code;
    fault_addr = info->si_addr;
    if ((uintptr_t)info->si_addr != (uintptr_t)uc->uc_mcontext.gregs[REG_RIP])
        fault_code = -1;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
    uc->uc_mcontext.gregs[REG_RAX] = 42;
    /* Clobber the extended state: the interrupted code's must come back. */
    volatile double d = 1.5;
    for (int i = 0; i < 8; i++)
        d = d * 3.25 + i;
    __asm__ volatile("pxor %%xmm0, %%xmm0\n\tpcmpeqd %%xmm1, %%xmm1" ::: "xmm0", "xmm1");
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0)
        perror("sigaction");
}

int main(void) {
    /* sigaltstack: none at first, then ours. */
    stack_t ss, old;
    sigaltstack(NULL, &old);
    printf("altstack initially disabled: %d\n", (old.ss_flags & SS_DISABLE) != 0);
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    ss.ss_flags = 0;
    printf("sigaltstack set: %d\n", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("altstack now: ours %d, flags %d\n", old.ss_sp == altstack && old.ss_size == sizeof altstack,
           old.ss_flags);
    ss.ss_size = 100;
    printf("too small an altstack refused: %d\n", sigaltstack(&ss, NULL) != 0);

    install(SIGSEGV, on_fault, SA_ONSTACK);
    struct sigaction back;
    sigaction(SIGSEGV, NULL, &back);
    printf("sigaction reads back: %d\n", back.sa_sigaction == on_fault && (back.sa_flags & SA_ONSTACK));

    /* A 4 GiB PROT_NONE reservation with 64 KiB made accessible, as wasmtime does. */
    size_t reserve = (size_t)4 << 30;
    unsigned char *mem = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("reserved 4 GiB: %d\n", mem != MAP_FAILED);
    printf("mprotect 64 KiB: %d\n", mprotect(mem, 65536, PROT_READ | PROT_WRITE));
    mem[0] = 7;
    mem[65535] = 9;
    printf("accessible bytes: %d %d\n", mem[0], mem[65535]);

    for (int round = 0; round < 3; round++) {
        volatile unsigned char *guard = mem + 65536 + round * 4096 * 1000;
        if (sigsetjmp(jump, 1) == 0) {
            *guard = 1;
            puts("no fault");
        } else {
            printf("SIGSEGV %d: signo %d, addr ok %d, code %d, on altstack %d, altstack flags %d\n", round,
                   fault_signo, fault_addr == (void *)guard, fault_code, handler_on_alt,
                   alt_flags_in_handler);
        }
    }
    /* Grow: the next 64 KiB become accessible, the fault moves on. */
    printf("grow: %d\n", mprotect(mem + 65536, 65536, PROT_READ | PROT_WRITE));
    mem[65536 + 100] = 5;
    printf("grown byte: %d\n", mem[65536 + 100]);
    if (sigsetjmp(jump, 1) == 0) {
        (void)*(volatile unsigned char *)(mem + 2 * 65536);
        puts("no fault");
    } else {
        printf("SIGSEGV past the growth: addr ok %d, code %d\n", fault_addr == mem + 2 * 65536, fault_code);
    }
    /* An unmapped address: SEGV_MAPERR. */
    if (sigsetjmp(jump, 1) == 0) {
        *(volatile int *)0x10 = 1;
        puts("no fault");
    } else {
        printf("SIGSEGV unmapped: addr ok %d, code %d\n", fault_addr == (void *)0x10, fault_code);
    }
    printf("munmap: %d\n", munmap(mem, reserve));

    /* SIGFPE from an integer division by zero. */
    install(SIGFPE, on_fault, 0);
    volatile int zero = 0;
    if (sigsetjmp(jump, 1) == 0) {
        printf("%d\n", 10 / zero);
    } else {
        printf("SIGFPE: signo %d, code %d, on altstack %d\n", fault_signo, fault_code, handler_on_alt);
    }

    /* SIGILL: the handler edits rip and rax and returns (rt_sigreturn). */
    install(SIGILL, on_ill, 0);
    for (int round = 0; round < 2; round++) {
        uint64_t rax, lo, hi;
        __asm__ volatile(
            "mov $0x1122334455667788, %%rax\n\t"
            "movq %%rax, %%xmm0\n\t"
            "pinsrq $1, %%rax, %%xmm0\n\t"
            "mov $1, %%rax\n\t"
            "ud2\n\t"
            "movq %%xmm0, %1\n\t"
            "pextrq $1, %%xmm0, %2\n\t"
            : "=a"(rax), "=r"(lo), "=r"(hi)
            :
            : "xmm0", "xmm1", "memory");
        printf("SIGILL %d: signo %d, code %d, rax %llu, xmm0 kept %d\n", round, fault_signo, fault_code,
               (unsigned long long)rax, lo == 0x1122334455667788ull && hi == 0x1122334455667788ull);
    }

    /* Back to the default action: the next fault ends the program (checked in
     * fault.c); here only that the action reads back as SIG_DFL. */
    signal(SIGSEGV, SIG_DFL);
    sigaction(SIGSEGV, NULL, &back);
    printf("default again: %d\n", back.sa_handler == SIG_DFL);
    return 0;
}
