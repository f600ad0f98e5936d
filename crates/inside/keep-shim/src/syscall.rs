//! The payload's Linux syscalls. Entry: `syscall` jumps to LSTAR (set by the VMM
//! to `abi::ENTRY_SYSCALL`) at the same privilege, guest user mode (see `entry`
//! and the architecture notes on PVM); the entry code switches to the
//! shim's syscall stack, saves the argument registers and the SSE/AVX state, and
//! calls `dispatch`. Memory syscalls are served here; I/O goes to the host.

use core::arch::naked_asm;

use crate::abi::{PAGE_SIZE, USER_TOP};
use crate::cpu::{self, XSAVE_ENABLED};
use crate::elf::{STACK_SIZE, STACK_TOP};
use crate::fd;
use crate::global::Global;
use crate::hostcall::{self, DATA_CAPACITY};
use crate::mm;

const SYSCALL_STACK_SIZE: usize = 64 * 1024;
pub const EXT_AREA_SIZE: usize = 4096;

#[repr(C, align(16))]
struct Stack([u8; SYSCALL_STACK_SIZE]);
static mut SYSCALL_STACK: Stack = Stack([0; SYSCALL_STACK_SIZE]);
#[repr(C, align(64))]
struct ExtArea([u8; EXT_AREA_SIZE]);
static mut EXT_AREA: ExtArea = ExtArea([0; EXT_AREA_SIZE]);
static mut USER_RSP: u64 = 0;

const EBADF: i64 = 9;
const ENOMEM: i64 = 12;
const EFAULT: i64 = 14;
const EINVAL: i64 = 22;
const ENOTTY: i64 = 25;
const ENODEV: i64 = 19;
const ENOSYS: i64 = 38;
const ENOENT: i64 = 2;
const EROFS: i64 = 30;
const ESPIPE: i64 = 29;
const ERANGE: i64 = 34;
const ETIMEDOUT: i64 = 110;
const AT_EMPTY_PATH: u64 = 0x1000;
const O_CLOEXEC: u64 = 0o2000000;

/// Registers saved by the entry code, lowest address first.
#[repr(C)]
pub struct Frame {
    r9: u64,
    r8: u64,
    r10: u64,
    rdx: u64,
    rsi: u64,
    rdi: u64,
    rax: u64,
    r11: u64,
    rcx: u64,
}

struct Space {
    brk_start: u64,
    brk: u64,
    mmap_next: u64,
    warned: [u64; 8],
}

static SPACE: Global<Space> = Global::new(Space {
    brk_start: 0,
    brk: 0,
    mmap_next: 0,
    warned: [0; 8],
});
const BRK_MAX: u64 = 1 << 30;
const MMAP_TOP: u64 = STACK_TOP - STACK_SIZE - (1 << 30);

pub fn init(brk_start: u64) {
    SPACE.with(|s| {
        s.brk_start = brk_start;
        s.brk = brk_start;
        s.mmap_next = MMAP_TOP;
    });
    // XSAVE when the OS (here: PVM, from the host) enabled it and the area fits:
    // then AVX state is saved across syscalls too, not only SSE.
    let osxsave = cpu::cpuid(1, 0)[2] & (1 << 27) != 0;
    if osxsave && cpu::cpuid(0xd, 0)[1] as usize <= EXT_AREA_SIZE {
        XSAVE_ENABLED.with(|x| *x = true);
    }
}

#[unsafe(naked)]
pub(crate) extern "C" fn syscall_entry() {
    naked_asm!(
        "mov [rip + {user_rsp}], rsp",
        "lea rsp, [rip + {stack} + {stack_size}]",
        "push rcx", "push r11", "push rax", "push rdi", "push rsi", "push rdx", "push r10", "push r8", "push r9",
        "cmp byte ptr [rip + {xs}], 0",
        "je 2f",
        "mov eax, -1", "mov edx, -1",
        "xsave64 [rip + {area}]",
        "jmp 3f",
        "2: fxsave64 [rip + {area}]",
        "3: mov rdi, rsp",
        "sub rsp, 8",
        "call {dispatch}",
        "add rsp, 8",
        "cmp byte ptr [rip + {xs}], 0",
        "je 4f",
        "mov eax, -1", "mov edx, -1",
        "xrstor64 [rip + {area}]",
        "jmp 5f",
        "4: fxrstor64 [rip + {area}]",
        "5: pop r9", "pop r8", "pop r10", "pop rdx", "pop rsi", "pop rdi", "pop rax", "pop r11", "pop rcx",
        "mov rsp, [rip + {user_rsp}]",
        "jmp rcx",
        user_rsp = sym USER_RSP,
        stack = sym SYSCALL_STACK,
        stack_size = const SYSCALL_STACK_SIZE,
        xs = sym XSAVE_ENABLED,
        area = sym EXT_AREA,
        dispatch = sym dispatch,
    )
}

/// The payload's stack pointer at the current syscall.
fn user_rsp() -> u64 {
    // SAFETY: written by syscall_entry before dispatch; one vCPU, no nesting.
    unsafe { core::ptr::read(core::ptr::addr_of!(USER_RSP)) }
}

extern "C" fn dispatch(f: &mut Frame) {
    let (a0, a1, a2, a3, a4, a5) = (f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9);
    // epoll instances and eventfds (inside).
    if let Some(ret) = crate::epoll::dispatch(f.rax, [a0, a1, a2, a3, a4, a5]) {
        f.rax = ret as u64;
        return;
    }
    // Sockets (served by the host).
    if let Some(ret) = crate::socket::dispatch(f.rax, [a0, a1, a2, a3, a4, a5]) {
        f.rax = ret as u64;
        return;
    }
    // Files beneath preopened directories (served by the host).
    if let Some(ret) = crate::file::dispatch(f.rax, [a0, a1, a2, a3, a4, a5]) {
        f.rax = ret as u64;
        return;
    }
    let ret = match f.rax {
        0 => sys_read(a0, a1, a2),
        1 => sys_write(a0, a1, a2),
        262 if a3 & AT_EMPTY_PATH != 0 => sys_fstatat(a0, a1, a2),
        2 => sys_open(a0, a1),
        257 => sys_open(a1, a2),
        // No file system in the Keep: nothing can be looked up or read as a link
        // (stat, lstat, access, readlink, newfstatat, readlinkat, faccessat,
        // faccessat2).
        4 | 6 | 21 | 89 | 262 | 267 | 269 | 439 => -ENOENT,
        83 | 258 => -EROFS, // mkdir, mkdirat
        3 => fd::close(a0),
        5 => sys_fstat(a0, a1),
        7 => sys_poll(a0, a1, poll_timeout_ms(a2)),
        8 => sys_lseek(a0),
        9 => sys_mmap(a0, a1, a2, a3, a4, a5),
        10 => sys_mprotect(a0, a1, a2),
        11 => sys_munmap(a0, a1),
        12 => sys_brk(a0),
        13 => crate::signal::sys_rt_sigaction(a0, a1, a2, a3),
        14 => crate::signal::sys_rt_sigprocmask(a2, a3),
        15 => crate::signal::sigreturn(user_rsp()),
        16 => sys_ioctl(a0, a1),
        19 => sys_readv(a0, a1, a2),
        20 => sys_writev(a0, a1, a2),
        24 => 0, // sched_yield: there is no other thread
        28 => sys_madvise(a0, a1, a2),
        32 => fd::dup(a0, 0, false),
        33 => fd::dup_to(a0, a1, false),
        292 if a2 & !O_CLOEXEC == 0 && a0 != a1 => fd::dup_to(a0, a1, a2 != 0),
        292 => -EINVAL,
        35 => sys_nanosleep(a0),
        39 | 186 => 1, // getpid, gettid: the payload is process 1
        // clone, fork, vfork, clone3: one thread only (std's thread::Builder::spawn
        // and pthread_create report the error).
        56..=58 | 435 => -EAGAIN,
        44 => sys_write(a0, a1, a2), // sendto on the channel: a write (no address)
        45 => sys_recvfrom(a0, a1, a2, a4, a5),
        48 => fd::get(a0).map_or_else(|e| e, |_| 0), // shutdown: accepted
        60 | 231 => hostcall::exit(a0 as i32),
        62 | 200 | 234 => sys_kill(if f.rax == 234 { a2 } else { a1 }),
        63 => sys_uname(a0),
        72 => fd::fcntl(a0, a1, a2),
        79 => sys_getcwd(a0, a1),
        102 | 104 | 107 | 108 => 0, // getuid, getgid, geteuid, getegid
        140 => 20,                  // getpriority: nice 0
        141 => 0,                   // setpriority: accepted
        158 => sys_arch_prctl(a0, a1),
        131 => crate::signal::sys_sigaltstack(a0, a1, user_rsp()),
        202 => sys_futex(a0, a1, a2, a3),
        204 => sys_sched_getaffinity(a1, a2),
        218 => 1, // set_tid_address: returns the tid
        228 => sys_clock_gettime(a0, a1),
        229 => sys_clock_getres(a0, a1),
        230 => sys_clock_nanosleep(a0, a1, a2),
        271 => match timespec_ms(a2) {
            Ok(t) => sys_poll(a0, a1, t),
            Err(e) => e,
        },
        273 => 0,       // set_robust_list: nothing to clean up after a thread
        334 => -ENOSYS, // rseq: glibc copes; not worth a log line
        302 => sys_prlimit64(a0, a1, a2, a3),
        318 => sys_getrandom(a0, a1),
        nr => unsupported(nr),
    };
    f.rax = ret as u64;
}

fn unsupported(nr: u64) -> i64 {
    let first = SPACE.with(|s| {
        let (i, bit) = ((nr / 64) as usize, 1u64 << (nr % 64));
        match s.warned.get_mut(i) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            Some(_) => false,
            None => true,
        }
    });
    if first {
        let mut line = *b"unsupported syscall 00000 -> ENOSYS";
        let mut n = nr.min(99_999);
        for k in (20..25).rev() {
            line[k] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        hostcall::log(&line);
    }
    -ENOSYS
}

fn write_fd(fd: u64) -> Result<u32, i64> {
    match fd::get(fd) {
        Ok(f) if f.writable() => Ok(f.host_fd()),
        _ => Err(-EBADF),
    }
}

fn sys_write(fd: u64, buf: u64, len: u64) -> i64 {
    let fd = match write_fd(fd) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    if !mm::user_range_ok(buf, len, false) {
        return -EFAULT;
    }
    // stdout and stderr: staged in the call block and sent in batches (see
    // hostcall::stage_output); a whole call block or more goes straight out.
    if (fd == 1 || fd == 2) && (len as usize) < DATA_CAPACITY {
        let mut done = 0;
        while done < len as usize {
            done +=
                hostcall::stage_output(fd, (buf + done as u64) as *const u8, len as usize - done);
        }
        return len as i64;
    }
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(DATA_CAPACITY as u64) as usize;
        hostcall::flush();
        // SAFETY: the user range was checked mapped; n fits in the data area.
        unsafe { core::ptr::copy_nonoverlapping((buf + done) as *const u8, hostcall::data(), n) };
        match hostcall::write_staged(fd, n) {
            Ok(w) => {
                done += w as u64;
                if w < n {
                    break;
                }
            }
            Err(e) if done == 0 => return e,
            Err(_) => break,
        }
    }
    done as i64
}

/// Reads an iovec array (at most 1024 entries) after checking it is mapped.
fn iovecs(iov: u64, cnt: u64) -> Result<&'static [[u64; 2]], i64> {
    if cnt > 1024 {
        return Err(-EINVAL);
    }
    if !mm::user_range_ok(iov, cnt * 16, false) || !iov.is_multiple_of(8) {
        return Err(-EFAULT);
    }
    // SAFETY: checked mapped and aligned; read only for the duration of the call.
    Ok(unsafe { core::slice::from_raw_parts(iov as *const [u64; 2], cnt as usize) })
}

/// writev: the buffers are gathered into the call block and sent in one exit;
/// what does not fit is left for the caller (a short write, as Linux allows).
fn sys_writev(fd: u64, iov: u64, cnt: u64) -> i64 {
    let fd = match write_fd(fd) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let v = match iovecs(iov, cnt) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if fd == 1 || fd == 2 {
        let mut total = 0u64;
        for [base, len] in v {
            if !mm::user_range_ok(*base, *len, false) {
                return if total == 0 { -EFAULT } else { total as i64 };
            }
            let r = sys_write(u64::from(fd), *base, *len);
            if r < 0 {
                return if total == 0 { r } else { total as i64 };
            }
            total += r as u64;
            if (r as u64) < *len {
                break;
            }
        }
        return total as i64;
    }
    hostcall::flush();
    let mut staged = 0usize;
    for [base, len] in v {
        if !mm::user_range_ok(*base, *len, false) {
            return -EFAULT;
        }
        let n = (*len as usize).min(DATA_CAPACITY - staged);
        // SAFETY: checked mapped; n fits in what is left of the data area.
        unsafe {
            core::ptr::copy_nonoverlapping(*base as *const u8, hostcall::data().add(staged), n)
        };
        staged += n;
        if staged == DATA_CAPACITY {
            break;
        }
    }
    if staged == 0 {
        return 0;
    }
    match hostcall::write_staged(fd, staged) {
        Ok(n) => n as i64,
        Err(e) => e,
    }
}

/// open/openat: only the random devices exist (for libraries that read them
/// instead of calling getrandom, e.g. when a static binary cannot find the libc
/// function); every other path is ENOENT.
fn sys_open(path: u64, flags: u64) -> i64 {
    let mut name = [0u8; 16];
    let mut n = 0;
    loop {
        if n == name.len() || !mm::user_range_ok(path + n as u64, 1, false) {
            return if n == name.len() { -ENOENT } else { -EFAULT };
        }
        // SAFETY: one byte checked mapped.
        let c = unsafe { core::ptr::read((path + n as u64) as *const u8) };
        if c == 0 {
            break;
        }
        name[n] = c;
        n += 1;
    }
    match &name[..n] {
        b"/dev/urandom" | b"/dev/random" => fd::open(fd::File::Random, flags & O_CLOEXEC != 0),
        _ => -ENOENT,
    }
}

fn sys_read(fd: u64, buf: u64, len: u64) -> i64 {
    let file = match fd::get(fd) {
        Ok(f) if f.readable() => f,
        _ => return -EBADF,
    };
    if file == fd::File::Random {
        return sys_getrandom(buf, len);
    }
    if !mm::user_range_ok(buf, len, true) {
        return -EFAULT;
    }
    let mut done = 0u64;
    loop {
        let want = (len - done) as usize;
        match hostcall::read_staged(file.host_fd(), want) {
            Ok((off, n)) => {
                // SAFETY: off+n is inside the data area (checked by read_staged) and
                // n <= len - done bytes of the user buffer were checked writable.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        hostcall::data().add(off),
                        (buf + done) as *mut u8,
                        n,
                    )
                };
                done += n as u64;
                // The channel carries frames the exec reads exactly: a large read
                // is served in call-block-sized pieces without returning in between.
                // Other streams return what the host had (a short read).
                if file != fd::File::Channel || n < want.min(DATA_CAPACITY) || done == len {
                    return done as i64;
                }
            }
            Err(e) if done == 0 => return e,
            Err(_) => return done as i64,
        }
    }
}

/// recvfrom on the channel: a read; the peer has no address.
fn sys_recvfrom(fd: u64, buf: u64, len: u64, addr: u64, addrlen: u64) -> i64 {
    if addr != 0 && addrlen != 0 {
        if !mm::user_range_ok(addrlen, 4, true) {
            return -EFAULT;
        }
        // SAFETY: 4 bytes checked writable.
        unsafe { core::ptr::write_unaligned(addrlen as *mut u32, 0) };
    }
    sys_read(fd, buf, len)
}

fn sys_readv(fd: u64, iov: u64, cnt: u64) -> i64 {
    let v = match iovecs(iov, cnt) {
        Ok(v) => v,
        Err(e) => return e,
    };
    // One exit: read into the first non-empty buffer (a short read is allowed).
    match v.iter().find(|[_, len]| *len != 0) {
        Some([base, len]) => sys_read(fd, *base, *len),
        None => 0,
    }
}

fn sys_brk(addr: u64) -> i64 {
    SPACE.with(|s| {
        if addr < s.brk_start || addr > s.brk_start + BRK_MAX {
            return s.brk as i64;
        }
        let (old_end, new_end) = (
            s.brk.next_multiple_of(PAGE_SIZE),
            addr.next_multiple_of(PAGE_SIZE),
        );
        if new_end > old_end {
            if mm::map_range(old_end, new_end, mm::prot_flags(3)).is_err() {
                mm::unmap_range(old_end, new_end);
                return s.brk as i64;
            }
        } else if new_end < old_end {
            mm::unmap_range(new_end, old_end);
        }
        s.brk = addr;
        addr as i64
    })
}

const MAP_SHARED: u64 = 0x01;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

fn page_range(addr: u64, len: u64) -> Option<(u64, u64)> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return None;
    }
    let end = addr.checked_add(len)?.checked_next_multiple_of(PAGE_SIZE)?;
    (end <= USER_TOP).then_some((addr, end))
}

fn sys_mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: u64, off: u64) -> i64 {
    let _ = (fd, off);
    if flags & MAP_ANONYMOUS == 0 || flags & MAP_SHARED != 0 {
        return -ENODEV; // file-backed and shared mappings are not supported
    }
    if len == 0 || len > 1 << 40 {
        return -EINVAL;
    }
    let size = len.next_multiple_of(PAGE_SIZE);
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        match page_range(addr, size) {
            Some((s, _)) => s,
            None => return -EINVAL,
        }
    } else {
        let next = SPACE.with(|s| {
            let n = s.mmap_next.checked_sub(size)?;
            (n > s.brk_start + BRK_MAX).then(|| {
                s.mmap_next = n;
                n
            })
        });
        match next {
            Some(n) => n,
            None => return -ENOMEM,
        }
    };
    if flags & MAP_FIXED != 0 {
        mm::unmap_range(start, start + size);
    }
    if prot & 7 == 0 {
        // PROT_NONE: address space only, backed when mprotect makes it accessible.
        return match mm::reserve(start, start + size) {
            Ok(()) => start as i64,
            Err(()) => -ENOMEM,
        };
    }
    if mm::map_range(start, start + size, mm::prot_flags(prot)).is_err() {
        mm::unmap_range(start, start + size);
        return -ENOMEM;
    }
    start as i64
}

fn sys_munmap(addr: u64, len: u64) -> i64 {
    match page_range(addr, len) {
        Some((s, e)) => {
            mm::unmap_range(s, e);
            0
        }
        None => -EINVAL,
    }
}

fn sys_mprotect(addr: u64, len: u64, prot: u64) -> i64 {
    match page_range(addr, len) {
        Some((s, e)) => match mm::protect_range(s, e, mm::prot_flags(prot)) {
            Ok(()) => 0,
            Err(()) => -ENOMEM,
        },
        None => -EINVAL,
    }
}

fn sys_madvise(addr: u64, len: u64, advice: u64) -> i64 {
    const MADV_DONTNEED: u64 = 4;
    match page_range(addr, len.max(1)) {
        Some((s, e)) => {
            if advice == MADV_DONTNEED {
                mm::zero_range(s, e);
            }
            0
        }
        None => -EINVAL,
    }
}

fn sys_ioctl(fd: u64, req: u64) -> i64 {
    const FIONBIO: u64 = 0x5421;
    const FIOCLEX: u64 = 0x5451;
    match (fd::get(fd), req) {
        (Err(e), _) => e,
        (Ok(_), FIONBIO) => 0,
        (Ok(_), FIOCLEX) => fd::fcntl(fd, 2, 1),
        // TIOCGWINSZ and every other terminal request: not a terminal.
        (Ok(_), _) => -ENOTTY,
    }
}

fn sys_uname(buf: u64) -> i64 {
    if !mm::user_range_ok(buf, 6 * 65, true) {
        return -EFAULT;
    }
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"keep",
        b"6.0.0-keep",
        b"#1 Keep",
        b"x86_64",
        b"(none)",
    ];
    for (i, f) in fields.iter().enumerate() {
        let dst = (buf + 65 * i as u64) as *mut u8;
        // SAFETY: 6 * 65 bytes were checked writable; every field is < 65 bytes.
        unsafe {
            core::ptr::write_bytes(dst, 0, 65);
            core::ptr::copy_nonoverlapping(f.as_ptr(), dst, f.len());
        }
    }
    0
}

fn sys_arch_prctl(code: u64, addr: u64) -> i64 {
    const ARCH_SET_FS: u64 = 0x1002;
    if code != ARCH_SET_FS {
        return -EINVAL;
    }
    if addr >= USER_TOP {
        return -EFAULT;
    }
    cpu::set_fs_base(addr);
    0
}

fn sys_clock_gettime(id: u64, ts: u64) -> i64 {
    if id > 11 {
        return -EINVAL;
    }
    if !mm::user_range_ok(ts, 16, true) {
        return -EFAULT;
    }
    match clock::now(id as u32) {
        Ok((sec, nsec)) => {
            // SAFETY: 16 bytes checked writable.
            unsafe { core::ptr::write_unaligned(ts as *mut [i64; 2], [sec, nsec]) };
            0
        }
        Err(e) => e,
    }
}

/// clock_getres: 1 ns for every clock `clock_gettime` serves (Linux's hrtimer
/// resolution; the coarse clocks here are read like the fine ones). A null `res`
/// only checks the id. (wasmtime-wasi's clock resolution unwraps the result.)
fn sys_clock_getres(id: u64, res: u64) -> i64 {
    if id > 11 {
        return -EINVAL;
    }
    if res == 0 {
        return 0;
    }
    if !mm::user_range_ok(res, 16, true) {
        return -EFAULT;
    }
    // SAFETY: 16 bytes checked writable.
    unsafe { core::ptr::write_unaligned(res as *mut [i64; 2], [0, 1]) };
    0
}

/// Monotonic clocks without an exit per read: the host's monotonic time is
/// extrapolated with the (invariant) TSC, at a rate measured against the host's
/// clock, and re-synchronised with the host every `RESYNC_NS`. Readings never go
/// backwards. The host's time was never trusted (only range-checked); this only
/// avoids asking it thousands of times a second (wasmtime-wasi and tokio read
/// CLOCK_MONOTONIC on every host call).
mod clock {
    use crate::cpu;
    use crate::global::Global;
    use crate::hostcall;

    const RESYNC_NS: u64 = 50_000_000;
    const CALIBRATE_NS: u64 = 2_000_000;

    struct State {
        /// Last host reading (ns) and the TSC then.
        base_ns: u64,
        base_tsc: u64,
        /// First host reading of the calibration.
        cal_ns: u64,
        cal_tsc: u64,
        /// ns per TSC tick, 32.32 fixed point; 0 until calibrated.
        rate: u64,
        last: u64,
        usable: Option<bool>,
    }

    static STATE: Global<State> = Global::new(State {
        base_ns: 0,
        base_tsc: 0,
        cal_ns: 0,
        cal_tsc: 0,
        rate: 0,
        last: 0,
        usable: None,
    });

    fn split(ns: u64) -> (i64, i64) {
        ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
    }

    pub fn now(id: u32) -> Result<(i64, i64), i64> {
        // CLOCK_MONOTONIC, _RAW, _COARSE, BOOTTIME share the host's monotonic clock.
        if !matches!(id, 1 | 4 | 6 | 7) {
            return hostcall::clock(id);
        }
        let usable = STATE.with(|s| *s.usable.get_or_insert_with(cpu::invariant_tsc));
        if !usable {
            return hostcall::clock(id);
        }
        let tsc = cpu::rdtsc();
        let guess = STATE.with(|s| {
            if s.rate == 0 || tsc < s.base_tsc {
                return None;
            }
            let delta = ((u128::from(tsc - s.base_tsc) * u128::from(s.rate)) >> 32) as u64;
            (delta < RESYNC_NS).then(|| {
                let ns = (s.base_ns + delta).max(s.last);
                s.last = ns;
                ns
            })
        });
        if let Some(ns) = guess {
            return Ok(split(ns));
        }
        let (sec, nsec) = hostcall::clock(1)?;
        let host = (sec as u64).saturating_mul(1_000_000_000) + nsec as u64;
        let tsc = cpu::rdtsc();
        let ns = STATE.with(|s| {
            if s.cal_tsc == 0 {
                (s.cal_ns, s.cal_tsc) = (host, tsc);
            } else if host >= s.cal_ns + CALIBRATE_NS && tsc > s.cal_tsc {
                let r = (u128::from(host - s.cal_ns) << 32) / u128::from(tsc - s.cal_tsc);
                s.rate = u64::try_from(r).unwrap_or(0);
                (s.cal_ns, s.cal_tsc) = (host, tsc);
            }
            (s.base_ns, s.base_tsc) = (host, tsc);
            let ns = host.max(s.last);
            s.last = ns;
            ns
        });
        Ok(split(ns))
    }
}

fn sys_getrandom(buf: u64, len: u64) -> i64 {
    let len = len.min(1 << 25);
    if !mm::user_range_ok(buf, len, true) {
        return -EFAULT;
    }
    let mut done = 0;
    while done < len {
        let Some(r) = cpu::random_u64() else {
            return if done == 0 { -EAGAIN } else { done as i64 };
        };
        let n = (len - done).min(8);
        // SAFETY: the range was checked writable; n <= 8 bytes of r.
        unsafe {
            core::ptr::copy_nonoverlapping(
                r.to_le_bytes().as_ptr(),
                (buf + done) as *mut u8,
                n as usize,
            )
        };
        done += n;
    }
    done as i64
}

const EAGAIN: i64 = 11;

/// poll/ppoll: a valid descriptor is ready for what its stream can do (a read or
/// write then waits in the host until it can proceed: there is no other thread
/// that could run meanwhile); other descriptors get POLLNVAL. With nothing ready,
/// a timeout is slept in the host; waiting forever would be a deadlock.
fn sys_poll(fds: u64, nfds: u64, timeout_ms: Option<u64>) -> i64 {
    const POLLIN: u16 = 0x1;
    const POLLOUT: u16 = 0x4;
    const POLLNVAL: u16 = 0x20;
    if nfds > 1024 {
        return -EINVAL;
    }
    if !mm::user_range_ok(fds, nfds * 8, true) || !fds.is_multiple_of(4) {
        return -EFAULT;
    }
    let mut ready = 0;
    for i in 0..nfds {
        let entry = fds + 8 * i;
        // SAFETY: the array was checked mapped and writable; struct pollfd is
        // { int fd; short events; short revents; }.
        unsafe {
            let fd = core::ptr::read(entry as *const i32);
            let events = core::ptr::read((entry + 4) as *const u16);
            let revents = if fd < 0 {
                0 // ignored, as Linux does
            } else {
                match fd::get(fd as u64) {
                    Ok(f) => {
                        let can = if f.readable() { POLLIN } else { 0 }
                            | if f.writable() { POLLOUT } else { 0 };
                        events & can
                    }
                    Err(_) => POLLNVAL,
                }
            };
            core::ptr::write((entry + 6) as *mut u16, revents);
            if revents != 0 {
                ready += 1;
            }
        }
    }
    if ready == 0 {
        match timeout_ms {
            Some(0) => {}
            Some(ms) => hostcall::sleep(ms.saturating_mul(1_000_000)),
            None if nfds == 0 => {
                hostcall::abort("deadlock: poll with no descriptors and no timeout")
            }
            None => hostcall::abort(
                "deadlock: poll waits forever on descriptors that cannot become ready",
            ),
        }
    }
    ready
}

/// poll's timeout argument: negative waits forever (None).
fn poll_timeout_ms(t: u64) -> Option<u64> {
    let t = t as i32;
    u64::try_from(t).ok()
}

/// A relative timespec at `ts` (NULL: forever) in milliseconds, rounded up.
pub(crate) fn timespec_ms(ts: u64) -> Result<Option<u64>, i64> {
    if ts == 0 {
        return Ok(None);
    }
    let ns = read_timespec_ns(ts)?;
    Ok(Some(ns.div_ceil(1_000_000)))
}

/// Reads a struct timespec and returns it in nanoseconds.
fn read_timespec_ns(ts: u64) -> Result<u64, i64> {
    if !mm::user_range_ok(ts, 16, false) {
        return Err(-EFAULT);
    }
    // SAFETY: 16 bytes checked mapped.
    let [sec, nsec] = unsafe { core::ptr::read_unaligned(ts as *const [i64; 2]) };
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(-EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

fn sys_nanosleep(req: u64) -> i64 {
    match read_timespec_ns(req) {
        Ok(ns) => {
            hostcall::sleep(ns);
            0
        }
        Err(e) => e,
    }
}

fn sys_clock_nanosleep(clock: u64, flags: u64, req: u64) -> i64 {
    const TIMER_ABSTIME: u64 = 1;
    let ns = match read_timespec_ns(req) {
        Ok(ns) => ns,
        Err(e) => return -e, // clock_nanosleep returns the error number itself
    };
    let ns = if flags & TIMER_ABSTIME != 0 {
        match hostcall::clock(clock as u32) {
            Ok((s, n)) => ns.saturating_sub((s as u64).saturating_mul(1_000_000_000) + n as u64),
            Err(e) => return -e,
        }
    } else {
        ns
    };
    hostcall::sleep(ns);
    0
}

/// futex for a Keep with one thread: a wake finds no waiter; a wait whose value
/// still matches can only end by its timeout (slept in the host); without a
/// timeout nobody could ever wake it, so the Keep stops with "deadlock".
fn sys_futex(uaddr: u64, op: u64, val: u64, timeout: u64) -> i64 {
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_WAKE: u64 = 1;
    const FUTEX_WAIT_BITSET: u64 = 9;
    const FUTEX_WAKE_BITSET: u64 = 10;
    const FUTEX_CLOCK_REALTIME: u64 = 256;
    let cmd = op & 0x7f;
    match cmd {
        FUTEX_WAKE | FUTEX_WAKE_BITSET => 0,
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if !uaddr.is_multiple_of(4) {
                return -EINVAL;
            }
            if !mm::user_range_ok(uaddr, 4, false) {
                return -EFAULT;
            }
            // SAFETY: 4 aligned bytes checked mapped.
            let cur = unsafe { core::ptr::read_volatile(uaddr as *const u32) };
            if cur != val as u32 {
                return -EAGAIN;
            }
            if timeout == 0 {
                hostcall::abort(
                    "deadlock: the Keep's only thread waits on a futex with no timeout",
                );
            }
            let ns = match read_timespec_ns(timeout) {
                Ok(ns) => ns,
                Err(e) => return e,
            };
            let ns = if cmd == FUTEX_WAIT_BITSET {
                // An absolute deadline on CLOCK_MONOTONIC (or REALTIME).
                let clock = if op & FUTEX_CLOCK_REALTIME != 0 { 0 } else { 1 };
                match hostcall::clock(clock) {
                    Ok((s, n)) => {
                        ns.saturating_sub((s as u64).saturating_mul(1_000_000_000) + n as u64)
                    }
                    Err(e) => return e,
                }
            } else {
                ns
            };
            hostcall::sleep(ns);
            -ETIMEDOUT
        }
        _ => -ENOSYS,
    }
}

fn sys_sched_getaffinity(len: u64, mask: u64) -> i64 {
    if len < 8 || !len.is_multiple_of(8) {
        return -EINVAL;
    }
    if !mm::user_range_ok(mask, 8, true) {
        return -EFAULT;
    }
    // SAFETY: 8 bytes checked writable. One CPU: bit 0.
    unsafe { core::ptr::write_unaligned(mask as *mut u64, 1) };
    8
}

/// kill/tkill/tgkill aimed at the payload itself (e.g. abort's SIGABRT): no signal
/// handler ever runs in the Keep, so a fatal signal ends it with 128 + signal.
fn sys_kill(sig: u64) -> i64 {
    if sig == 0 {
        return 0;
    }
    if sig > 64 {
        return -EINVAL;
    }
    hostcall::exit(128 + sig as i32)
}

fn sys_getcwd(buf: u64, size: u64) -> i64 {
    if size < 2 {
        return -ERANGE;
    }
    if !mm::user_range_ok(buf, 2, true) {
        return -EFAULT;
    }
    // SAFETY: 2 bytes checked writable.
    unsafe { core::ptr::copy_nonoverlapping(b"/\0".as_ptr(), buf as *mut u8, 2) };
    2
}

fn sys_lseek(fd: u64) -> i64 {
    match fd::get(fd) {
        Ok(_) => -ESPIPE,
        Err(e) => e,
    }
}

/// fstat: streams only; the mode says socket (channel) or character device.
fn sys_fstat(fd: u64, buf: u64) -> i64 {
    let file = match fd::get(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if !mm::user_range_ok(buf, 144, true) {
        return -EFAULT;
    }
    // SAFETY: 144 bytes (struct stat on x86_64) checked writable.
    unsafe {
        core::ptr::write_bytes(buf as *mut u8, 0, 144);
        core::ptr::write_unaligned((buf + 16) as *mut u64, 1); // st_nlink
        core::ptr::write_unaligned((buf + 24) as *mut u32, file.mode()); // st_mode
        core::ptr::write_unaligned((buf + 56) as *mut u64, 4096); // st_blksize
    }
    0
}

/// newfstatat(fd, "", buf, AT_EMPTY_PATH): fstat; any real path is ENOENT.
fn sys_fstatat(fd: u64, path: u64, buf: u64) -> i64 {
    if !mm::user_range_ok(path, 1, false) {
        return -EFAULT;
    }
    // SAFETY: 1 byte checked mapped.
    if unsafe { core::ptr::read(path as *const u8) } != 0 {
        return -ENOENT;
    }
    sys_fstat(fd, buf)
}

/// prlimit64 on the Keep itself: read-only. RLIMIT_STACK is the mapped stack;
/// everything else is unlimited (the host's limits are outside the Keep).
fn sys_prlimit64(pid: u64, resource: u64, new: u64, old: u64) -> i64 {
    const RLIMIT_STACK: u64 = 3;
    const EPERM: i64 = 1;
    if pid != 0 && pid != 1 {
        return -EINVAL;
    }
    if new != 0 {
        return -EPERM;
    }
    if old != 0 {
        if !mm::user_range_ok(old, 16, true) {
            return -EFAULT;
        }
        let v = if resource == RLIMIT_STACK {
            [STACK_SIZE, STACK_SIZE]
        } else {
            [u64::MAX, u64::MAX]
        };
        // SAFETY: 16 bytes checked writable.
        unsafe { core::ptr::write_unaligned(old as *mut [u64; 2], v) };
    }
    0
}
