//! keep-shim: the microkernel inside the KVM Keep.
//!
//! Trusts: the CPU, its own image and the payload (both measured into the launch
//! digest by the VMM). Does not trust: the host and its VMM. Everything the host
//! sends back through the call block (return values, lengths, offsets, times) is
//! validated; a reply out of range stops the Keep with a clear message instead of
//! being used. The boot parameters are measured but checked anyway.
//!
//! What it does: starts at the fixed entry points the VMM's descriptor tables point
//! at (`entry`), manages the payload's page tables and physical frames, loads the
//! static ELF payload with a Linux initial stack, and serves the payload's Linux
//! syscalls: memory ones inside, I/O ones through the host-call block (see
//! `docs/architecture.md`, "The KVM Keep").
//!
//! It only builds freestanding, with panic=abort and a linker script (keep-vmm's
//! build script does that). A plain `cargo build/clippy/test --workspace` builds a
//! stub `main` instead, so the workspace stays buildable.
#![cfg_attr(panic = "abort", no_std)]
#![cfg_attr(panic = "abort", no_main)]

#[cfg(not(panic = "abort"))]
fn main() {
    eprintln!("keep-shim runs only inside a KVM Keep; keep-vmm's build script builds it");
}

#[cfg(panic = "abort")]
#[allow(dead_code)] // shared with the VMM, which uses the rest
mod abi;
#[cfg(panic = "abort")]
mod cpu;
#[cfg(panic = "abort")]
mod elf;
#[cfg(panic = "abort")]
mod entry;
#[cfg(panic = "abort")]
mod epoll;
#[cfg(panic = "abort")]
mod fd;
#[cfg(panic = "abort")]
mod file;
#[cfg(panic = "abort")]
mod global;
#[cfg(panic = "abort")]
mod hostcall;
#[cfg(panic = "abort")]
mod mem;
#[cfg(panic = "abort")]
mod mm;
#[cfg(panic = "abort")]
mod signal;
#[cfg(panic = "abort")]
mod socket;
#[cfg(panic = "abort")]
mod syscall;

#[cfg(panic = "abort")]
use core::panic::PanicInfo;

#[cfg(panic = "abort")]
use abi::{
    BOOT_INFO_GPA, BOOT_MAGIC, BOOT_STRINGS_MAX, BootInfo, MAX_MEM_SIZE, MIN_MEM_SIZE, PAYLOAD_GPA,
};

#[cfg(panic = "abort")]
pub(crate) const BOOT_STACK_SIZE: usize = 64 * 1024;

#[cfg(panic = "abort")]
#[repr(C, align(16))]
pub(crate) struct Stack([u8; BOOT_STACK_SIZE]);

#[cfg(panic = "abort")]
pub(crate) static mut BOOT_STACK: Stack = Stack([0; BOOT_STACK_SIZE]);

#[cfg(panic = "abort")]
/// The boot parameters the VMM wrote, checked.
pub struct Boot {
    pub mem_size: u64,
    pub payload_len: u64,
    pub argc: usize,
    pub envc: usize,
    pub strings: &'static [u8],
}

#[cfg(panic = "abort")]
fn read_boot() -> Boot {
    // SAFETY: BOOT_INFO_GPA lies inside guest memory (the VMM refuses smaller
    // memories) and is mapped by the direct map; BootInfo is plain data, any bit
    // pattern is valid, and it is read once by value.
    let info: BootInfo =
        unsafe { core::ptr::read_volatile(mm::phys_to_virt(BOOT_INFO_GPA) as *const BootInfo) };
    if info.magic != BOOT_MAGIC {
        hostcall::abort("boot parameters: bad magic");
    }
    if info.mem_size < MIN_MEM_SIZE
        || info.mem_size > MAX_MEM_SIZE
        || !info.mem_size.is_multiple_of(2 << 20)
    {
        hostcall::abort("boot parameters: memory size out of range");
    }
    if info.payload_len == 0 || info.payload_len > info.mem_size - PAYLOAD_GPA {
        hostcall::abort("boot parameters: payload length out of range");
    }
    let len = info.strings_len as usize;
    if len > BOOT_STRINGS_MAX {
        hostcall::abort("boot parameters: strings too long");
    }
    // SAFETY: the strings live inside the boot page, which stays mapped and is never
    // written again after boot.
    let strings: &'static [u8] = unsafe {
        let base = mm::phys_to_virt(BOOT_INFO_GPA) as *const BootInfo;
        core::slice::from_raw_parts(core::ptr::addr_of!((*base).strings) as *const u8, len)
    };
    let nuls = strings.iter().filter(|b| **b == 0).count();
    let (argc, envc) = (info.argc as usize, info.envc as usize);
    if argc == 0 || argc.checked_add(envc) != Some(nuls) || strings.last().is_some_and(|b| *b != 0)
    {
        hostcall::abort("boot parameters: argv/envp do not match their strings");
    }
    Boot {
        mem_size: info.mem_size,
        payload_len: info.payload_len,
        argc,
        envc,
        strings,
    }
}

#[cfg(panic = "abort")]
pub(crate) extern "C" fn shim_main() -> ! {
    let boot = read_boot();
    mm::init(&boot);
    // SAFETY: PAYLOAD_GPA + payload_len was checked against the memory size above,
    // and the payload area is never handed out by the frame allocator.
    let payload = unsafe {
        core::slice::from_raw_parts(
            mm::phys_to_virt(PAYLOAD_GPA) as *const u8,
            boot.payload_len as usize,
        )
    };
    let image = match elf::load(payload) {
        Ok(image) => image,
        Err(e) => hostcall::abort(e),
    };
    let stack = match elf::initial_stack(&image, &boot) {
        Ok(sp) => sp,
        Err(e) => hostcall::abort(e),
    };
    syscall::init(image.brk_start);
    signal::init();
    cpu::enter_payload(image.entry, stack)
}

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    hostcall::abort("shim panic")
}

#[cfg(panic = "abort")]
/// Never called (panic=abort), but precompiled `core` refers to it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
