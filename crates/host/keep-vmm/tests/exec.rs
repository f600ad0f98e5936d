//! The real exec (the static glibc `keep-exec` that keep-host's build script puts in
//! target/exec) inside a Keep: it gets through libc and Rust start-up to its own
//! main, adopts the launch channel the shim serves on fd 3 (a socket, per fstat)
//! and greets the host on it: the VMM relays the bytes to our end of a socketpair.
//! Skipped when the exec has not been built.

mod common;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use common::have_kvm;
use keep_vmm::{Keep, KeepConfig, RelayServer};

#[test]
fn the_exec_greets_the_host_on_its_launch_channel() {
    if !have_kvm() {
        return;
    }
    let exec = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../target/exec/x86_64-unknown-linux-gnu/exec/keep-exec");
    let Ok(payload) = std::fs::read(&exec) else {
        eprintln!("skipped: {} has not been built", exec.display());
        return;
    };
    let config = KeepConfig {
        mem_size: 512 << 20,
        args: vec!["keep-exec".into()],
        env: vec!["KEEP_BACKEND=kvm".into()],
        ..KeepConfig::default()
    };
    let (mut host_end, vmm_end) = UnixStream::pair().expect("socketpair");
    let keep = Keep::launch(config, &payload).expect("launch");
    let vm = std::thread::spawn(move || {
        let mut server = RelayServer::new(
            None,
            Box::new(std::io::sink()),
            Box::new(std::io::sink()),
            Some(Box::new(vmm_end)),
        );
        keep.run(&mut server).map(|e| e.code)
    });
    // The Hello frame: kind 1, u32 LE length, then JSON with the protocol version.
    let mut header = [0u8; 8];
    host_end.read_exact(&mut header).expect("hello header");
    assert_eq!(u32::from_le_bytes(header[..4].try_into().unwrap()), 1);
    let len = u32::from_le_bytes(header[4..].try_into().unwrap()) as usize;
    assert!(len < 4096, "hello of {len} bytes");
    let mut body = vec![0u8; len];
    host_end.read_exact(&mut body).expect("hello body");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("\"protocol\""), "hello: {text}");
    assert!(text.contains("keep-exec"), "hello: {text}");
    // The host goes away: the exec sees the channel close and exits (its status
    // carries no meaning), it does not fault or hang.
    drop(host_end);
    let code = vm
        .join()
        .expect("vCPU thread")
        .expect("the exec runs to an exit");
    assert_ne!(code, 0);
}
