//! Keep.toml: this project's manifest format (see `docs/manifest.md`).

use keep_wire::StdioTarget;
use serde::Deserialize;
use toml::Spanned;

use crate::MAX_ENTRIES;
use crate::argv_env::{ArgsField, EnvField, lower_args, lower_env};
use crate::check::{FdNames, at_most};
use crate::dirs::{DirEntry, lower_dir};
use crate::error::ManifestError;
use crate::limits::{LimitsTable, lower_limits};
use crate::manifest::{Manifest, ManifestFormat};
use crate::sockets::{SocketEntry, lower_keep_socket};
use crate::source::Source;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepFile {
    args: ArgsField,
    env: EnvField,
    #[serde(default)]
    stdio: StdioTable,
    dirs: Option<Spanned<Vec<DirEntry>>>,
    sockets: Option<Spanned<Vec<Spanned<SocketEntry>>>>,
    #[serde(default)]
    limits: LimitsTable,
}

/// `[stdio]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StdioTable {
    #[serde(default)]
    stdin: Stdio,
    #[serde(default)]
    stdout: Stdio,
    #[serde(default)]
    stderr: Stdio,
}

/// `"inherit" | "null"`.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Stdio {
    #[default]
    Inherit,
    Null,
}

impl From<Stdio> for StdioTarget {
    fn from(stdio: Stdio) -> Self {
        match stdio {
            Stdio::Inherit => Self::Inherit,
            Stdio::Null => Self::Null,
        }
    }
}

/// Reads and checks a Keep.toml document.
pub(crate) fn parse(
    src: &Source<'_>,
    document: toml::de::Deserializer<'_>,
) -> Result<Manifest, ManifestError> {
    let file = KeepFile::deserialize(document).map_err(|e| src.toml_error(&e))?;

    let args = lower_args(src, file.args)?;
    let env = lower_env(src, file.env)?;

    let mut names = FdNames::new();
    let mut preopens = 0;
    let mut dirs = Vec::new();
    if let Some(entries) = file.dirs {
        let span = entries.span();
        let entries = entries.into_inner();
        at_most(src, &span, "dirs", entries.len(), MAX_ENTRIES)?;
        preopens += entries.len();
        for (index, entry) in entries.into_iter().enumerate() {
            dirs.push(lower_dir(src, &mut names, index, entry)?);
        }
    }
    let mut sockets = Vec::new();
    if let Some(entries) = file.sockets {
        let span = entries.span();
        let entries = entries.into_inner();
        at_most(src, &span, "sockets", entries.len(), MAX_ENTRIES)?;
        preopens += entries.len();
        at_most(
            src,
            &span,
            "dirs and sockets together",
            preopens,
            MAX_ENTRIES,
        )?;
        for (index, entry) in entries.into_iter().enumerate() {
            sockets.push(lower_keep_socket(src, &mut names, index, entry)?);
        }
    }

    Ok(Manifest {
        format: ManifestFormat::Keep,
        args,
        env,
        stdio: [
            file.stdio.stdin.into(),
            file.stdio.stdout.into(),
            file.stdio.stderr.into(),
        ],
        dirs,
        sockets,
        limits: lower_limits(src, file.limits)?,
        warnings: Vec::new(),
    })
}
