//! What a backend runs as its Keep's process, and what of the host a jail around
//! it holds.

use std::os::fd::OwnedFd;

use command_fds::FdMapping;
use serde::{Deserialize, Serialize};

use crate::launch::LaunchError;

/// The program a backend runs as its Keep's process.
pub(crate) struct Program {
    /// The executable, on the host (opened once more to run it in a jail).
    pub(crate) path: std::path::PathBuf,
    /// Its arguments, argv[0] first.
    pub(crate) args: Vec<String>,
    /// Its whole environment.
    pub(crate) env: Vec<(String, String)>,
    /// Descriptors it gets besides 0-3 (at these numbers; duplicated for each
    /// spawn).
    pub(crate) extra_fds: Vec<(i32, OwnedFd)>,
    /// What the jail holds of the host: directories, files, devices.
    pub(crate) binds: Vec<Bind>,
    /// No network: the Keep declared no socket.
    pub(crate) isolate_network: bool,
    /// The TCP ports the Keep declared.
    pub(crate) tcp_ports: Vec<u16>,
    /// In a jail, the program installs its seccomp allow-list once set up
    /// (`KEEP_SECCOMP`: the exec after compiling, the VMM after launching).
    pub(crate) seccomp: bool,
}

impl Program {
    pub(crate) fn fds(&self) -> Result<Vec<FdMapping>, LaunchError> {
        self.extra_fds
            .iter()
            .map(|(child_fd, fd)| {
                Ok(FdMapping {
                    parent_fd: fd.try_clone().map_err(LaunchError::Channel)?,
                    child_fd: *child_fd,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Bind {
    pub(crate) source: String,
    /// An absolute path in the jail.
    pub(crate) target: String,
    pub(crate) writable: bool,
    /// A device or plain file (else a directory).
    pub(crate) file: bool,
    /// Not a mount: a symbolic link to this (as the host's /lib64 -> usr/lib64).
    #[serde(default)]
    pub(crate) symlink: Option<String>,
    /// Shared libraries (and the loader): Landlock lets them be executed.
    #[serde(default)]
    pub(crate) library: bool,
}

impl Bind {
    /// A directory at `target`.
    pub(crate) fn dir(source: &str, target: &str, writable: bool) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
            writable,
            file: false,
            symlink: None,
            library: false,
        }
    }

    /// These devices, where the host has them.
    pub(crate) fn devices(paths: &[&str]) -> Vec<Self> {
        paths
            .iter()
            .filter(|p| std::path::Path::new(p).exists())
            .map(|p| Self::device(p))
            .collect()
    }

    /// The host's shared libraries, read-only, for a dynamically linked program.
    pub(crate) fn system_libraries() -> Vec<Self> {
        ["/lib", "/lib64", "/usr/lib", "/usr/lib64"]
            .iter()
            .filter_map(|p| {
                let meta = std::fs::symlink_metadata(p).ok()?;
                if meta.is_symlink() {
                    // /lib -> usr/lib: the same link in the jail.
                    let to = std::fs::read_link(p).ok()?;
                    Some(Self {
                        symlink: Some(to.to_string_lossy().into_owned()),
                        ..Self::dir(p, p, false)
                    })
                } else {
                    meta.is_dir().then(|| Self {
                        library: true,
                        ..Self::dir(p, p, false)
                    })
                }
            })
            .collect()
    }

    /// A device (or file) at the same path.
    pub(crate) fn device(path: &str) -> Self {
        Self {
            source: path.into(),
            target: path.into(),
            writable: true,
            file: true,
            symlink: None,
            library: false,
        }
    }
}
