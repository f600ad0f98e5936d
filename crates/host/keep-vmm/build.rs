//! Builds the shim (`crates/inside/keep-shim`, `#![no_std]`) as a freestanding
//! static ELF with a nested `cargo build` in its own target directory
//! (`target/shim`), with the linker script and flags it needs, on the stable
//! toolchain and the host's x86_64-unknown-linux-gnu target. The VMM embeds the
//! bytes (`KEEP_SHIM_PATH`).
//!
//! Set `KEEP_SHIM_BINARY=/path/to/keep-shim` to embed a prebuilt shim instead.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=KEEP_SHIM_BINARY");
    // keep-vmm lives at crates/host/keep-vmm.
    let workspace = keep_nested_cargo::workspace_root(3);
    let shim = match env::var_os("KEEP_SHIM_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_shim(&workspace),
    };
    println!("cargo:rustc-env=KEEP_SHIM_PATH={}", shim.display());
}

fn build_shim(workspace: &Path) -> PathBuf {
    let shim_dir = workspace.join("crates/inside/keep-shim");
    println!("cargo:rerun-if-changed={}", shim_dir.display());
    let (package, profile, dir) = ("keep-shim", "release", "shim");
    let mut cmd = keep_nested_cargo::command(workspace, package, profile, dir);
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
    keep_nested_cargo::run(cmd, workspace, package, profile, dir)
}
