//! A nested `cargo build` for build scripts (used by keep-host to build the static
//! exec, and by keep-vmm to build the freestanding shim).
//!
//! Build-time only; trusts the workspace it builds. The nested build runs in its own
//! target directory, on the same toolchain, with none of the outer build's `CARGO_*`
//! settings or `RUSTFLAGS` (which would otherwise change the inner build's profile,
//! target or flags); the caller sets the flags the inner build needs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The only target this machine's toolchain has, and the one Keeps run.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The workspace root, `levels` directories above the calling crate's manifest.
pub fn workspace_root(levels: usize) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    manifest_dir
        .ancestors()
        .nth(levels)
        .expect("the crate lives that deep in the workspace")
        .to_path_buf()
}

/// `cargo build --profile <profile> -p <package> --target TARGET --target-dir
/// <workspace>/target/<dir>`, with the outer build's settings removed.
pub fn command(workspace: &Path, package: &str, profile: &str, dir: &str) -> Command {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            package,
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(target_dir(workspace, dir));
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if leaks_into_nested_build(key) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cmd` and returns the path of the binary it built.
pub fn run(mut cmd: Command, workspace: &Path, package: &str, profile: &str, dir: &str) -> PathBuf {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    assert!(status.success(), "building {package} failed");
    // Cargo names the `release`/`dev` profiles' directories `release`/`debug`.
    let profile_dir = match profile {
        "dev" => "debug",
        other => other,
    };
    target_dir(workspace, dir)
        .join(TARGET)
        .join(profile_dir)
        .join(package)
}

fn target_dir(workspace: &Path, dir: &str) -> PathBuf {
    workspace.join("target").join(dir)
}

/// Whether an environment variable of the outer build must not reach the inner one.
fn leaks_into_nested_build(key: &str) -> bool {
    key.starts_with("CARGO_")
        && !matches!(key, "CARGO_HOME" | "CARGO_MAKEFLAGS" | "CARGO_NET_OFFLINE")
        || matches!(
            key,
            "RUSTFLAGS" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTC_WRAPPER" | "RUSTDOCFLAGS"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outer_builds_settings_are_removed_but_not_cargo_home() {
        for key in [
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
        ] {
            assert!(leaks_into_nested_build(key), "{key}");
        }
        for key in [
            "CARGO_HOME",
            "CARGO_MAKEFLAGS",
            "CARGO_NET_OFFLINE",
            "PATH",
            "HOME",
        ] {
            assert!(!leaks_into_nested_build(key), "{key}");
        }
    }
}
