//! Builds the exec as a static executable and embeds it in the host library.
//!
//! The exec is built by a nested `cargo build` in its own target directory
//! (`target/exec`), always with the `exec` profile (release, no debug info) and with `+crt-static`, so the same bytes
//! run as a child process and inside the KVM Keep. Its SHA-384 is the measurement of
//! that layer and is compiled in as `KEEP_EXEC_SHA384`.
//!
//! Set `KEEP_EXEC_BINARY=/path/to/keep-exec` to embed a prebuilt exec instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha384};

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    println!("cargo:rerun-if-env-changed=KEEP_EXEC_BINARY");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .ancestors()
        .nth(3)
        .expect("keep-host lives at crates/host/keep-host")
        .to_path_buf();

    let exec = match env::var_os("KEEP_EXEC_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_exec(&workspace),
    };
    let bytes = std::fs::read(&exec)
        .unwrap_or_else(|e| panic!("cannot read the exec at {}: {e}", exec.display()));
    let digest = hex::encode(Sha384::digest(&bytes));
    println!("cargo:rustc-env=KEEP_EXEC_PATH={}", exec.display());
    println!("cargo:rustc-env=KEEP_EXEC_SHA384={digest}");
}

fn build_exec(workspace: &Path) -> PathBuf {
    for dir in ["crates/inside", "crates/common", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    let target_dir = workspace.join("target").join("exec");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--profile",
            "exec",
            "-p",
            "keep-exec",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's settings must not leak into the exec's build.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_")
            && key != "CARGO_HOME"
            && key != "CARGO_MAKEFLAGS"
            && key != "CARGO_NET_OFFLINE"
            || matches!(
                key,
                "RUSTFLAGS" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTC_WRAPPER" | "RUSTDOCFLAGS"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    let status = cmd.status().expect("cannot run cargo to build the exec");
    assert!(status.success(), "building the exec (keep-exec) failed");
    target_dir.join(TARGET).join("exec").join("keep-exec")
}
