//! The parsed manifest, the same for both formats.

use std::path::Path;

use keep_wire::{DirSpec, FdSpec, StdioTarget};

use crate::error::ManifestError;
use crate::source::Source;
use crate::{MAX_MANIFEST_BYTES, detect, enarx_format, keep_format, read};

/// Which format a manifest was written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    /// `Keep.toml`, this project's format.
    #[default]
    Keep,
    /// `Enarx.toml`, Enarx's format.
    Enarx,
}

/// Limits the workload asks for. The host may enforce lower ones; `None` leaves the
/// choice to the host. Never zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestedLimits {
    /// Total bytes of linear memories and tables.
    pub memory_bytes: Option<u64>,
    /// CPU time, in milliseconds.
    pub cpu_ms: Option<u64>,
    /// Wall-clock time, in milliseconds.
    pub wall_ms: Option<u64>,
    /// Bytes written to stdout and stderr together.
    pub output_bytes: Option<u64>,
    /// Files and sockets open at once, beyond stdio and the preopens.
    pub open_files: Option<u32>,
}

/// How the tenant asks for its workload to run.
///
/// `Manifest::default()` is what runs without a manifest: no arguments, an empty
/// environment, stdio inherited, no preopened directories or sockets, no limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The format it was read from.
    pub format: ManifestFormat,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// The workload's whole environment, sorted by name (byte order); the host's
    /// environment is never passed.
    pub env: Vec<(String, String)>,
    /// fds 0, 1 and 2.
    pub stdio: [StdioTarget; 3],
    /// Preopened directories, fds 3 onwards in this order. `source` is the host
    /// path, already joined to the manifest's directory when it was relative.
    pub dirs: Vec<DirSpec>,
    /// Preopened TCP sockets, after the directories. `host` is the address to bind
    /// (listen) or the host to connect to.
    pub sockets: Vec<FdSpec>,
    /// What the workload asks for.
    pub limits: RequestedLimits,
    /// One-line notes about accepted but ignored settings, in the same
    /// `path:line:column: message` form as errors.
    pub warnings: Vec<String>,
}

impl Manifest {
    /// Parses a manifest in either format. `origin` is where the text came from:
    /// it names the file in messages, relative directory paths are joined to its
    /// directory, and a file named `Enarx.toml` is read as Enarx's format.
    ///
    /// # Errors
    ///
    /// Any problem with the text, as a one-line [`ManifestError`]: too large, not
    /// TOML, an unknown or missing field, a value out of range, an unsupported
    /// setting.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ManifestError> {
        let src = Source::new(text, origin);
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                at: src.locate(None),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let table = toml::de::DeTable::parse(text).map_err(|e| src.toml_error(&e))?;
        let format = detect::format_of(origin, table.get_ref());
        let document = toml::de::Deserializer::from(table);
        match format {
            ManifestFormat::Keep => keep_format::parse(&src, document),
            ManifestFormat::Enarx => enarx_format::parse(&src, document),
        }
    }

    /// Reads (at most [`MAX_MANIFEST_BYTES`]) and parses the manifest at `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Read`] when the file cannot be read,
    /// [`ManifestError::NotUtf8`] when it is not text, and those of [`Manifest::parse`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let text = read::read_manifest(path)?;
        Self::parse(&text, path)
    }

    /// The name of every fd in order, as published in `FD_NAMES` (joined with
    /// `:`): `stdin`, `stdout`, `stderr`, the guest path of each directory, then
    /// the name of each socket. `FD_COUNT` is its length.
    #[must_use]
    pub fn fd_names(&self) -> Vec<String> {
        ["stdin", "stdout", "stderr"]
            .into_iter()
            .map(str::to_owned)
            .chain(self.dirs.iter().map(|dir| dir.guest_path.clone()))
            .chain(self.sockets.iter().map(|socket| socket.name.clone()))
            .collect()
    }
}
