//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use keep_manifest::{Manifest, ManifestError};

/// Parses `text` as if read from `dir/Keep.toml`.
pub fn keep(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new("dir/Keep.toml"))
}

/// Parses `text` as if read from `dir/Enarx.toml`.
pub fn enarx(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new("dir/Enarx.toml"))
}

/// The error's one-line message; fails the test if parsing succeeded.
pub fn error(result: Result<Manifest, ManifestError>) -> String {
    match result {
        Ok(manifest) => panic!("expected an error, got {manifest:?}"),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "not one line: {message:?}");
            message
        }
    }
}

/// Asserts that the message starts with `prefix` and mentions every one of `parts`.
pub fn assert_error(message: &str, prefix: &str, parts: &[&str]) {
    assert!(
        message.starts_with(prefix),
        "{message:?} does not start with {prefix:?}"
    );
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("keep-manifest-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
