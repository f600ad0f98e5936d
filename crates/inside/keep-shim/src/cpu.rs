//! Small CPU helpers: CPUID, RDRAND/RDSEED, the FS base, halting, and the jump
//! into the payload. (Descriptor tables and syscall MSRs are set by the VMM; the
//! exception and flush paths are in `entry`.)

use core::arch::asm;

use crate::global::Global;

/// Whether the syscall path saves extended state with XSAVE (else FXSAVE).
pub static XSAVE_ENABLED: Global<bool> = Global::new(false);

pub fn cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// Sets the FS base (arch_prctl(ARCH_SET_FS)) with WRFSBASE, which user mode may
/// use (PVM runs the guest with CR4.FSGSBASE set).
pub fn set_fs_base(value: u64) {
    // SAFETY: only the FS base changes; the shim itself does not use FS.
    unsafe { asm!("wrfsbase {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// 64 random bits from RDRAND (falling back to RDSEED), or None if both fail.
pub fn random_u64() -> Option<u64> {
    for _ in 0..32 {
        let (v, ok): (u64, u8);
        // SAFETY: RDRAND only writes its output register and CF.
        unsafe {
            asm!("rdrand {}", "setc {}", out(reg) v, out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(v);
        }
    }
    for _ in 0..32 {
        let (v, ok): (u64, u8);
        // SAFETY: RDSEED only writes its output register and CF.
        unsafe {
            asm!("rdseed {}", "setc {}", out(reg) v, out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(v);
        }
    }
    None
}

/// XCR0, the state components XSAVE manages (XGETBV works in user mode once the
/// OS enabled XSAVE; only called then).
pub fn xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV(0) reads a register; no memory or stack effects.
    unsafe { asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC reads a counter; no memory or stack effects.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Whether the TSC ticks at a constant rate in every state (CPUID
/// 0x8000_0007 EDX bit 8, "invariant TSC").
pub fn invariant_tsc() -> bool {
    cpuid(0x8000_0000, 0)[0] >= 0x8000_0007 && cpuid(0x8000_0007, 0)[3] & (1 << 8) != 0
}

pub fn halt_forever() -> ! {
    loop {
        // SAFETY: hlt stops the vCPU (an exit to the VMM), nothing else.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}

/// Jumps to the payload's entry with its initial stack; registers cleared as the
/// Linux ABI expects (rdx = 0: no function for atexit).
pub fn enter_payload(entry: u64, stack: u64) -> ! {
    // SAFETY: the payload's segments and stack are mapped (elf::load,
    // elf::initial_stack); it runs at the shim's privilege (see the architecture
    // notes: under PVM a user-mode syscall does not change privilege).
    unsafe {
        asm!(
            "mov rsp, {stack}",
            "xor eax, eax", "xor ebx, ebx", "xor ecx, ecx", "xor edx, edx", "xor esi, esi", "xor edi, edi",
            "xor ebp, ebp", "xor r8d, r8d", "xor r9d, r9d", "xor r10d, r10d", "xor r11d, r11d",
            "xor r12d, r12d", "xor r13d, r13d", "xor r14d, r14d",
            "jmp r15",
            stack = in(reg) stack,
            in("r15") entry,
            options(noreturn)
        )
    }
}
