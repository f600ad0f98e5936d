//! The host's own directories (`keep run`'s cache, the agent's `data_dir`): where
//! they are, and that nobody but this user can put files in them.
//!
//! What is in them feeds the exec (compiled code from wasmtime's cache), so a
//! directory that another user can write is refused, never used or replaced by
//! another one: a missing directory is created mode 0700 (its missing parents too),
//! one that exists must be a directory of this user's (or root's) that neither its
//! group nor others can write.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a host directory is not used.
#[derive(Debug, Error)]
pub enum HostDirError {
    #[error("cannot create the directory {dir}: {source}")]
    Create { dir: String, source: std::io::Error },
    #[error("{dir} is not a directory")]
    NotDir { dir: String },
    #[error("{dir} belongs to another user (uid {owner}): refused, use a directory of this user's")]
    Owner { dir: String, owner: u32 },
    #[error(
        "{dir} is {who}-writable (mode {mode:04o}): refused, others could put files there (chmod go-w {dir}, or use a directory only this user can write)"
    )]
    Writable {
        dir: String,
        who: &'static str,
        mode: u32,
    },
}

/// Creates `dir` (0700) if it is missing, and checks that only this user (or root)
/// can write it.
pub fn ensure_private_dir(dir: &Path) -> Result<(), HostDirError> {
    let shown = dir.display().to_string();
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| HostDirError::Create {
                    dir: shown.clone(),
                    source,
                })?;
            std::fs::metadata(dir).map_err(|source| HostDirError::Create {
                dir: shown.clone(),
                source,
            })?
        }
        Err(source) => return Err(HostDirError::Create { dir: shown, source }),
    };
    if !meta.is_dir() {
        return Err(HostDirError::NotDir { dir: shown });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(HostDirError::Owner {
            dir: shown,
            owner: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (_, true) => "world",
        (true, false) => "group",
        (false, false) => return Ok(()),
    };
    Err(HostDirError::Writable {
        dir: shown,
        who,
        mode,
    })
}

/// Where `keep run` keeps compiled code: `$KEEP_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/keep`, else `~/.cache/keep`; None without any of them (then
/// nothing is cached: there is no fallback to a shared directory such as /tmp).
pub fn default_cache_dir() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("KEEP_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = set("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("keep"));
    }
    set("HOME").map(|home| PathBuf::from(home).join(".cache").join("keep"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_and_refused_when_others_can_write() {
        let base = std::env::temp_dir().join(format!("keep-host-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        // An existing 0755 directory is fine.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        for (m, who) in [(0o777, "world"), (0o1777, "world"), (0o775, "group")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
            let e = ensure_private_dir(&dir).unwrap_err().to_string();
            assert!(e.contains(&format!("is {who}-writable")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let file = base.join("f");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            ensure_private_dir(&file),
            Err(HostDirError::NotDir { .. })
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
