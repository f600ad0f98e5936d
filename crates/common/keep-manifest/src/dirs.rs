//! `[[dirs]]` of Keep.toml: preopened directories.

use std::path::{Path, PathBuf};

use keep_wire::DirSpec;
use serde::Deserialize;
use toml::Spanned;

use crate::check::{FdNames, find_control};
use crate::error::ManifestError;
use crate::source::Source;

/// The longest guest path accepted, in bytes.
const MAX_GUEST_PATH: usize = 4096;

/// One `[[dirs]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirEntry {
    host: Spanned<String>,
    guest: Spanned<String>,
    #[serde(default)]
    access: Access,
}

/// `access = "ro" | "rw"`.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Access {
    #[default]
    Ro,
    Rw,
}

/// Checks `dirs[index]` and resolves its host path against the manifest's directory.
pub(crate) fn lower_dir(
    src: &Source<'_>,
    names: &mut FdNames,
    index: usize,
    entry: DirEntry,
) -> Result<DirSpec, ManifestError> {
    let source = resolve_host(src, index, &entry.host)?;
    check_guest(src, index, &entry.guest)?;
    names.insert(
        src,
        &entry.guest.span(),
        "guest path",
        entry.guest.get_ref(),
    )?;
    Ok(DirSpec {
        source,
        guest_path: entry.guest.into_inner(),
        writable: matches!(entry.access, Access::Rw),
    })
}

/// Joins a relative host path to the manifest's directory; drops `.` components.
/// Nothing is opened or resolved on disk.
fn resolve_host(
    src: &Source<'_>,
    index: usize,
    host: &Spanned<String>,
) -> Result<String, ManifestError> {
    let text = host.get_ref();
    if text.is_empty() {
        return Err(src.invalid(&host.span(), format!("dirs[{index}].host is empty")));
    }
    if text.contains('\0') {
        return Err(src.invalid(
            &host.span(),
            format!("dirs[{index}].host contains a NUL byte"),
        ));
    }
    let base = src.origin.parent().unwrap_or(Path::new(""));
    let resolved: PathBuf = base.join(text).components().collect();
    match resolved.to_str() {
        Some(resolved) => Ok(resolved.to_owned()),
        None => Err(src.invalid(
            &host.span(),
            format!(
                "dirs[{index}].host resolves to {}, which is not UTF-8",
                resolved.display()
            ),
        )),
    }
}

/// A guest path is absolute and normal: `/` or `/a/b`, without empty, `.` or `..`
/// components, and without `:` (the separator of `FD_NAMES`).
fn check_guest(
    src: &Source<'_>,
    index: usize,
    guest: &Spanned<String>,
) -> Result<(), ManifestError> {
    let path = guest.get_ref().as_str();
    let fail =
        |why: &str| Err(src.invalid(&guest.span(), format!("dirs[{index}].guest {path:?} {why}")));
    if !path.starts_with('/') {
        return fail("must be an absolute path, such as \"/data\"");
    }
    if path.len() > MAX_GUEST_PATH {
        return fail(&format!("is longer than {MAX_GUEST_PATH} bytes"));
    }
    if path.contains(':') {
        return fail("contains ':', which separates the names in FD_NAMES");
    }
    if let Some(c) = find_control(path) {
        return fail(&format!("contains the control character {c:?}"));
    }
    if path == "/" {
        return Ok(());
    }
    for component in path.split('/').skip(1) {
        match component {
            ".." => return fail("must not contain \"..\""),
            "" | "." => {
                return fail("must be a normal path: no \"//\", \".\" or trailing \"/\"");
            }
            _ => {}
        }
    }
    Ok(())
}
