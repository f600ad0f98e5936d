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

use sha2::{Digest, Sha384};

fn main() {
    println!("cargo:rerun-if-env-changed=KEEP_EXEC_BINARY");
    // keep-host lives at crates/host/keep-host.
    let workspace = keep_nested_cargo::workspace_root(3);

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
    let (package, profile, dir) = ("keep-exec", "exec", "exec");
    let mut cmd = keep_nested_cargo::command(workspace, package, profile, dir);
    cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    keep_nested_cargo::run(cmd, workspace, package, profile, dir)
}
