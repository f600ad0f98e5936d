/* Spins forever without a syscall: only the VMM's limits stop it. */
.globl _start
_start:
    jmp _start
