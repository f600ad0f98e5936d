//! Host calls through the shared call block (see `abi`): the shim writes a request
//! into the block, rings the doorbell (a store to an unbacked address: an MMIO
//! exit), and reads the reply back once. Every reply is checked before use; a
//! reply out of range stops the Keep with `ABORT` and a message saying what was
//! refused.

use core::sync::atomic::{Ordering, fence};

use crate::abi::{
    CALL_BLOCK_GPA, CALL_BLOCK_SIZE, CALL_DATA_OFFSET, CallHeader, DOORBELL_GPA, MAX_ERRNO,
    PENDING_OFFSET, call,
};
use crate::cpu;
use crate::global::Global;
use crate::mm::phys_to_virt;

/// Bytes of the data area.
pub const DATA_CAPACITY: usize = (CALL_BLOCK_SIZE - CALL_DATA_OFFSET) as usize;

fn header_ptr() -> *mut CallHeader {
    phys_to_virt(CALL_BLOCK_GPA) as *mut CallHeader
}

/// The data area of the call block.
pub fn data() -> *mut u8 {
    phys_to_virt(CALL_BLOCK_GPA + CALL_DATA_OFFSET) as *mut u8
}

/// Sends one request and returns the host's reply header, read once.
fn request(nr: u32, args: [u64; 4]) -> CallHeader {
    let req = CallHeader {
        nr,
        _pad: 0,
        args,
        ret: 0,
        val: [0; 3],
    };
    // SAFETY: the call block is guest memory inside the direct map (the VMM refuses
    // memories smaller than the layout); volatile because the host reads and writes it.
    unsafe { core::ptr::write_volatile(header_ptr(), req) };
    fence(Ordering::SeqCst);
    // SAFETY: the doorbell is mapped by the boot direct map but backed by nothing:
    // the store exits to the VMM, which serves the request before resuming us.
    unsafe { core::ptr::write_volatile(phys_to_virt(DOORBELL_GPA) as *mut u32, nr) };
    fence(Ordering::SeqCst);
    // SAFETY: as above; the reply is copied out once so the host cannot change it
    // between the checks and the use.
    unsafe { core::ptr::read_volatile(header_ptr()) }
}

/// stdout/stderr bytes staged at the start of the data area: (fd, len).
static PENDING: Global<(u32, usize)> = Global::new((0, 0));

fn set_pending(fd: u32, len: usize) {
    PENDING.with(|p| *p = (fd, len));
    // SAFETY: PENDING_OFFSET + 8 lies inside the block's header page (checked in
    // abi); volatile because the VMM reads it if the Keep stops before a flush.
    unsafe {
        core::ptr::write_volatile(
            phys_to_virt(CALL_BLOCK_GPA + PENDING_OFFSET) as *mut [u32; 2],
            [fd, len as u32],
        )
    };
}

/// Stages up to `len` bytes of output for `fd` (1 or 2) behind what is already
/// staged, sending the staged bytes first if they are for another fd and after if
/// the area is full. Returns how many bytes were taken (the caller loops).
/// A write error from the host is not reported for staged bytes (as with any
/// buffered output, it is found later or not at all).
pub fn stage_output(fd: u32, src: *const u8, len: usize) -> usize {
    let (pfd, plen) = PENDING.with(|p| *p);
    if plen > 0 && pfd != fd {
        flush();
    }
    let plen = PENDING.with(|p| p.1);
    let n = len.min(DATA_CAPACITY - plen);
    // SAFETY: the caller checked `src..src+len` mapped; plen + n <= DATA_CAPACITY.
    unsafe { core::ptr::copy_nonoverlapping(src, data().add(plen), n) };
    set_pending(fd, plen + n);
    if plen + n == DATA_CAPACITY {
        flush();
    }
    n
}

/// Sends staged output, if any (one WRITE, more only if the host takes less).
pub fn flush() {
    let (fd, len) = PENDING.with(|p| *p);
    if len == 0 {
        return;
    }
    set_pending(0, 0);
    let mut off = 0;
    while off < len {
        let r = request(
            call::WRITE,
            [u64::from(fd), off as u64, (len - off) as u64, 0],
        );
        match checked_count(
            r.ret,
            len - off,
            "host reply refused: write count out of range",
        ) {
            Ok(n) if n > 0 => off += n,
            _ => break,
        }
    }
}

/// Stops the Keep: tells the host why, then halts for good.
pub fn abort(reason: &str) -> ! {
    flush();
    let n = reason.len().min(DATA_CAPACITY);
    // SAFETY: n bytes fit in the data area.
    unsafe { core::ptr::copy_nonoverlapping(reason.as_ptr(), data(), n) };
    request(call::ABORT, [0, n as u64, 0, 0]);
    cpu::halt_forever()
}

/// Stops the Keep with a fault report (a fault nobody handles), after sending
/// the staged output.
pub fn fault(vector: u64, error: u64, rip: u64, cr2: u64) -> ! {
    flush();
    request(call::FAULT, [vector, error, rip, cr2]);
    cpu::halt_forever()
}

/// Refuses a reply: the host broke the protocol.
pub(crate) fn refuse(what: &str) -> ! {
    abort(what)
}

/// A return value that is a count in 0..=max or -errno.
pub(crate) fn checked_count(ret: i64, max: usize, what: &str) -> Result<usize, i64> {
    if ret < 0 {
        if ret < -MAX_ERRNO {
            refuse(what);
        }
        return Err(ret);
    }
    match usize::try_from(ret) {
        Ok(n) if n <= max => Ok(n),
        _ => refuse(what),
    }
}

/// Writes `len` bytes already placed at the start of the data area to `fd`.
/// Returns the count the host wrote (never more than `len`) or -errno.
pub fn write_staged(fd: u32, len: usize) -> Result<usize, i64> {
    flush();
    let r = request(call::WRITE, [u64::from(fd), 0, len as u64, 0]);
    checked_count(r.ret, len, "host reply refused: write count out of range")
}

/// Reads up to `max` bytes from `fd` into the data area; returns (offset, count).
pub fn read_staged(fd: u32, max: usize) -> Result<(usize, usize), i64> {
    flush();
    let max = max.min(DATA_CAPACITY);
    let r = request(call::READ, [u64::from(fd), 0, max as u64, 0]);
    let n = checked_count(r.ret, max, "host reply refused: read count out of range")?;
    let off = usize::try_from(r.val[0]).unwrap_or(usize::MAX);
    match off.checked_add(n) {
        Some(end) if end <= DATA_CAPACITY => Ok((off, n)),
        _ => refuse("host reply refused: read data outside the call block"),
    }
}

/// Sends a FILE request whose words and data the caller placed in the data area
/// (after `flush`), `len` bytes in all. The reply header is returned unchecked:
/// `crate::file` checks it for the operation.
pub(crate) fn file(op: u64, len: usize) -> CallHeader {
    request(call::FILE, [op, len as u64, 0, 0])
}

/// Sends a SOCKET request laid out like a FILE one; `crate::socket` checks the reply.
pub(crate) fn socket(op: u64, len: usize) -> CallHeader {
    request(call::SOCKET, [op, len as u64, 0, 0])
}

/// Host time (untrusted: only range-checked). Returns (seconds, nanoseconds).
pub fn clock(id: u32) -> Result<(i64, i64), i64> {
    let r = request(call::CLOCK, [u64::from(id), 0, 0, 0]);
    if r.ret != 0 {
        checked_count(
            r.ret,
            0,
            "host reply refused: clock return value out of range",
        )?;
    }
    let (sec, nsec) = (r.val[0], r.val[1]);
    if nsec >= 1_000_000_000 || sec > i64::MAX as u64 {
        refuse("host reply refused: clock value out of range");
    }
    Ok((sec as i64, nsec as i64))
}

/// A line for the host's log (e.g. an unsupported syscall). The reply is ignored.
pub fn log(line: &[u8]) {
    flush();
    let n = line.len().min(DATA_CAPACITY);
    // SAFETY: n bytes fit in the data area.
    unsafe { core::ptr::copy_nonoverlapping(line.as_ptr(), data(), n) };
    request(call::LOG, [0, n as u64, 0, 0]);
}

/// Sleeps in the host for `ns` nanoseconds (the reply is ignored: a host that
/// returns early or late only changes timing, which it controls anyway).
pub fn sleep(ns: u64) {
    flush();
    if ns > 0 {
        request(call::SLEEP, [ns, 0, 0, 0]);
    }
}

pub fn exit(code: i32) -> ! {
    flush();
    request(
        call::EXIT,
        [
            code as u32 as u64,
            crate::mm::peak_bytes(),
            crate::mm::refused_frames(),
            0,
        ],
    );
    cpu::halt_forever()
}
