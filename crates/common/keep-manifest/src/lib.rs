//! The tenant's manifest: how one workload runs inside a Keep.
//!
//! **Trust.** The manifest is written by the tenant, who owns the workload. This
//! crate treats its text as untrusted input: it is bounded in size
//! ([`MAX_MANIFEST_BYTES`]) before it is parsed, every list in it is bounded
//! ([`MAX_ENTRIES`]), unknown fields are errors, and nothing in it can make the
//! parser panic. The host runs the parser but must not be able to change what the
//! tenant wrote once the manifest is sealed (a later issue); nothing here relies on
//! the host for the meaning of a manifest. What the tenant asks for is a request:
//! limits in particular are an upper bound the host may lower, never raise.
//!
//! **What it does.** [`Manifest::parse`] (or [`Manifest::load`]) reads one of two
//! formats, told apart by their content:
//!
//! * `Keep.toml`, this project's format (documented in `docs/manifest.md`, with an
//!   example in `examples/Keep.toml`): arguments, environment, standard streams,
//!   preopened directories and TCP sockets, and requested limits;
//! * `Enarx.toml`, Enarx's format, accepted as Enarx writes it: arguments,
//!   environment and a `[[files]]` list whose position is the file descriptor.
//!
//! Both produce the same [`Manifest`], from which the launcher builds the
//! `keep_wire::LaunchSpec`. Parsing is purely lexical: no file is opened, no name
//! is resolved, relative directory paths are only joined to the manifest's
//! directory.
//!
//! Every error is one line, `<path>:<line>:<column>: <what is wrong>` when a
//! position in the file is known (1-based, columns counted in characters), and
//! `<path>: <what is wrong>` otherwise.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo
    )
)]

mod argv_env;
mod check;
mod detect;
mod dirs;
mod enarx_format;
mod error;
mod keep_format;
mod limits;
mod manifest;
mod position;
mod read;
mod sockets;
mod source;
mod units;

pub use error::{Location, ManifestError, Position};
pub use manifest::{Manifest, ManifestFormat, RequestedLimits};
pub use units::{parse_duration_ms, parse_size};

/// The text `keep init` writes: a short, commented, valid `Keep.toml`.
pub const STARTER: &str = include_str!("starter.toml");

/// The largest manifest accepted, in bytes (1 MiB).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// The most entries accepted in any one list: arguments, environment variables,
/// directories, sockets, and directories and sockets together.
pub const MAX_ENTRIES: usize = 4096;
