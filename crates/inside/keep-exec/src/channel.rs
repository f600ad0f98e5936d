//! What the exec inherits: the launch channel on fd 3 (adopted), every other
//! descriptor above it (closed), and the greeting.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use keep_wire::{CHANNEL_FD, FrameKind, PROTOCOL_VERSION, WireError, write_json};

pub type Channel = UnixStream;

/// Takes ownership of the channel the launcher (or the shim) placed on fd 3.
pub fn adopt() -> Result<Channel, String> {
    // SAFETY: the exec's start-up contract is that the launcher (process backend) or
    // the shim (KVM Keep) placed the launch channel on fd 3 and that nothing else in
    // this process owns it; if fd 3 is not open, the check below forgets the handle
    // without closing it. The exec's `unsafe` is here only (std has no safe way to
    // adopt or close an inherited descriptor).
    let fd = unsafe { OwnedFd::from_raw_fd(CHANNEL_FD) };
    match rustix::fs::fstat(&fd) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket => {}
        Ok(_) => {
            std::mem::forget(fd);
            return Err(format!(
                "fd {CHANNEL_FD} is not a socket; keep-exec is started by `keep`, not by hand"
            ));
        }
        Err(e) => {
            std::mem::forget(fd);
            return Err(format!(
                "no launch channel on fd {CHANNEL_FD} ({e}); keep-exec is started by `keep`, not by hand"
            ));
        }
    }
    let stream = UnixStream::from(fd);
    rustix::io::fcntl_setfd(&stream, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| format!("launch channel: {e}"))?;
    Ok(stream)
}

/// Closes every descriptor above the launch channel that the exec inherited: on
/// the process backend the host's own (listening sockets, pipes, files it got from
/// whoever started it) must not reach the Keep. Runs first thing in `main`, before
/// anything else in the exec has opened a descriptor. Not in a KVM Keep (the shim
/// gives the exec only its own).
pub fn close_inherited() -> Result<(), String> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| format!("cannot list inherited descriptors: {e}"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > CHANNEL_FD)
        .collect();
    // The listing's own descriptor is in the list, and closed by now: skipped below.
    for raw in listed {
        // SAFETY: nothing in this process owns a descriptor above fd 3 yet (this runs
        // before the exec opens any but the listing above, which is closed), so
        // adopting one to close it breaks no owner; `fcntl_getfd` first tells a
        // closed number (EBADF), which is left alone.
        let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
        if rustix::io::fcntl_getfd(borrowed).is_ok() {
            // SAFETY: as above: open, and owned by nobody else.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Hello {
    protocol: u32,
    exec: &'static str,
}

/// Sends the greeting: protocol version and exec identity.
pub fn hello(channel: &mut Channel) -> Result<(), WireError> {
    write_json(
        channel,
        FrameKind::Hello,
        &Hello {
            protocol: PROTOCOL_VERSION,
            exec: concat!("keep-exec ", env!("CARGO_PKG_VERSION")),
        },
    )
}
