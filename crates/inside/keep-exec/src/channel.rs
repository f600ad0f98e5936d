//! Adopting the launch channel on fd 3, and the greeting.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use keep_wire::{CHANNEL_FD, FrameKind, PROTOCOL_VERSION, WireError, write_json};

pub type Channel = UnixStream;

/// Takes ownership of the channel the launcher (or the shim) placed on fd 3.
pub fn adopt() -> Result<Channel, String> {
    // SAFETY: the exec's start-up contract is that the launcher (process backend) or
    // the shim (KVM Keep) placed the launch channel on fd 3 and that nothing else in
    // this process owns it; if fd 3 is not open, the check below forgets the handle
    // without closing it. This is the exec's only `unsafe` (std has no safe way to
    // adopt an inherited descriptor).
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
