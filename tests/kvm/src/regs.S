/* Registers across a syscall: Linux keeps everything but rax, rcx and r11.
   Fills GPRs and ymm0-ymm15 with patterns, writes "regs\n", then checks them all.
   Exit 0 when preserved; otherwise the number of the first register that changed. */
.globl _start
_start:
    lea pattern(%rip), %rax
    vmovdqu (%rax), %ymm0
    vpaddq %ymm0, %ymm0, %ymm1
    vpaddq %ymm1, %ymm0, %ymm2
    vpaddq %ymm2, %ymm0, %ymm3
    vpaddq %ymm3, %ymm0, %ymm4
    vpaddq %ymm4, %ymm0, %ymm5
    vpaddq %ymm5, %ymm0, %ymm6
    vpaddq %ymm6, %ymm0, %ymm7
    vpaddq %ymm7, %ymm0, %ymm8
    vpaddq %ymm8, %ymm0, %ymm9
    vpaddq %ymm9, %ymm0, %ymm10
    vpaddq %ymm10, %ymm0, %ymm11
    vpaddq %ymm11, %ymm0, %ymm12
    vpaddq %ymm12, %ymm0, %ymm13
    vpaddq %ymm13, %ymm0, %ymm14
    vpaddq %ymm14, %ymm0, %ymm15
    mov $0x1111, %rbx
    mov $0x2222, %rbp
    mov $0x3333, %r12
    mov $0x4444, %r13
    mov $0x5555, %r14
    mov $0x6666, %r15
    mov $0x7777, %r8
    mov $0x8888, %r9
    mov $0x9999, %r10
    mov $1, %eax
    mov $1, %edi
    lea msg(%rip), %rsi
    mov $5, %edx
    syscall
    mov $1, %edi
    cmp $0x1111, %rbx; jne fail
    inc %edi; cmp $0x2222, %rbp; jne fail
    inc %edi; cmp $0x3333, %r12; jne fail
    inc %edi; cmp $0x4444, %r13; jne fail
    inc %edi; cmp $0x5555, %r14; jne fail
    inc %edi; cmp $0x6666, %r15; jne fail
    inc %edi; cmp $0x7777, %r8; jne fail
    inc %edi; cmp $0x8888, %r9; jne fail
    inc %edi; cmp $0x9999, %r10; jne fail
    inc %edi; cmp $5, %rdx; jne fail
    inc %edi; lea msg(%rip), %rax; cmp %rax, %rsi; jne fail
    /* ymm: recompute ymmN = (N+1) * pattern from ymm0 and compare all 256 bits */
    mov $20, %edi
    lea pattern(%rip), %rax
    vmovdqu (%rax), %ymm14
    vpcmpeqq %ymm14, %ymm0, %ymm14; vpmovmskb %ymm14, %eax; cmp $-1, %eax; jne fail
    inc %edi
    vpaddq %ymm0, %ymm0, %ymm14; vpcmpeqq %ymm14, %ymm1, %ymm14; vpmovmskb %ymm14, %eax; cmp $-1, %eax; jne fail
    inc %edi
    vpaddq %ymm1, %ymm0, %ymm14; vpcmpeqq %ymm14, %ymm2, %ymm14; vpmovmskb %ymm14, %eax; cmp $-1, %eax; jne fail
    inc %edi
    vpaddq %ymm12, %ymm0, %ymm14; vpcmpeqq %ymm14, %ymm13, %ymm14; vpmovmskb %ymm14, %eax; cmp $-1, %eax; jne fail
    inc %edi
    vpaddq %ymm13, %ymm0, %ymm14; vpaddq %ymm14, %ymm0, %ymm14; vpcmpeqq %ymm14, %ymm15, %ymm14; vpmovmskb %ymm14, %eax; cmp $-1, %eax; jne fail
    xor %edi, %edi
fail:
    mov $60, %eax
    syscall
msg: .ascii "regs\n"
.balign 32
pattern: .quad 0x0123456789abcdef, 0x1122334455667788, 0x99aabbccddeeff00, 0x0f1e2d3c4b5a6978
