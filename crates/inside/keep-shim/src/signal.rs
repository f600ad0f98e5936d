//! Synchronous faults delivered to the payload as Linux signals, so that the exec
//! can use wasmtime's signal-based traps (guard pages instead of explicit bounds
//! checks) exactly as on the process backend.
//!
//! Path of a fault: the CPU enters the fault stub in `entry` (guest supervisor
//! mode, assembly only). For a fault at a payload address the stub saves every
//! general register, the vector, error code and CR2 into `REGS`, and "returns" to
//! `signal_entry` in user mode on the shim's signal stack. `signal_entry` saves
//! the extended state and calls `deliver`, which builds a Linux `rt_sigframe`
//! (siginfo, ucontext with the registers and the extended state) on the payload's
//! stack, or on its alternate stack for `SA_ONSTACK`, and jumps to the handler.
//! The handler returns to its `sa_restorer`, whose `rt_sigreturn` reloads the
//! (possibly changed) registers from the frame. Faults with no handler, or in the
//! shim itself, stop the Keep with the fault report as before.
//!
//! Only synchronous faults are signals: there are no timers, no other processes
//! and no other threads, so nothing else could send one. `kill` to itself still
//! ends the Keep with 128 + the signal. Signal masks are accepted and ignored: a
//! fault inside a handler is delivered again (as with `SA_NODEFER`).
//!
//! The payload runs inside the Keep and is trusted by it; frames and `ucontext`s
//! are checked anyway (mapped, writable, the extended state sanitised before it
//! is loaded), so a bad frame stops the Keep with a message instead of faulting
//! in the shim.

use core::arch::naked_asm;
use core::mem::offset_of;
use core::ptr::{addr_of, addr_of_mut};

use crate::abi::USER_TOP;
use crate::cpu::XSAVE_ENABLED;
use crate::global::Global;
use crate::hostcall;
use crate::mm;

const EINVAL: i64 = 22;
const EFAULT: i64 = 14;
const ENOMEM: i64 = 12;
const EPERM: i64 = 1;

const SIGTRAP: u64 = 5;
const SIGILL: u64 = 4;
const SIGBUS: u64 = 7;
const SIGFPE: u64 = 8;
const SIGKILL: u64 = 9;
const SIGSEGV: u64 = 11;
const SIGSTOP: u64 = 19;
const NSIG: u64 = 64;

const SIG_IGN: u64 = 1;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
const MINSIGSTKSZ: u64 = 2048;

/// RFLAGS bits a handler or `rt_sigreturn` may set (CF PF AF ZF SF DF OF; not TF,
/// which would single-step into a debug exception, nor AC).
const RFLAGS_USER: u64 = 0x0CD5;
/// Always set: bit 1 (reserved, reads as 1) and IF.
const RFLAGS_FIXED: u64 = 0x0202;

/// General registers plus what the fault stub records, in the order of Linux's
/// `sigcontext` up to `eflags` (so they copy straight into a `ucontext`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Regs {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    rflags: u64,
    vector: u64,
    error: u64,
    cr2: u64,
}

/// Registers of the fault being delivered (written by the fault stub), then of the
/// context to resume (read by `resume`).
pub static mut REGS: Regs = Regs {
    r8: 0,
    r9: 0,
    r10: 0,
    r11: 0,
    r12: 0,
    r13: 0,
    r14: 0,
    r15: 0,
    rdi: 0,
    rsi: 0,
    rbp: 0,
    rbx: 0,
    rdx: 0,
    rax: 0,
    rcx: 0,
    rsp: 0,
    rip: 0,
    rflags: 0,
    vector: 0,
    error: 0,
    cr2: 0,
};

/// Offsets into `Regs` for the assembly in `entry` and here.
pub mod off {
    use super::Regs;
    use core::mem::offset_of;
    pub const R8: usize = offset_of!(Regs, r8);
    pub const R9: usize = offset_of!(Regs, r9);
    pub const R10: usize = offset_of!(Regs, r10);
    pub const R11: usize = offset_of!(Regs, r11);
    pub const R12: usize = offset_of!(Regs, r12);
    pub const R13: usize = offset_of!(Regs, r13);
    pub const R14: usize = offset_of!(Regs, r14);
    pub const R15: usize = offset_of!(Regs, r15);
    pub const RDI: usize = offset_of!(Regs, rdi);
    pub const RSI: usize = offset_of!(Regs, rsi);
    pub const RBP: usize = offset_of!(Regs, rbp);
    pub const RBX: usize = offset_of!(Regs, rbx);
    pub const RDX: usize = offset_of!(Regs, rdx);
    pub const RAX: usize = offset_of!(Regs, rax);
    pub const RCX: usize = offset_of!(Regs, rcx);
    pub const RSP: usize = offset_of!(Regs, rsp);
    pub const RIP: usize = offset_of!(Regs, rip);
    pub const RFLAGS: usize = offset_of!(Regs, rflags);
    pub const VECTOR: usize = offset_of!(Regs, vector);
    pub const ERROR: usize = offset_of!(Regs, error);
    pub const CR2: usize = offset_of!(Regs, cr2);
}

const EXT_SIZE_MAX: usize = crate::syscall::EXT_AREA_SIZE;

#[repr(C, align(64))]
struct ExtArea([u8; EXT_SIZE_MAX]);
/// The extended (x87/SSE/AVX) state of the fault, then of the context to resume.
static mut SIG_EXT: ExtArea = ExtArea([0; EXT_SIZE_MAX]);

pub const SIGNAL_STACK_SIZE: usize = 32 * 1024;
#[repr(C, align(16))]
pub struct SignalStack([u8; SIGNAL_STACK_SIZE]);
/// The stack `signal_entry` and `deliver` run on.
pub static mut SIGNAL_STACK: SignalStack = SignalStack([0; SIGNAL_STACK_SIZE]);

#[derive(Clone, Copy, Default)]
struct Action {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
}

static ACTIONS: Global<[Action; NSIG as usize + 1]> = Global::new(
    [Action {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    }; NSIG as usize + 1],
);

#[derive(Clone, Copy)]
struct AltStack {
    sp: u64,
    size: u64,
}

static ALTSTACK: Global<AltStack> = Global::new(AltStack { sp: 0, size: 0 });

struct ExtInfo {
    /// Bytes of the saved extended state (512 for FXSAVE, CPUID 0xd for XSAVE).
    size: usize,
    /// MXCSR bits that may be set (from FXSAVE's MXCSR_MASK).
    mxcsr_mask: u32,
    /// XCR0: the state components XRSTOR may load.
    xcr0: u64,
}

static EXT_INFO: Global<ExtInfo> = Global::new(ExtInfo {
    size: 512,
    mxcsr_mask: 0xffbf,
    xcr0: 3,
});

/// Records the extended-state format (after `syscall::init` chose XSAVE or not).
pub fn init() {
    let xsave = XSAVE_ENABLED.with(|x| *x);
    let mut probe = ExtArea([0; EXT_SIZE_MAX]);
    // SAFETY: FXSAVE writes 512 bytes into a 64-byte-aligned local buffer.
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) probe.0.as_mut_ptr(), options(nostack)) };
    let mask = u32::from_le_bytes([probe.0[28], probe.0[29], probe.0[30], probe.0[31]]);
    EXT_INFO.with(|e| {
        if mask != 0 {
            e.mxcsr_mask = mask;
        }
        if xsave {
            e.size = crate::cpu::cpuid(0xd, 0)[1] as usize;
            e.xcr0 = crate::cpu::xcr0();
        }
    });
}

/// The signal a fault vector raises (0: none, the Keep stops with the report).
fn signal_for(vector: u64) -> u64 {
    match vector {
        0 | 16 | 19 => SIGFPE,
        3 => SIGTRAP,
        6 => SIGILL,
        17 => SIGBUS,
        4 | 5 | 13 | 14 => SIGSEGV,
        _ => 0,
    }
}

/// si_code and si_addr for a fault.
fn code_and_addr(sig: u64, f: &Regs) -> (i32, u64) {
    match (sig, f.vector) {
        // SEGV_ACCERR where something is mapped (PROT_NONE included), else MAPERR.
        (SIGSEGV, 14) if f.error & 1 != 0 || mm::is_mapped(f.cr2) => (2, f.cr2),
        (SIGSEGV, 14) => (1, f.cr2),
        (SIGSEGV, _) => (0x80, 0), // SI_KERNEL
        (SIGILL, _) => (2, f.rip), // ILL_ILLOPN
        (SIGFPE, 0) => (1, f.rip), // FPE_INTDIV
        (SIGFPE, _) => (7, f.rip), // FPE_FLTINV
        (SIGBUS, _) => (1, f.cr2), // BUS_ADRALN
        _ => (0x80, 0),            // SIGTRAP: SI_KERNEL
    }
}

/// Where `signal_entry` starts (the fault stub returns to it).
#[unsafe(naked)]
pub extern "C" fn signal_entry() {
    naked_asm!(
        "cmp byte ptr [rip + {xs}], 0",
        "je 2f",
        "mov eax, -1",
        "mov edx, -1",
        "xsave64 [rip + {ext}]",
        "jmp 3f",
        "2: fxsave64 [rip + {ext}]",
        "3: call {deliver}",
        "ud2",
        xs = sym XSAVE_ENABLED,
        ext = sym SIG_EXT,
        deliver = sym deliver,
    )
}

/// Loads `REGS` and `SIG_EXT` and continues there, in user mode.
#[unsafe(naked)]
extern "C" fn resume() -> ! {
    naked_asm!(
        "cmp byte ptr [rip + {xs}], 0",
        "je 2f",
        "mov eax, -1",
        "mov edx, -1",
        "xrstor64 [rip + {ext}]",
        "jmp 3f",
        "2: fxrstor64 [rip + {ext}]",
        "3: push qword ptr [rip + {regs} + {rfl}]",
        "popfq",
        "mov r8, [rip + {regs} + {r8}]",
        "mov r9, [rip + {regs} + {r9}]",
        "mov r10, [rip + {regs} + {r10}]",
        "mov r11, [rip + {regs} + {r11}]",
        "mov r12, [rip + {regs} + {r12}]",
        "mov r13, [rip + {regs} + {r13}]",
        "mov r14, [rip + {regs} + {r14}]",
        "mov r15, [rip + {regs} + {r15}]",
        "mov rdi, [rip + {regs} + {rdi}]",
        "mov rsi, [rip + {regs} + {rsi}]",
        "mov rbp, [rip + {regs} + {rbp}]",
        "mov rbx, [rip + {regs} + {rbx}]",
        "mov rdx, [rip + {regs} + {rdx}]",
        "mov rax, [rip + {regs} + {rax}]",
        "mov rcx, [rip + {regs} + {rcx}]",
        "mov rsp, [rip + {regs} + {rsp}]",
        "jmp qword ptr [rip + {regs} + {rip_off}]",
        xs = sym XSAVE_ENABLED,
        ext = sym SIG_EXT,
        regs = sym REGS,
        rfl = const off::RFLAGS,
        r8 = const off::R8,
        r9 = const off::R9,
        r10 = const off::R10,
        r11 = const off::R11,
        r12 = const off::R12,
        r13 = const off::R13,
        r14 = const off::R14,
        r15 = const off::R15,
        rdi = const off::RDI,
        rsi = const off::RSI,
        rbp = const off::RBP,
        rbx = const off::RBX,
        rdx = const off::RDX,
        rax = const off::RAX,
        rcx = const off::RCX,
        rsp = const off::RSP,
        rip_off = const off::RIP,
    )
}

/// Bytes of Linux's x86-64 `rt_sigframe`: the return address (`sa_restorer`),
/// the `ucontext` (304 bytes) and the `siginfo` (128 bytes).
const FRAME_SIZE: u64 = 8 + UC_SIZE + 128;
const UC_SIZE: u64 = 304;
/// Offsets inside the frame.
const UC: u64 = 8;
const UC_STACK: u64 = UC + 16;
const UC_MCONTEXT: u64 = UC + 40;
const MC_CSGSFS: u64 = UC_MCONTEXT + 18 * 8;
const MC_ERR: u64 = UC_MCONTEXT + 19 * 8;
const MC_TRAPNO: u64 = UC_MCONTEXT + 20 * 8;
const MC_CR2: u64 = UC_MCONTEXT + 22 * 8;
const MC_FPSTATE: u64 = UC_MCONTEXT + 23 * 8;
const INFO: u64 = UC + UC_SIZE;

extern "C" fn deliver() -> ! {
    // SAFETY: the fault stub wrote REGS before returning here; nothing else runs.
    let f = unsafe { core::ptr::read(addr_of!(REGS)) };
    // A first touch of accessible memory that is not backed yet (a grown wasm
    // memory): back it and retry the access, no signal.
    const PF: u64 = 14;
    const PF_PRESENT: u64 = 1;
    const PF_WRITE: u64 = 2;
    if f.vector == PF && f.error & PF_PRESENT == 0 && mm::fault_in(f.cr2, f.error & PF_WRITE != 0) {
        resume()
    }
    let sig = signal_for(f.vector);
    let act = ACTIONS.with(|a| a.get(sig as usize).copied().unwrap_or_default());
    if sig == 0 || act.handler <= SIG_IGN {
        // No handler (or ignored, which Linux does not allow for a fault): stop.
        hostcall::fault(f.vector, f.error, f.rip, f.cr2)
    }
    if act.flags & SA_RESTORER == 0 || act.restorer == 0 {
        hostcall::abort("signal: the payload's handler has no SA_RESTORER to return through")
    }
    let Some(next) = write_frame(&f, sig, &act) else {
        hostcall::log(b"signal: the handler's stack is not mapped; the fault stops the Keep");
        hostcall::fault(f.vector, f.error, f.rip, f.cr2)
    };
    if act.flags & SA_RESETHAND != 0 {
        ACTIONS.with(|a| a[sig as usize] = Action::default());
    }
    // SAFETY: REGS and SIG_EXT are only touched on this path (no nesting); the
    // handler starts with the initial extended state, as on Linux.
    unsafe {
        core::ptr::write(addr_of_mut!(REGS), next);
        init_ext(&mut *addr_of_mut!(SIG_EXT));
    }
    resume()
}

/// Writes the frame for `sig` and returns the registers that enter the handler,
/// or None if the frame's memory is not mapped and writable.
fn write_frame(f: &Regs, sig: u64, act: &Action) -> Option<Regs> {
    let ext_size = EXT_INFO.with(|e| e.size);
    let alt = ALTSTACK.with(|a| *a);
    let on_alt = alt.size != 0 && f.rsp.wrapping_sub(alt.sp) < alt.size;
    let top = if act.flags & SA_ONSTACK != 0 && alt.size != 0 && !on_alt {
        alt.sp.checked_add(alt.size)?
    } else {
        f.rsp.checked_sub(128)? // the red zone
    };
    let fpstate = top.checked_sub(ext_size as u64)? & !63;
    let frame = (fpstate.checked_sub(FRAME_SIZE)? & !15).checked_sub(8)?;
    let len = fpstate + ext_size as u64 - frame;
    if !mm::user_range_ok(frame, len, true) {
        return None;
    }
    let (code, addr) = code_and_addr(sig, f);
    let alt_flags = if alt.size == 0 {
        SS_DISABLE
    } else if on_alt {
        SS_ONSTACK
    } else {
        0
    };
    let put = |o: u64, v: u64| {
        // SAFETY: frame..frame+len was checked mapped and writable above; o + 8 <= len.
        unsafe { core::ptr::write_unaligned((frame + o) as *mut u64, v) }
    };
    // SAFETY: as above.
    unsafe { core::ptr::write_bytes(frame as *mut u8, 0, FRAME_SIZE as usize) };
    put(0, act.restorer);
    put(UC_STACK, alt.sp);
    put(UC_STACK + 8, alt_flags as u32 as u64);
    put(UC_STACK + 16, alt.size);
    let gregs = [
        f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15, f.rdi, f.rsi, f.rbp, f.rbx, f.rdx,
        f.rax, f.rcx, f.rsp, f.rip, f.rflags,
    ];
    for (i, v) in gregs.iter().enumerate() {
        put(UC_MCONTEXT + 8 * i as u64, *v);
    }
    put(
        MC_CSGSFS,
        u64::from(crate::abi::USER_CS) | (u64::from(crate::abi::USER_DS) << 48),
    );
    put(MC_ERR, f.error);
    put(MC_TRAPNO, f.vector);
    put(MC_CR2, f.cr2);
    put(MC_FPSTATE, fpstate);
    put(INFO, sig); // si_signo; si_errno 0
    put(INFO + 8, code as u32 as u64);
    put(INFO + 16, addr);
    // SAFETY: fpstate..fpstate+ext_size is inside the checked range; SIG_EXT holds
    // the fault's extended state (saved by signal_entry).
    unsafe {
        core::ptr::copy_nonoverlapping(addr_of!(SIG_EXT) as *const u8, fpstate as *mut u8, ext_size)
    };
    Some(Regs {
        rdi: sig,
        rsi: frame + INFO,
        rdx: frame + UC,
        rax: 0,
        rsp: frame,
        rip: act.handler,
        rflags: (f.rflags & RFLAGS_USER & !0x400) | RFLAGS_FIXED,
        ..*f
    })
}

/// The initial x87/SSE state (FCW 0x37f, MXCSR 0x1f80, everything else clear;
/// an XSAVE header of zeros puts every other component in its initial state).
fn init_ext(area: &mut ExtArea) {
    area.0.fill(0);
    area.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    area.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
}

/// rt_sigreturn: resumes the context in the `ucontext` at the caller's stack
/// pointer (the handler's `ret` popped the return address).
pub fn sigreturn(user_rsp: u64) -> ! {
    let uc = user_rsp;
    if !mm::user_range_ok(uc, UC_SIZE, false) {
        hostcall::abort("rt_sigreturn: the signal frame is not mapped")
    }
    let get = |o: u64| {
        // SAFETY: uc..uc+UC_SIZE was checked mapped above; o + 8 <= UC_SIZE.
        unsafe { core::ptr::read_unaligned((uc + o) as *const u64) }
    };
    let g = |i: u64| get(UC_MCONTEXT - UC + 8 * i);
    let mut r = Regs {
        r8: g(0),
        r9: g(1),
        r10: g(2),
        r11: g(3),
        r12: g(4),
        r13: g(5),
        r14: g(6),
        r15: g(7),
        rdi: g(8),
        rsi: g(9),
        rbp: g(10),
        rbx: g(11),
        rdx: g(12),
        rax: g(13),
        rcx: g(14),
        rsp: g(15),
        rip: g(16),
        rflags: 0,
        vector: 0,
        error: 0,
        cr2: 0,
    };
    r.rflags = (g(17) & RFLAGS_USER) | RFLAGS_FIXED;
    if r.rip >= USER_TOP {
        hostcall::abort("rt_sigreturn: the resume address is outside the payload")
    }
    let fpstate = get(MC_FPSTATE - UC);
    let ext_size = EXT_INFO.with(|e| e.size);
    // SAFETY: SIG_EXT is only used on the signal paths, which do not nest.
    let ext = unsafe { &mut *addr_of_mut!(SIG_EXT) };
    if fpstate == 0 {
        init_ext(ext);
    } else {
        if !fpstate.is_multiple_of(64) || !mm::user_range_ok(fpstate, ext_size as u64, false) {
            hostcall::abort("rt_sigreturn: the saved extended state is not mapped")
        }
        // SAFETY: fpstate..+ext_size checked mapped; SIG_EXT holds EXT_SIZE_MAX >= ext_size.
        unsafe {
            core::ptr::copy_nonoverlapping(fpstate as *const u8, ext.0.as_mut_ptr(), ext_size)
        };
        sanitize_ext(ext);
    }
    // SAFETY: as above for REGS.
    unsafe { core::ptr::write(addr_of_mut!(REGS), r) };
    resume()
}

/// Clears what FXRSTOR/XRSTOR would refuse with #GP: reserved MXCSR bits,
/// components not enabled in XCR0, the compacted-format bit, reserved header bytes.
fn sanitize_ext(area: &mut ExtArea) {
    let (mask, xcr0, xsave) = EXT_INFO.with(|e| (e.mxcsr_mask, e.xcr0, e.size > 512));
    let mxcsr = u32::from_le_bytes([area.0[24], area.0[25], area.0[26], area.0[27]]) & mask;
    area.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    if xsave {
        let bv = u64::from_le_bytes(area.0[512..520].try_into().unwrap_or([0; 8])) & xcr0;
        area.0[512..520].copy_from_slice(&bv.to_le_bytes());
        area.0[520..576].fill(0);
    }
}

/// rt_sigaction(sig, act, oact, sigsetsize).
pub fn sys_rt_sigaction(sig: u64, act: u64, oact: u64, setsize: u64) -> i64 {
    if setsize != 8 || sig == 0 || sig > NSIG {
        return -EINVAL;
    }
    let new = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return -EINVAL;
        }
        if !mm::user_range_ok(act, 32, false) {
            return -EFAULT;
        }
        // SAFETY: 32 bytes (struct kernel_sigaction) checked readable.
        let w = |i: u64| unsafe { core::ptr::read_unaligned((act + 8 * i) as *const u64) };
        Some(Action {
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3),
        })
    } else {
        None
    };
    if oact != 0 {
        if !mm::user_range_ok(oact, 32, true) {
            return -EFAULT;
        }
        let old = ACTIONS.with(|a| a[sig as usize]);
        for (i, v) in [old.handler, old.flags, old.restorer, old.mask]
            .iter()
            .enumerate()
        {
            // SAFETY: 32 bytes checked writable.
            unsafe { core::ptr::write_unaligned((oact + 8 * i as u64) as *mut u64, *v) };
        }
    }
    if let Some(new) = new {
        ACTIONS.with(|a| a[sig as usize] = new);
    }
    0
}

/// rt_sigprocmask(how, set, oset, sigsetsize): masks are not kept (nothing
/// asynchronous is ever delivered); the old mask reads as empty.
pub fn sys_rt_sigprocmask(oset: u64, setsize: u64) -> i64 {
    if setsize != 8 {
        return -EINVAL;
    }
    if oset != 0 {
        if !mm::user_range_ok(oset, 8, true) {
            return -EFAULT;
        }
        // SAFETY: 8 bytes checked writable.
        unsafe { core::ptr::write_unaligned(oset as *mut u64, 0) };
    }
    0
}

/// sigaltstack(ss, old_ss), with the caller's stack pointer.
pub fn sys_sigaltstack(ss: u64, old: u64, user_rsp: u64) -> i64 {
    let cur = ALTSTACK.with(|a| *a);
    let on = cur.size != 0 && user_rsp.wrapping_sub(cur.sp) < cur.size;
    let new = if ss != 0 {
        if !mm::user_range_ok(ss, 24, false) {
            return -EFAULT;
        }
        // SAFETY: 24 bytes (stack_t) checked readable.
        let (sp, flags, size) = unsafe {
            (
                core::ptr::read_unaligned(ss as *const u64),
                core::ptr::read_unaligned((ss + 8) as *const i32),
                core::ptr::read_unaligned((ss + 16) as *const u64),
            )
        };
        if on {
            return -EPERM;
        }
        match flags & !SS_AUTODISARM {
            SS_DISABLE => Some(AltStack { sp: 0, size: 0 }),
            0 if size < MINSIGSTKSZ => return -ENOMEM,
            0 => Some(AltStack { sp, size }),
            _ => return -EINVAL,
        }
    } else {
        None
    };
    if old != 0 {
        if !mm::user_range_ok(old, 24, true) {
            return -EFAULT;
        }
        let flags = if cur.size == 0 {
            SS_DISABLE
        } else if on {
            SS_ONSTACK
        } else {
            0
        };
        // SAFETY: 24 bytes checked writable.
        unsafe {
            core::ptr::write_bytes(old as *mut u8, 0, 24);
            core::ptr::write_unaligned(old as *mut u64, cur.sp);
            core::ptr::write_unaligned((old + 8) as *mut i32, flags);
            core::ptr::write_unaligned((old + 16) as *mut u64, cur.size);
        }
    }
    if let Some(new) = new {
        ALTSTACK.with(|a| *a = new);
    }
    0
}

const _: () = assert!(offset_of!(Regs, rflags) == 17 * 8);
