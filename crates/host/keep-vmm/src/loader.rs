//! What the VMM puts into guest memory before the first instruction: the boot page
//! tables, the shim's ELF segments, the payload's bytes and the boot parameters.

use crate::Error;
use crate::abi::*;
use crate::memory::GuestMemory;

/// The boot parameters page, serialized as the shim reads `BootInfo`.
pub fn boot_info(
    mem_size: u64,
    payload_len: u64,
    args: &[String],
    env: &[String],
) -> Result<Vec<u8>, Error> {
    if args.is_empty() {
        return Err(Error::Config("argv needs at least the program name".into()));
    }
    let mut strings = Vec::new();
    for s in args.iter().chain(env) {
        if s.as_bytes().contains(&0) {
            return Err(Error::Config(
                "an argument or environment entry contains NUL".into(),
            ));
        }
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
    }
    if strings.len() > BOOT_STRINGS_MAX {
        return Err(Error::Config(format!(
            "argv and env take {} bytes; the Keep takes at most {BOOT_STRINGS_MAX}",
            strings.len()
        )));
    }
    let mut b = Vec::with_capacity(std::mem::size_of::<BootInfo>());
    b.extend_from_slice(&BOOT_MAGIC.to_le_bytes());
    b.extend_from_slice(&mem_size.to_le_bytes());
    b.extend_from_slice(&payload_len.to_le_bytes());
    b.extend_from_slice(&(args.len() as u32).to_le_bytes());
    b.extend_from_slice(&(env.len() as u32).to_le_bytes());
    b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&strings);
    b.resize(std::mem::size_of::<BootInfo>(), 0);
    Ok(b)
}

/// Guest memory at DIRECT_MAP_BASE: PML4[128] -> one PDPT -> four PDs of 2 MiB
/// pages (4 GiB, which includes the unbacked doorbell). User pages: under this
/// host's PVM the shim runs in guest user mode (see docs/architecture.md).
pub fn page_tables(mem: &mut GuestMemory) -> Result<(), Error> {
    let pml4_index = (DIRECT_MAP_BASE >> 39) & 511;
    mem.write(
        BOOT_PML4_GPA + pml4_index * 8,
        &(BOOT_PDPT_GPA | 0x27).to_le_bytes(),
    )?;
    for i in 0..BOOT_PD_COUNT {
        let pd = BOOT_PD_GPA + i * PAGE_SIZE;
        mem.write(BOOT_PDPT_GPA + i * 8, &(pd | 0x27).to_le_bytes())?;
        for j in 0..512 {
            // present, writable, user, 2 MiB, accessed, dirty
            let pa = ((i * 512 + j) << 21) | 0xe7;
            mem.write(pd + j * 8, &pa.to_le_bytes())?;
        }
    }
    Ok(())
}

/// The GDT (flat segments and the TSS descriptor), the 64-bit TSS (RSP0: the fault
/// stack) and the IDT (vectors 0..32 -> the shim's fault stubs), all at fixed
/// addresses the shim's entry code relies on.
pub fn descriptor_tables(mem: &mut GuestMemory) -> Result<(), Error> {
    let tss = DIRECT_MAP_BASE + BOOT_TSS_GPA;
    let tss_limit = 0x67u64;
    let gdt: [u64; 10] = [
        0,
        0,
        0x00af_9b00_0000_ffff, // 0x10 kernel code, 64-bit
        0x00cf_9300_0000_ffff, // 0x18 kernel data
        0x00cf_fb00_0000_ffff, // 0x23 user code, 32-bit
        0x00cf_f300_0000_ffff, // 0x2b user data
        0x00af_fb00_0000_ffff, // 0x33 user code, 64-bit
        0,
        tss_limit | (tss & 0xff_ffff) << 16 | 0x89 << 40 | ((tss >> 24) & 0xff) << 56, // 0x40 TSS
        tss >> 32,
    ];
    for (i, d) in gdt.iter().enumerate() {
        mem.write(BOOT_GDT_GPA + 8 * i as u64, &d.to_le_bytes())?;
    }
    // TSS: RSP0 at offset 4; the I/O map base past the limit (no port access).
    mem.write(
        BOOT_TSS_GPA + 4,
        &(DIRECT_MAP_BASE + FAULT_STACK_TOP_GPA).to_le_bytes(),
    )?;
    mem.write(BOOT_TSS_GPA + 0x66, &0x68u16.to_le_bytes())?;
    for v in 0..32u64 {
        let h = ENTRY_FAULTS + 16 * v;
        let lo =
            (h & 0xffff) | u64::from(KERNEL_CS) << 16 | 0x8e << 40 | ((h >> 16) & 0xffff) << 48;
        mem.write(BOOT_IDT_GPA + 16 * v, &lo.to_le_bytes())?;
        mem.write(BOOT_IDT_GPA + 16 * v + 8, &(h >> 32).to_le_bytes())?;
    }
    Ok(())
}

fn u16_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(o..o + 2)?.try_into().ok()?,
    )))
}
fn u32_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(o..o + 4)?.try_into().ok()?,
    )))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Loads the shim's PT_LOAD segments at `vaddr - DIRECT_MAP_BASE`, inside
/// [SHIM_GPA, SHIM_GPA + SHIM_MAX). Returns the entry point (a direct-map address).
pub fn load_shim(mem: &mut GuestMemory, elf: &[u8]) -> Result<u64, Error> {
    let bad = Error::Shim;
    if elf.get(0..4) != Some(b"\x7fELF".as_slice()) || elf.get(4) != Some(&2) {
        return Err(bad("not an ELF64 file"));
    }
    let entry = u64_at(elf, 24).ok_or(bad("truncated header"))?;
    let phoff = u64_at(elf, 32).ok_or(bad("truncated header"))? as usize;
    let phnum = u16_at(elf, 56).ok_or(bad("truncated header"))? as usize;
    let lo = DIRECT_MAP_BASE + SHIM_GPA;
    let hi = lo + SHIM_MAX;
    for i in 0..phnum {
        let o = phoff.checked_add(i * 56).ok_or(bad("program headers"))?;
        if u32_at(elf, o).ok_or(bad("program headers"))? != 1 {
            continue;
        }
        let off = u64_at(elf, o + 8).ok_or(bad("program headers"))? as usize;
        let vaddr = u64_at(elf, o + 16).ok_or(bad("program headers"))?;
        let filesz = u64_at(elf, o + 32).ok_or(bad("program headers"))? as usize;
        let memsz = u64_at(elf, o + 40).ok_or(bad("program headers"))?;
        let end = vaddr.checked_add(memsz).ok_or(bad("segment"))?;
        if vaddr < lo || end > hi || filesz as u64 > memsz {
            return Err(bad("segment outside the shim's area"));
        }
        let bytes = elf
            .get(off..off.checked_add(filesz).ok_or(bad("segment"))?)
            .ok_or(bad("segment past the file"))?;
        mem.write(vaddr - DIRECT_MAP_BASE, bytes)?;
    }
    if !(lo..hi).contains(&entry) {
        return Err(bad("entry point outside the shim"));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_info_has_the_shims_layout() {
        let b = boot_info(64 << 20, 100, &["prog".into(), "a".into()], &["K=V".into()]).unwrap();
        assert_eq!(b.len(), std::mem::size_of::<BootInfo>());
        assert_eq!(&b[40..40 + 11], b"prog\0a\0K=V\0");
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 11);
    }

    #[test]
    fn boot_info_refuses_bad_strings() {
        assert!(boot_info(64 << 20, 1, &[], &[]).is_err());
        assert!(boot_info(64 << 20, 1, &["a\0b".into()], &[]).is_err());
        assert!(boot_info(64 << 20, 1, &["x".repeat(4000)], &[]).is_err());
    }
}
