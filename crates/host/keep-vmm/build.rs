//! Builds the shim (`crates/inside/keep-shim`, `#![no_std]`) as a freestanding
//! static ELF with a nested `cargo build` in its own target directory
//! (`target/shim`), with the linker script and flags it needs, on the stable
//! toolchain and the host's x86_64-unknown-linux-gnu target. The VMM embeds the
//! bytes (`KEEP_SHIM_PATH`).
//!
//! Set `KEEP_SHIM_BINARY=/path/to/keep-shim` to embed a prebuilt shim instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    println!("cargo:rerun-if-env-changed=KEEP_SHIM_BINARY");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .ancestors()
        .nth(3)
        .expect("keep-vmm lives at crates/host/keep-vmm")
        .to_path_buf();
    let shim = match env::var_os("KEEP_SHIM_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_shim(&workspace),
    };
    println!("cargo:rustc-env=KEEP_SHIM_PATH={}", shim.display());
}

fn build_shim(workspace: &Path) -> PathBuf {
    let shim_dir = workspace.join("crates/inside/keep-shim");
    println!("cargo:rerun-if-changed={}", shim_dir.display());
    let target_dir = workspace.join("target").join("shim");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "keep-shim",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's settings must not leak into the shim's build.
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
    let script = shim_dir.join("shim.ld");
    let flags = [
        "-C panic=abort".to_string(),
        "-C relocation-model=static".into(),
        "-C code-model=large".into(),
        "-C debuginfo=0".into(),
        "-C strip=symbols".into(),
        "-C opt-level=s".into(),
        "-C link-arg=-nostartfiles".into(),
        "-C link-arg=-nostdlib".into(),
        "-C link-arg=-static".into(),
        "-C link-arg=-Wl,--build-id=none".into(),
        format!("-C link-arg=-T{}", script.display()),
    ];
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        flags.join("\x1f").replace(' ', "\x1f"),
    );
    let status = cmd.status().expect("cannot run cargo to build the shim");
    assert!(status.success(), "building the shim (keep-shim) failed");
    target_dir.join(TARGET).join("release").join("keep-shim")
}
