//! The boundary between the VMM and the shim: guest-physical layout, the boot
//! parameters page, and the host-call block. This one file is compiled into both
//! (the VMM includes it with `#[path]`), so the two sides cannot drift apart.
//! Plain constants and `repr(C)` layouts only: no dependencies, no `unsafe`.

/// Where guest-physical memory is mapped in the shim's address space (the direct
/// map). PVM guests may only use the lower half, so this sits at 64 TiB, above any
/// user address the shim hands out.
pub const DIRECT_MAP_BASE: u64 = 0x4000_0000_0000;
/// First address above the payload's (user) part of the address space.
pub const USER_TOP: u64 = DIRECT_MAP_BASE;

pub const PAGE_SIZE: u64 = 4096;

/// Boot parameters page (written by the VMM, measured).
pub const BOOT_INFO_GPA: u64 = 0x1000;
/// The VMM's initial page tables: PML4, one PDPT, four PDs (2 MiB pages over 4 GiB).
pub const BOOT_PML4_GPA: u64 = 0x2000;
pub const BOOT_PDPT_GPA: u64 = 0x3000;
pub const BOOT_PD_GPA: u64 = 0x4000;
pub const BOOT_PD_COUNT: u64 = 4;
/// Descriptor tables the VMM builds for the shim: GDT (TSS descriptor at 0x40) and
/// the 64-bit TSS behind it, the IDT, and the stack exceptions are delivered on.
pub const BOOT_GDT_GPA: u64 = 0x8000;
pub const BOOT_TSS_GPA: u64 = 0x8100;
pub const BOOT_IDT_GPA: u64 = 0x9000;
pub const FAULT_STACK_TOP_GPA: u64 = 0x1_0000;
/// Selectors. 0x33/0x2b are the host's user selectors, which PVM requires for
/// guest user mode; 0x10 is the (emulated) supervisor code segment.
pub const KERNEL_CS: u16 = 0x10;
pub const USER_CS: u16 = 0x33;
pub const USER_DS: u16 = 0x2b;
pub const TSS_SEL: u16 = 0x40;
/// Fixed entry points at the start of the shim's text (`.text.entry`), so the
/// VMM can point the IDT and LSTAR at them without reading symbols.
pub const SHIM_TEXT: u64 = DIRECT_MAP_BASE + SHIM_GPA;
pub const ENTRY_START: u64 = SHIM_TEXT;
pub const ENTRY_SYSCALL: u64 = SHIM_TEXT + 0x40;
pub const ENTRY_FLUSH: u64 = SHIM_TEXT + 0x80;
/// Fault stub for vector v (0..32) at ENTRY_FAULTS + 16 * v.
pub const ENTRY_FAULTS: u64 = SHIM_TEXT + 0x100;
/// The host-call block: shared with the host.
pub const CALL_BLOCK_GPA: u64 = 0x1_0000;
/// 896 KiB, everything up to the shim image: every exit costs ~50 µs on PVM, so
/// the more a WRITE or READ carries, the better (staged stdout goes out in blocks
/// of ~896 KiB: ~1.1 exits per MiB).
pub const CALL_BLOCK_SIZE: u64 = 0xE_0000;
/// The shim image (ELF segments at `vaddr - DIRECT_MAP_BASE`).
pub const SHIM_GPA: u64 = 0x10_0000;
pub const SHIM_MAX: u64 = 0x30_0000;
/// The payload's file bytes, as loaded by the VMM (the shim parses them).
pub const PAYLOAD_GPA: u64 = 0x40_0000;
/// The doorbell: a store here is an MMIO exit (no memory backs it).
pub const DOORBELL_GPA: u64 = 0xC000_0000;
/// Largest guest memory: everything below the doorbell.
pub const MAX_MEM_SIZE: u64 = DOORBELL_GPA;
/// Smallest guest memory.
pub const MIN_MEM_SIZE: u64 = 8 << 20;

pub const BOOT_MAGIC: u64 = 0x3150_4545_4b5f_4d56; // "VM_KEEP1"
/// Bytes of argv/envp strings the boot page can carry.
pub const BOOT_STRINGS_MAX: usize = 3072;

/// Boot parameters, at `BOOT_INFO_GPA`. Strings: argv then envp, each NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BootInfo {
    pub magic: u64,
    pub mem_size: u64,
    pub payload_len: u64,
    pub argc: u32,
    pub envc: u32,
    pub strings_len: u32,
    pub _pad: u32,
    pub strings: [u8; BOOT_STRINGS_MAX],
}

/// Host-call numbers.
pub mod call {
    /// args: fd, offset, len. ret: bytes written (0..=len) or -errno.
    pub const WRITE: u32 = 1;
    /// args: fd, offset, len. ret: bytes read (0..=len) or -errno; val[0]: offset of the data.
    pub const READ: u32 = 2;
    /// args: exit code, peak bytes of guest memory the shim allocated (a
    /// statistic), frames refused because guest memory was used up (the host
    /// reports a Keep that ended so as having hit its memory limit). No reply.
    pub const EXIT: u32 = 3;
    /// args: clock id. ret: 0 or -errno; val[0]: seconds, val[1]: nanoseconds.
    pub const CLOCK: u32 = 4;
    /// args: vector, error code, rip, cr2. No reply: the Keep stops.
    pub const FAULT: u32 = 5;
    /// args: offset, len of a log line. ret ignored.
    pub const LOG: u32 = 6;
    /// args: offset, len of the reason. No reply: the shim refused something and stops.
    pub const ABORT: u32 = 7;
    /// args: nanoseconds. The VMM sleeps (at most until a limit stops the Keep);
    /// the reply is ignored. For timeouts of the payload's only thread.
    pub const SLEEP: u32 = 8;
    /// A file-system call on a preopened directory (see [`super::fs`]): args[0] =
    /// the operation, args[1] = bytes of the request in the data area (8 words,
    /// then the paths and data they name by offset and length). ret = result or
    /// -errno; for operations that return bytes, val[0] = their offset in the data
    /// area, val[1] = their length.
    pub const FILE: u32 = 9;
    /// Preopened TCP sockets (see [`sock`](super::sock)): the same framing as FILE
    /// (args: operation, request length; 8 words then data in the data area).
    pub const SOCKET: u32 = 10;
}

/// Operations of the SOCKET host call. The VMM binds and connects the sockets the
/// launch spec declares and names them by handle (below [`sock::MAX_HANDLES`]);
/// declared socket `i` is handle `i`, which the exec opens by the path
/// [`sock::PATH_PREFIX`]`<i>`; accepted connections get handles above them. Calls on
/// a socket the guest left blocking wait in the VMM for at most [`sock::SLICE_MS`]
/// and then reply -EAGAIN with val[2] = [`sock::RETRY`], so the shim asks again
/// (and a watchdog kill is seen between two calls).
pub mod sock {
    /// ret = how many sockets the spec declared (handles 0..ret).
    pub const COUNT: u64 = 1;
    /// w0 = listener. ret = new handle; the peer's sockaddr at val[0], length val[1].
    pub const ACCEPT: u64 = 2;
    /// w0 = handle, w1 = max bytes, w2 = flags (MSG_PEEK). ret = bytes at val[0].
    pub const RECV: u64 = 3;
    /// w0 = handle, w1/w2 = bytes (offset, len). ret = bytes sent.
    pub const SEND: u64 = 4;
    /// w0 = handle, w1 = how (SHUT_RD/WR/RDWR).
    pub const SHUTDOWN: u64 = 5;
    /// w0 = handle, w1 = 1 for non-blocking.
    pub const SET_NONBLOCK: u64 = 6;
    /// w0 = handle. ret = 1 if non-blocking, else 0.
    pub const GET_NONBLOCK: u64 = 7;
    /// w1 = entries, w2 = timeout in ms (u64::MAX: none); entries at REQUEST_DATA,
    /// 8 bytes each (handle u32, events u16, 0u16). ret = ready entries; the
    /// revents (u16 each) at val[0]; val[1] = ms waited.
    pub const POLL: u64 = 8;
    /// w0 = handle.
    pub const CLOSE: u64 = 9;
    /// w0 = handle, w1 = 0 for the local address, 1 for the peer's. ret = 0, the
    /// sockaddr at val[0], length val[1].
    pub const NAME: u64 = 10;
    /// w0 = handle. ret = bytes ready to read (ioctl FIONREAD), <= i32::MAX.
    pub const FIONREAD: u64 = 11;
    /// A new TCP socket (preview 2 `wasi:sockets`), only when the VMM serves
    /// sockets dynamically: w0 = family (2 AF_INET, 10 AF_INET6). ret = handle.
    pub const OPEN: u64 = 12;
    /// w0 = handle, w1/w2 = sockaddr (offset, len). The VMM allows only the
    /// addresses the spec declares (see `SocketServer::dynamic`): -EACCES else.
    pub const BIND: u64 = 13;
    /// w0 = handle, w1 = backlog.
    pub const LISTEN: u64 = 14;
    /// w0 = handle, w1/w2 = sockaddr. Non-blocking: -EINPROGRESS, then -EALREADY
    /// or 0 as Linux; blocking: waits in slices (RETRY).
    pub const CONNECT: u64 = 15;
    /// w0 = handle, w1 = level, w2 = option (a fixed list of integer options).
    /// ret = the value (SO_ERROR: the pending error number, cleared).
    pub const GETOPT: u64 = 16;
    /// w0 = handle, w1 = level, w2 = option, w3 = value (as i32).
    pub const SETOPT: u64 = 17;
    /// Handles the VMM hands out are below this.
    pub const MAX_HANDLES: u64 = 1024;
    /// Sockets a spec may declare.
    pub const MAX_DECLARED: u64 = 64;
    /// Guest paths the exec opens declared socket `i` by on kvm.
    pub const PATH_PREFIX: &str = "/.keep/sock/";
    /// Longest wait of one call, in ms.
    pub const SLICE_MS: u64 = 100;
    /// val[2] of a -EAGAIN reply that means "still blocking, ask again".
    pub const RETRY: u64 = 1;
    /// Largest sockaddr (sockaddr_in6).
    pub const MAX_ADDR: u64 = 28;
    /// Most entries of one POLL.
    pub const MAX_POLL: u64 = 1024;
}

/// File-system operations of the FILE host call. Handles are the VMM's numbers
/// for files it opened (below [`fs::MAX_HANDLES`](fs::MAX_HANDLES)); paths are
/// (offset, length) pairs in the data area, no NUL. The VMM resolves every path
/// beneath the handle it is relative to (openat2 with RESOLVE_BENEATH).
pub mod fs {
    /// w0 = preopen index, w1 = open flags (without O_PATH the VMM opens the
    /// directory for reading). ret = handle of that preopened directory.
    pub const PREOPEN: u64 = 1;
    /// w0 = dir handle, w1/w2 = path, w3 = open flags, w4 = mode, w5 = resolve flags.
    /// ret = new handle.
    pub const OPENAT: u64 = 2;
    /// w0 = handle.
    pub const CLOSE: u64 = 3;
    /// w0 = handle, w1 = max bytes, w2 = file offset or u64::MAX (current position).
    /// ret = bytes (<= max) at val[0].
    pub const READ: u64 = 4;
    /// w0 = handle, w1/w2 = bytes, w3 = file offset or u64::MAX. ret = bytes written.
    pub const WRITE: u64 = 5;
    /// w0 = handle, w1 = offset, w2 = whence. ret = new position.
    pub const SEEK: u64 = 6;
    /// w0 = handle, w1/w2 = path (empty: the handle itself), w3 = AT_* flags.
    /// ret = 0, a 144-byte struct stat at val[0] (val[1] = 144).
    pub const STAT: u64 = 7;
    /// w0 = handle, w1 = max bytes. ret = bytes of linux_dirent64 records at val[0].
    pub const GETDENTS: u64 = 8;
    /// w0 = handle, w1/w2 = path, w3 = mode.
    pub const MKDIR: u64 = 9;
    /// w0 = handle, w1/w2 = path, w3 = AT_REMOVEDIR or 0.
    pub const UNLINK: u64 = 10;
    /// w0/w1/w2 = old handle and path, w3/w4/w5 = new handle and path, w6 = flags.
    pub const RENAME: u64 = 11;
    /// w0 = handle, w1/w2 = path, w3 = max. ret = bytes of the target at val[0].
    pub const READLINK: u64 = 12;
    /// w0/w1 = target (offset, len), w2 = handle, w3/w4 = path.
    pub const SYMLINK: u64 = 13;
    /// w0/w1/w2 = old handle and path, w3/w4/w5 = new handle and path.
    pub const LINK: u64 = 14;
    /// w0 = handle, w1 = length.
    pub const TRUNCATE: u64 = 15;
    /// w0 = handle, w1 = 1 for fdatasync.
    pub const SYNC: u64 = 16;
    /// w0 = handle, w1/w2 = path, w3 = flags, w4..w7 = atime s, ns, mtime s, ns.
    pub const UTIMES: u64 = 17;
    /// w0 = handle. ret = the file status flags (F_GETFL).
    pub const GETFL: u64 = 18;
    /// Handles the VMM hands out are below this.
    pub const MAX_HANDLES: u64 = 4096;
    /// Bytes of the fixed request words at the start of the data area.
    pub const REQUEST_WORDS: usize = 8;
    /// Where a request's variable part (paths, data) starts in the data area.
    pub const REQUEST_DATA: u64 = 64;
    /// Guest paths the exec opens preopened directory `i` by (keep-host rewrites
    /// the launch spec's sources to these on kvm).
    pub const PREOPEN_PREFIX: &str = "/.keep/dir/";
}

/// Header of the call block, at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct CallHeader {
    pub nr: u32,
    pub _pad: u32,
    pub args: [u64; 4],
    pub ret: i64,
    pub val: [u64; 3],
}

/// Offset of the data area inside the call block.
pub const CALL_DATA_OFFSET: u64 = 0x100;
/// Output the shim has staged but not yet sent: `fd: u32, len: u32` at this offset
/// of the block, the bytes at the start of the data area. The shim batches small
/// stdout/stderr writes there and sends them with one WRITE when the area is full,
/// before any other host call, and before it exits. If the Keep stops without that
/// (a fault, a limit, a kill), the VMM delivers what is recorded here.
pub const PENDING_OFFSET: u64 = 0x80;
/// Largest errno the host may return (as -errno).
pub const MAX_ERRNO: i64 = 4095;

// The layout does not overlap (checked when either side compiles).
const _: () = {
    assert!(BOOT_INFO_GPA + PAGE_SIZE <= BOOT_PML4_GPA);
    assert!(BOOT_PD_GPA + BOOT_PD_COUNT * PAGE_SIZE <= BOOT_GDT_GPA);
    assert!(BOOT_TSS_GPA + 0x68 <= BOOT_IDT_GPA);
    assert!(BOOT_IDT_GPA + 32 * 16 <= FAULT_STACK_TOP_GPA - 0x4000);
    assert!(FAULT_STACK_TOP_GPA <= CALL_BLOCK_GPA);
    assert!(CALL_BLOCK_GPA + CALL_BLOCK_SIZE <= SHIM_GPA);
    assert!(CALL_BLOCK_SIZE - CALL_DATA_OFFSET <= u32::MAX as u64); // PENDING's len
    assert!(SHIM_GPA + SHIM_MAX <= PAYLOAD_GPA);
    assert!(core::mem::size_of::<BootInfo>() as u64 <= PAGE_SIZE);
    assert!(core::mem::size_of::<CallHeader>() as u64 <= PENDING_OFFSET);
    assert!(PENDING_OFFSET + 8 <= CALL_DATA_OFFSET);
    assert!(DOORBELL_GPA >= MAX_MEM_SIZE);
};
