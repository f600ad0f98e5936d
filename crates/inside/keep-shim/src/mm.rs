//! Physical frames and the payload's address space. Frames come from guest memory
//! above the payload image (a bump pointer plus a free list threaded through freed
//! frames). The VMM's PML4 maps guest memory at entry 128 (the direct map); the
//! shim adds the payload's 4 KiB pages below it (entries 0..128), allocating the
//! page-table pages itself. Under this PVM everything runs in guest user mode, so
//! every page is a user page (see `entry`).

use crate::Boot;
use crate::abi::{BOOT_PML4_GPA, DIRECT_MAP_BASE, PAGE_SIZE, PAYLOAD_GPA, USER_TOP};
use crate::global::Global;

pub const PTE_P: u64 = 1;
pub const PTE_W: u64 = 2;
/// Every page is a user page: under this PVM the shim runs in guest user mode too.
pub const PTE_U: u64 = 4;
pub const PTE_NX: u64 = 1 << 63;
/// Accessed and dirty are set up front, so the shadow MMU need not write them back.
const PTE_AD: u64 = (1 << 5) | (1 << 6);
/// Software bit: a frame is held but the page is PROT_NONE (P clear).
const PTE_HELD: u64 = 1 << 9;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

pub const fn phys_to_virt(pa: u64) -> u64 {
    DIRECT_MAP_BASE + pa
}

struct Frames {
    next: u64,
    end: u64,
    free: u64,
    pml4: u64,
    /// Frames asked for when guest memory was used up (the memory limit hit).
    refused: u64,
}

static FRAMES: Global<Frames> = Global::new(Frames {
    next: 0,
    end: 0,
    free: 0,
    refused: 0,
    pml4: 0,
});

pub fn init(boot: &Boot) {
    let start = (PAYLOAD_GPA + boot.payload_len).next_multiple_of(PAGE_SIZE);
    FRAMES.with(|f| {
        f.next = start;
        f.end = boot.mem_size;
    });
    FRAMES.with(|f| f.pml4 = BOOT_PML4_GPA);
}

/// Peak guest-physical bytes in use: everything below the allocator's high-water
/// mark (shim, payload file, page tables and the payload's memory).
pub fn peak_bytes() -> u64 {
    FRAMES.with(|f| f.next)
}

/// How many frames were refused because guest memory was used up: the host tells
/// a Keep that ran out of memory from one that failed otherwise by it.
pub fn refused_frames() -> u64 {
    FRAMES.with(|f| f.refused)
}

/// Whether frames never handed out before read as zero. On plain KVM they do:
/// guest memory is the VMM's fresh anonymous mapping, and zeroing them again
/// would touch every page twice (under PVM each first touch is a shadow-paging
/// fault). A hardware TEE backend must set this false: there the host, which
/// could leave data behind, is not trusted to have zeroed anything.
const FRESH_FRAMES_ARE_ZERO: bool = true;

/// A zeroed frame. When guest memory is used up the Keep ends here, as out of
/// memory (EXIT with the refused count, which the host reports as the memory
/// limit): nothing in the Keep can go on without the memory it asked for, and
/// the exec would only abort with a message of its own.
pub fn alloc_frame() -> u64 {
    let taken = FRAMES.with(|f| {
        if f.free != 0 {
            let pa = f.free;
            // SAFETY: a freed frame holds the address of the next free one.
            f.free = unsafe { *(phys_to_virt(pa) as *const u64) };
            Some((pa, true))
        } else if f.next + PAGE_SIZE <= f.end {
            let pa = f.next;
            f.next += PAGE_SIZE;
            Some((pa, !FRESH_FRAMES_ARE_ZERO))
        } else {
            f.refused += 1;
            None
        }
    });
    let Some((pa, dirty)) = taken else {
        crate::hostcall::exit(EXIT_OUT_OF_MEMORY);
    };
    if dirty {
        // SAFETY: the frame is ours and mapped by the direct map.
        unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, PAGE_SIZE as usize) };
    }
    pa
}

/// The exit code the shim ends a Keep with when guest memory is used up (the
/// host goes by the refused-frame count it carries, not by the code).
const EXIT_OUT_OF_MEMORY: i32 = 151;

fn free_frame(pa: u64) {
    FRAMES.with(|f| {
        // SAFETY: the frame was allocated by alloc_frame and is no longer mapped.
        unsafe { *(phys_to_virt(pa) as *mut u64) = f.free };
        f.free = pa;
    });
}

/// The PTE for `va`, creating the intermediate tables it needs.
fn pte_create(va: u64) -> Option<*mut u64> {
    if va >= USER_TOP {
        return None;
    }
    let mut table = FRAMES.with(|f| f.pml4);
    for level in [39u32, 30, 21] {
        let idx = (va >> level) & 511;
        let entry = (phys_to_virt(table) as *mut u64).wrapping_add(idx as usize);
        // SAFETY: `table` is a page-table frame owned by the shim.
        let e = unsafe { *entry };
        if e & PTE_P == 0 {
            let t = alloc_frame();
            // SAFETY: as above; the new table is zeroed.
            unsafe { *entry = t | PTE_P | PTE_W | PTE_U | PTE_AD };
            table = t;
        } else {
            table = e & ADDR_MASK;
        }
    }
    Some((phys_to_virt(table) as *mut u64).wrapping_add(((va >> 12) & 511) as usize))
}

/// The PTE for `va` when its page tables exist; otherwise Err with the first address
/// past the span of the missing table (so a walk over a large, mostly empty range
/// skips 2 MiB, 1 GiB or 512 GiB at a time).
fn pte_or_next(va: u64) -> Result<*mut u64, u64> {
    if va >= USER_TOP {
        return Err(u64::MAX);
    }
    let mut table = FRAMES.with(|f| f.pml4);
    for level in [39u32, 30, 21] {
        let idx = (va >> level) & 511;
        let entry = (phys_to_virt(table) as *const u64).wrapping_add(idx as usize);
        // SAFETY: `table` is a page-table frame owned by the shim.
        let e = unsafe { *entry };
        if e & PTE_P == 0 {
            return Err((va | ((1u64 << level) - 1)).saturating_add(1));
        }
        table = e & ADDR_MASK;
    }
    Ok((phys_to_virt(table) as *mut u64).wrapping_add(((va >> 12) & 511) as usize))
}

fn flush() {
    crate::entry::flush_tlb();
}

/// Flags for a protection (PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4).
pub fn prot_flags(prot: u64) -> u64 {
    if prot & 7 == 0 {
        return PTE_HELD;
    }
    let mut f = PTE_P;
    if prot & 2 != 0 {
        f |= PTE_W;
    }
    if prot & 4 == 0 {
        f |= PTE_NX;
    }
    f
}

/// Backs every page of [start, end) with a zeroed frame (keeping pages already
/// mapped) and gives them `flags`. Err(()) when memory runs out.
pub fn map_range(start: u64, end: u64, flags: u64) -> Result<(), ()> {
    let mut va = start;
    let mut changed = false;
    let result = loop {
        if va >= end {
            break Ok(());
        }
        let Some(p) = pte_create(va) else {
            break Err(());
        };
        // SAFETY: p points at the PTE of `va` in a shim-owned table.
        let e = unsafe { *p };
        let frame = if e & (PTE_P | PTE_HELD) != 0 {
            e & ADDR_MASK
        } else {
            alloc_frame()
        };
        // SAFETY: as above.
        unsafe { *p = frame | pte_bits(flags) };
        changed |= e != 0;
        va += PAGE_SIZE;
    };
    if changed {
        flush();
    }
    result
}

/// Maps `va` to the existing frame `pa` (the payload's own bytes, mapped in place).
pub fn map_frame(va: u64, pa: u64, flags: u64) -> Result<(), ()> {
    let p = pte_create(va).ok_or(())?;
    // SAFETY: p points at the PTE of `va` in a shim-owned table; `pa` is a page of
    // the payload image, which the frame allocator never hands out.
    unsafe { *p = (pa & ADDR_MASK) | flags | PTE_U | PTE_AD };
    Ok(())
}

/// Changes the protection of [start, end). Every page must be mapped: backed by a
/// frame (PROT_NONE pages hold theirs) or inside a reservation (see `reserve`);
/// Err(()) otherwise, as Linux's ENOMEM. Reserved pages stay unbacked: made
/// accessible, they get a frame when first touched (see [`fault_in`]), so
/// growing a wasm memory costs no frame and no page-table write per page.
pub fn protect_range(start: u64, end: u64, flags: u64) -> Result<(), ()> {
    let mut va = start;
    while va < end {
        if let Some(res_end) = reserved_end(va) {
            va = res_end.min(end);
            continue;
        }
        let p = pte_or_next(va).map_err(|_| ())?;
        // SAFETY: p points at a PTE in a shim-owned table.
        if unsafe { *p } & (PTE_P | PTE_HELD) == 0 {
            return Err(());
        }
        va += PAGE_SIZE;
    }
    if set_reserved_flags(start, end, flags).is_err() {
        // No room to split the reservations: back accessible pages now; a part
        // made PROT_NONE must not stay marked accessible (a first touch would
        // back it), so that is ENOMEM, as Linux's mprotect past its map count.
        if flags & PTE_P != 0 {
            return map_range(start, end, flags);
        }
        return Err(());
    }
    // Pages with a frame (outside reservations, or touched inside one) change now.
    let mut va = start;
    let mut changed = false;
    while va < end {
        match pte_or_next(va) {
            Ok(p) => {
                // SAFETY: p points at a PTE in a shim-owned table.
                let e = unsafe { *p };
                if e & (PTE_P | PTE_HELD) != 0 {
                    // SAFETY: as above.
                    unsafe { *p = (e & ADDR_MASK) | pte_bits(flags) };
                    changed = true;
                }
                va += PAGE_SIZE;
            }
            Err(next) => va = next,
        }
    }
    if changed {
        flush();
    }
    Ok(())
}

/// The PTE bits of a page with `flags` (from [`prot_flags`]).
fn pte_bits(flags: u64) -> u64 {
    if flags & PTE_P != 0 {
        flags | PTE_U | PTE_AD
    } else {
        PTE_HELD
    }
}

/// Pages around a first touch that are backed at once (within the reservation
/// and an aligned window of this size): one fault per 2 MiB instead of per page.
const FAULT_AROUND: u64 = 2 << 20;

/// Backs the page at `va` if it lies in an accessible reservation (and `write`
/// is allowed there), with the unbacked pages of its aligned window; true if it
/// did, so the access can be retried. Memory running out ends the Keep
/// (`alloc_frame`).
pub fn fault_in(va: u64, write: bool) -> bool {
    let Some((s, e, flags)) = reservation_of(va) else {
        return false;
    };
    if flags & PTE_P == 0 || (write && flags & PTE_W == 0) {
        return false;
    }
    let lo = (va & !(FAULT_AROUND - 1)).max(s);
    let hi = (va | (FAULT_AROUND - 1)).saturating_add(1).min(e);
    let mut page = lo;
    while page < hi {
        let Some(p) = pte_create(page) else {
            return false;
        };
        // SAFETY: p points at the PTE of `page` in a shim-owned table.
        if unsafe { *p } & (PTE_P | PTE_HELD) == 0 {
            let frame = alloc_frame();
            // SAFETY: as above; the frame is fresh and zeroed.
            unsafe { *p = frame | pte_bits(flags) };
        }
        page += PAGE_SIZE;
    }
    // Not-present entries are never cached by the TLB: no flush needed.
    true
}

/// Unmaps [start, end), freeing the frames and dropping reservations.
pub fn unmap_range(start: u64, end: u64) {
    release(start, end);
    let mut va = start;
    let mut freed = false;
    while va < end {
        match pte_or_next(va) {
            Ok(p) => {
                // SAFETY: p points at a PTE in a shim-owned table.
                let e = unsafe { *p };
                if e & (PTE_P | PTE_HELD) != 0 {
                    // SAFETY: as above.
                    unsafe { *p = 0 };
                    free_frame(e & ADDR_MASK);
                    freed = true;
                }
                va += PAGE_SIZE;
            }
            Err(next) => va = next,
        }
    }
    if freed {
        flush();
    }
}

/// Zeroes the mapped pages of [start, end) (MADV_DONTNEED on private anonymous memory).
pub fn zero_range(start: u64, end: u64) {
    let mut va = start;
    while va < end {
        match pte_or_next(va) {
            Ok(p) => {
                // SAFETY: p points at a PTE in a shim-owned table.
                let e = unsafe { *p };
                if e & (PTE_P | PTE_HELD) != 0 {
                    // SAFETY: the frame is mapped by the direct map.
                    unsafe {
                        core::ptr::write_bytes(
                            phys_to_virt(e & ADDR_MASK) as *mut u8,
                            0,
                            PAGE_SIZE as usize,
                        )
                    };
                }
                va += PAGE_SIZE;
            }
            Err(next) => va = next,
        }
    }
}

/// Address space reserved by PROT_NONE mmaps, not backed by frames: a wasm linear
/// memory's 4 GiB reservation and guard regions cost no guest memory until pages
/// are made accessible. Sorted, non-overlapping [start, end) ranges.
const MAX_RESERVATIONS: usize = 256;

struct Reservations {
    /// (start, end, flags): flags from [`prot_flags`]; PTE_HELD for PROT_NONE.
    ranges: [(u64, u64, u64); MAX_RESERVATIONS],
    len: usize,
}

static RESERVED: Global<Reservations> = Global::new(Reservations {
    ranges: [(0, 0, 0); MAX_RESERVATIONS],
    len: 0,
});

/// Reserves [start, end) without backing it (PROT_NONE). Err(()) when the table is full.
pub fn reserve(start: u64, end: u64) -> Result<(), ()> {
    release(start, end);
    RESERVED.with(|r| {
        if r.len == MAX_RESERVATIONS {
            return Err(());
        }
        let at = r.ranges[..r.len].partition_point(|&(s, _, _)| s < start);
        r.ranges.copy_within(at..r.len, at + 1);
        r.ranges[at] = (start, end, PTE_HELD);
        r.len += 1;
        Ok(())
    })
}

/// Gives the reserved parts of [start, end) `flags`, splitting reservations that
/// straddle its ends. Err(()) (nothing changed) when there is no room to split.
fn set_reserved_flags(start: u64, end: u64, flags: u64) -> Result<(), ()> {
    RESERVED.with(|r| {
        let splits = [start, end]
            .iter()
            .filter(|&&at| r.ranges[..r.len].iter().any(|&(s, e, _)| s < at && at < e))
            .count();
        if r.len + splits > MAX_RESERVATIONS {
            return Err(());
        }
        for at in [start, end] {
            if let Some(i) = r.ranges[..r.len]
                .iter()
                .position(|&(s, e, _)| s < at && at < e)
            {
                let (s, e, f) = r.ranges[i];
                r.ranges.copy_within(i + 1..r.len, i + 2);
                r.ranges[i] = (s, at, f);
                r.ranges[i + 1] = (at, e, f);
                r.len += 1;
            }
        }
        for range in r.ranges[..r.len].iter_mut() {
            if range.0 >= start && range.1 <= end {
                range.2 = flags;
            }
        }
        // Neighbours with the same flags become one again (a memory grown page
        // by page stays one reservation, and the table does not fill up).
        let mut i = 1;
        while i < r.len {
            let (prev, next) = (r.ranges[i - 1], r.ranges[i]);
            if prev.1 == next.0 && prev.2 == next.2 {
                r.ranges[i - 1].1 = next.1;
                r.ranges.copy_within(i + 1..r.len, i);
                r.len -= 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    })
}

/// Drops [start, end) from the reservations (splitting one that straddles it).
fn release(start: u64, end: u64) {
    RESERVED.with(|r| {
        let mut i = 0;
        while i < r.len {
            let (s, e, f) = r.ranges[i];
            if e <= start || s >= end {
                i += 1;
            } else if s < start && e > end {
                // A hole in the middle: split, if there is room (else keep the left part).
                r.ranges[i].1 = start;
                if r.len < MAX_RESERVATIONS {
                    r.ranges.copy_within(i + 1..r.len, i + 2);
                    r.ranges[i + 1] = (end, e, f);
                    r.len += 1;
                }
                return;
            } else if s < start {
                r.ranges[i].1 = start;
                i += 1;
            } else if e > end {
                r.ranges[i].0 = end;
                i += 1;
            } else {
                r.ranges.copy_within(i + 1..r.len, i);
                r.len -= 1;
            }
        }
    })
}

/// Whether `va` is mapped at all (backed, PROT_NONE or reserved), as opposed to
/// an address nothing was ever mapped at (for SEGV_ACCERR vs SEGV_MAPERR).
pub fn is_mapped(va: u64) -> bool {
    reserved_end(va).is_some()
        || pte_or_next(va).is_ok_and(|p| {
            // SAFETY: p points at a PTE in a shim-owned table.
            let e = unsafe { *p };
            e & (PTE_P | PTE_HELD) != 0
        })
}

/// The end of the reservation holding `va`, if any.
fn reserved_end(va: u64) -> Option<u64> {
    reservation_of(va).map(|(_, e, _)| e)
}

/// The reservation holding `va`: (start, end, flags).
fn reservation_of(va: u64) -> Option<(u64, u64, u64)> {
    RESERVED.with(|r| {
        let at = r.ranges[..r.len].partition_point(|&(s, _, _)| s <= va);
        (at > 0 && va < r.ranges[at - 1].1).then(|| r.ranges[at - 1])
    })
}

/// Whether every page of [ptr, ptr+len) is mapped (and writable if `write`).
pub fn user_range_ok(ptr: u64, len: u64, write: bool) -> bool {
    if len == 0 {
        return true;
    }
    let Some(end) = ptr.checked_add(len) else {
        return false;
    };
    if end > USER_TOP {
        return false;
    }
    let mut va = ptr & !(PAGE_SIZE - 1);
    while va < end {
        let Ok(p) = pte_or_next(va) else {
            if fault_in(va, write) {
                continue;
            }
            return false;
        };
        // SAFETY: p points at a PTE in a shim-owned table.
        let e = unsafe { *p };
        if e & PTE_P == 0 && e & PTE_HELD == 0 && fault_in(va, write) {
            // Accessible but not touched yet: backed now, looked at again.
            continue;
        }
        if e & PTE_P == 0 || (write && e & PTE_W == 0) {
            return false;
        }
        va += PAGE_SIZE;
    }
    true
}
