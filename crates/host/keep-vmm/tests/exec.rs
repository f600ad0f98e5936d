//! The real exec (the static glibc `keep-exec` that keep-host's build script puts in
//! target/exec) inside a Keep: it must get through libc and Rust start-up to its
//! own main, which then stops because the launch channel (fd 3) does not exist in
//! the Keep yet. Skipped when the exec has not been built.

mod common;

use std::path::PathBuf;

use common::have_kvm;
use keep_vmm::{Keep, KeepConfig, StdioServer};

#[test]
fn the_exec_reaches_main_and_asks_for_its_channel() {
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
        ..KeepConfig::default()
    };
    let keep = Keep::launch(config, &payload).expect("launch");
    let mut server = StdioServer::capture(Vec::new());
    // It ends through exit_group (not a fault or a refusal) with an error of its
    // own on stderr (today: exit 125, "no launch channel on fd 3"); the exact text
    // belongs to the exec, which changes independently.
    let exit = keep.run(&mut server).expect("the exec runs to an exit");
    let stderr = String::from_utf8_lossy(&server.stderr);
    assert_ne!(exit.code, 0, "stderr: {stderr}");
    assert!(stderr.contains("keep-exec"), "stderr: {stderr}");
}
