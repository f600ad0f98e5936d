//! memcpy, memmove, memset, memcmp, bcmp: the symbols `core` expects from a libc.
//! Written with `rep movsb`/`rep stosb` so the compiler cannot turn them back into
//! calls to themselves.

#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and do not overlap.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forward copy is correct when dest is below src or past its end.
        unsafe { memcpy(dest, src, n) }
    } else {
        // SAFETY: overlapping with dest above src: copy backwards (direction flag
        // set for the copy only and cleared again).
        unsafe {
            core::arch::asm!("std", "rep movsb", "cld",
                inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                options(nostack));
        }
        dest
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") c as u8,
            options(nostack, preserves_flags));
    }
    dest
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: the caller guarantees both ranges are valid for n bytes.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
