/* The smallest payload: one write at its first instruction, then exit(0).
   Used to time the boot from the first vCPU instruction to the payload. */
.globl _start
_start:
    mov $1, %eax
    mov $1, %edi
    lea msg(%rip), %rsi
    mov $3, %edx
    syscall
    mov $60, %eax
    xor %edi, %edi
    syscall
msg: .ascii "up\n"
