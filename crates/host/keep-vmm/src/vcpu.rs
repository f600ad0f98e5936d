//! The vCPU's state at the first instruction: 64-bit mode with paging on, the boot
//! page tables, the descriptor tables of `loader::descriptor_tables`, the syscall
//! MSRs, SSE enabled, and the shim entered in guest *user* mode (CS 0x33): on this
//! host's PVM only user mode runs natively, supervisor mode is emulated.

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, Msrs, kvm_msr_entry, kvm_segment};
use kvm_ioctls::{Kvm, VcpuFd};

use crate::Error;
use crate::abi::*;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_FSGSBASE: u64 = 1 << 16;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_FMASK: u32 = 0xc000_0084;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

pub fn setup(kvm: &Kvm, vcpu: &VcpuFd, entry: u64) -> Result<(), Error> {
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::kvm("get supported CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(Error::kvm("set CPUID"))?;
    let mut s = vcpu.get_sregs().map_err(Error::kvm("get sregs"))?;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_CS,
        type_: 0xb,
        present: 1,
        dpl: 3,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    let data = kvm_segment {
        selector: USER_DS,
        type_: 3,
        l: 0,
        db: 1,
        ..code
    };
    let null = kvm_segment {
        selector: 0,
        type_: 0,
        present: 0,
        s: 0,
        l: 0,
        db: 0,
        g: 0,
        unusable: 1,
        ..data
    };
    s.cs = code;
    s.ss = data;
    (s.ds, s.es, s.fs, s.gs) = (null, null, null, null);
    s.tr = kvm_segment {
        base: DIRECT_MAP_BASE + BOOT_TSS_GPA,
        limit: 0x67,
        selector: TSS_SEL,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    s.gdt.base = DIRECT_MAP_BASE + BOOT_GDT_GPA;
    s.gdt.limit = 10 * 8 - 1;
    s.idt.base = DIRECT_MAP_BASE + BOOT_IDT_GPA;
    s.idt.limit = 32 * 16 - 1;
    s.cr3 = BOOT_PML4_GPA;
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE;
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    vcpu.set_sregs(&s).map_err(Error::kvm("set sregs"))?;
    let mut r = vcpu.get_regs().map_err(Error::kvm("get regs"))?;
    r.rip = entry;
    r.rflags = 0x202;
    r.rsp = 0;
    vcpu.set_regs(&r).map_err(Error::kvm("set regs"))?;
    let msr = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    let msrs = Msrs::from_entries(&[
        msr(
            MSR_STAR,
            u64::from(USER_CS - 16) << 48 | u64::from(KERNEL_CS) << 32,
        ),
        msr(MSR_LSTAR, ENTRY_SYSCALL),
        msr(MSR_FMASK, 0),
    ])
    .map_err(|_| Error::Config("MSR list".into()))?;
    let n = vcpu.set_msrs(&msrs).map_err(Error::kvm("set MSRs"))?;
    if n != 3 {
        return Err(Error::Unexpected(format!("KVM took {n} of 3 syscall MSRs")));
    }
    Ok(())
}
