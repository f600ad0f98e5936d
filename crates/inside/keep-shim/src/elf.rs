//! Loading the static ELF payload (ET_EXEC, or ET_DYN without an interpreter, which
//! is placed at a fixed base) and building its Linux initial stack.

use crate::Boot;
use crate::abi::{PAGE_SIZE, PAYLOAD_GPA, USER_TOP};
use crate::cpu;
use crate::mm::{self, PTE_NX, PTE_P, PTE_W};

/// Where a static-pie payload is placed.
const PIE_BASE: u64 = 0x1000_0000;
pub const STACK_TOP: u64 = 0x3fff_0000_0000;
/// Stack mapped at start (no growth on fault yet).
pub const STACK_SIZE: u64 = 1 << 20;
const MAX_PHDRS: u64 = 64;

pub struct Image {
    pub entry: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub brk_start: u64,
}

fn u16_at(b: &[u8], off: u64) -> Option<u64> {
    let o = usize::try_from(off).ok()?;
    Some(u64::from(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    )))
}
fn u32_at(b: &[u8], off: u64) -> Option<u64> {
    let o = usize::try_from(off).ok()?;
    Some(u64::from(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    )))
}
fn u64_at(b: &[u8], off: u64) -> Option<u64> {
    let o = usize::try_from(off).ok()?;
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

struct Phdr {
    kind: u64,
    flags: u64,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

fn phdr(b: &[u8], phoff: u64, i: u64) -> Option<Phdr> {
    let o = phoff.checked_add(i.checked_mul(56)?)?;
    Some(Phdr {
        kind: u32_at(b, o)?,
        flags: u32_at(b, o + 4)?,
        offset: u64_at(b, o + 8)?,
        vaddr: u64_at(b, o + 16)?,
        filesz: u64_at(b, o + 32)?,
        memsz: u64_at(b, o + 40)?,
    })
}

pub fn load(b: &[u8]) -> Result<Image, &'static str> {
    if b.get(0..4) != Some(b"\x7fELF".as_slice()) || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("payload: not a 64-bit little-endian ELF file");
    }
    let bad = "payload: truncated ELF header";
    let kind = u16_at(b, 16).ok_or(bad)?;
    if u16_at(b, 18).ok_or(bad)? != 62 {
        return Err("payload: not an x86-64 executable");
    }
    let base = match kind {
        2 => 0,
        3 => PIE_BASE,
        _ => return Err("payload: not an executable (ET_EXEC or static ET_DYN)"),
    };
    let entry = u64_at(b, 24).ok_or(bad)?;
    let phoff = u64_at(b, 32).ok_or(bad)?;
    let phentsize = u16_at(b, 54).ok_or(bad)?;
    let phnum = u16_at(b, 56).ok_or(bad)?;
    if phentsize != 56 || phnum == 0 || phnum > MAX_PHDRS {
        return Err("payload: bad program header table");
    }
    let bad_ph = "payload: program header out of the file";
    let mut phdr_va = None;
    let mut first_load: Option<(u64, u64)> = None;
    let mut top = 0u64;
    // First pass: check every segment and map it writable.
    for i in 0..phnum {
        let p = phdr(b, phoff, i).ok_or(bad_ph)?;
        match p.kind {
            3 => {
                return Err(
                    "payload: dynamically linked (PT_INTERP); only static executables run in the Keep",
                );
            }
            6 => phdr_va = Some(base.checked_add(p.vaddr).ok_or(bad_ph)?),
            1 => {
                let start = base.checked_add(p.vaddr).ok_or(bad_ph)?;
                let end = start.checked_add(p.memsz).ok_or(bad_ph)?;
                let fend = p.offset.checked_add(p.filesz).ok_or(bad_ph)?;
                if p.filesz > p.memsz
                    || fend > b.len() as u64
                    || end > STACK_TOP - STACK_SIZE
                    || start < PAGE_SIZE
                {
                    return Err("payload: loadable segment out of range");
                }
                first_load.get_or_insert((start, p.offset));
                let (ps, pe) = (start & !(PAGE_SIZE - 1), end.next_multiple_of(PAGE_SIZE));
                // Read-only pages the segment has to itself are mapped where the
                // payload's bytes already are (no copy, half the first-touch faults);
                // the rest is copied into fresh frames.
                let (inner_start, inner_end) = match in_place_pages(b, phoff, phnum, base, i, &p) {
                    (lo, hi) if lo < hi => (lo, hi),
                    _ => (start, start),
                };
                let mut va = inner_start;
                while va < inner_end {
                    let pa = PAYLOAD_GPA + p.offset + (va - start);
                    mm::map_frame(va, pa, PTE_P | PTE_NX).map_err(|()| "payload: out of memory")?;
                    va += PAGE_SIZE;
                }
                mm::map_range(ps, pe, PTE_P | PTE_W | PTE_NX)
                    .map_err(|()| "payload: out of memory")?;
                let src = b.as_ptr() as u64 + p.offset;
                for (from, to) in [(start, inner_start), (inner_end, start + p.filesz)] {
                    if from < to {
                        // SAFETY: [from, to) lies in [start, start+filesz), mapped
                        // writable above (copied pages only: in-place pages are
                        // outside these ranges), and the source range was checked
                        // against the file length.
                        unsafe {
                            core::ptr::copy_nonoverlapping(
                                (src + (from - start)) as *const u8,
                                from as *mut u8,
                                (to - from) as usize,
                            );
                        }
                    }
                }
                top = top.max(pe);
            }
            _ => {}
        }
    }
    // Second pass: final protections; a page shared by two segments gets both.
    for i in 0..phnum {
        let p = phdr(b, phoff, i).ok_or(bad_ph)?;
        if p.kind != 1 {
            continue;
        }
        let start = base + p.vaddr;
        let (ps, pe) = (
            start & !(PAGE_SIZE - 1),
            (start + p.memsz).next_multiple_of(PAGE_SIZE),
        );
        // Pages with the same final flags are protected as one run: every
        // protect_range of mapped pages flushes the TLB, which on PVM is a trap
        // into emulated supervisor mode and costs the shadow MMU its work (one per
        // page made a 29 MB exec take ~100 ms to load).
        let mut run: Option<(u64, u64)> = None; // (start of the run, its flags)
        let mut va = ps;
        while va < pe {
            let (mut w, mut x) = (false, false);
            for j in 0..phnum {
                let q = phdr(b, phoff, j).ok_or(bad_ph)?;
                let qs = base + q.vaddr;
                if q.kind == 1
                    && qs & !(PAGE_SIZE - 1) <= va
                    && va < (qs + q.memsz).next_multiple_of(PAGE_SIZE)
                {
                    w |= q.flags & 2 != 0;
                    x |= q.flags & 1 != 0;
                }
            }
            let flags = PTE_P | if w { PTE_W } else { 0 } | if x { 0 } else { PTE_NX };
            match run {
                Some((_, f)) if f == flags => {}
                Some((rs, f)) => {
                    mm::protect_range(rs, va, f).map_err(|()| "payload: out of memory")?;
                    run = Some((va, flags));
                }
                None => run = Some((va, flags)),
            }
            va += PAGE_SIZE;
        }
        if let Some((rs, f)) = run {
            mm::protect_range(rs, pe, f).map_err(|()| "payload: out of memory")?;
        }
    }
    let (first_va, first_off) = first_load.ok_or("payload: no loadable segment")?;
    let phdr = match phdr_va {
        Some(va) => va,
        None => first_va
            .checked_sub(first_off)
            .and_then(|v| v.checked_add(phoff))
            .ok_or(bad_ph)?,
    };
    let entry = base
        .checked_add(entry)
        .filter(|e| *e < USER_TOP)
        .ok_or("payload: bad entry point")?;
    Ok(Image {
        entry,
        phdr,
        phnum,
        brk_start: top,
    })
}

/// The page range of segment `i` that can be mapped in place: read-only, no bss,
/// file offset congruent with the address, and whole pages no other PT_LOAD
/// touches. Empty (start == end) when there is none.
fn in_place_pages(b: &[u8], phoff: u64, phnum: u64, base: u64, i: u64, p: &Phdr) -> (u64, u64) {
    let start = base + p.vaddr;
    let (first, last) = (
        (start).next_multiple_of(PAGE_SIZE),
        (start + p.filesz) & !(PAGE_SIZE - 1),
    );
    if p.flags & 2 != 0
        || p.filesz != p.memsz
        || !p.vaddr.wrapping_sub(p.offset).is_multiple_of(PAGE_SIZE)
        || first >= last
    {
        return (0, 0);
    }
    let (mut lo, mut hi) = (first, last);
    for j in 0..phnum {
        let Some(q) = phdr(b, phoff, j) else {
            return (0, 0);
        };
        if j == i || q.kind != 1 {
            continue;
        }
        let qs = base.saturating_add(q.vaddr) & !(PAGE_SIZE - 1);
        let qe = base
            .saturating_add(q.vaddr)
            .saturating_add(q.memsz)
            .saturating_add(PAGE_SIZE - 1)
            & !(PAGE_SIZE - 1);
        // Another segment's pages may only touch the ends of [lo, hi): trim them off.
        if qe <= lo || qs >= hi {
            continue;
        }
        if qs <= lo {
            lo = qe.min(hi);
        } else if qe >= hi {
            hi = qs.max(lo);
        } else {
            return (0, 0);
        }
    }
    (lo, hi.max(lo))
}

const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_EXECFN: u64 = 31;

/// Maps the stack and writes argc, argv, envp, auxv, the strings and AT_RANDOM's
/// 16 bytes; returns the initial stack pointer.
pub fn initial_stack(img: &Image, boot: &Boot) -> Result<u64, &'static str> {
    mm::map_range(STACK_TOP - STACK_SIZE, STACK_TOP, PTE_P | PTE_W | PTE_NX)
        .map_err(|()| "stack: out of memory")?;
    let mut sp = STACK_TOP;
    // Strings (argv then envp, as the boot page holds them).
    sp -= boot.strings.len() as u64;
    let strings_va = sp;
    // SAFETY: the stack was just mapped and the strings (at most 3 KiB) fit in it.
    unsafe {
        core::ptr::copy_nonoverlapping(boot.strings.as_ptr(), sp as *mut u8, boot.strings.len())
    };
    sp -= 16;
    let random_va = sp;
    for k in 0..2 {
        let r = cpu::random_u64().ok_or("no RDRAND/RDSEED for AT_RANDOM")?;
        // SAFETY: 16 bytes reserved above.
        unsafe { core::ptr::write_unaligned((random_va + 8 * k) as *mut u64, r) };
    }
    sp &= !15;
    let hwcap = u64::from(cpu::cpuid(1, 0)[3]);
    let auxv: [(u64, u64); 15] = [
        (AT_PHDR, img.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, img.phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, 0),
        (AT_ENTRY, img.entry),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_HWCAP, hwcap),
        (AT_CLKTCK, 100),
        (AT_SECURE, 0),
        (AT_RANDOM, random_va),
        (AT_EXECFN, strings_va),
    ];
    let words = 1 + boot.argc + 1 + boot.envc + 1 + 2 * (auxv.len() + 1);
    sp -= 8 * words as u64;
    sp &= !15;
    let mut w = sp as *mut u64;
    let mut put = |v: u64| {
        // SAFETY: `words` slots were reserved below the strings on the mapped stack.
        unsafe {
            w.write(v);
            w = w.add(1);
        }
    };
    put(boot.argc as u64);
    let mut off = 0usize;
    for i in 0..boot.argc + boot.envc {
        if i == boot.argc {
            put(0);
        }
        put(strings_va + off as u64);
        off += boot.strings[off..]
            .iter()
            .position(|c| *c == 0)
            .unwrap_or(0)
            + 1;
    }
    if boot.envc == 0 {
        put(0);
    }
    put(0);
    for (k, v) in auxv {
        put(k);
        put(v);
    }
    put(0);
    put(0);
    Ok(sp)
}
