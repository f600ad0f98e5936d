//! `args` and `[env]`, which both formats write the same way.

use std::collections::BTreeMap;

use toml::Spanned;

use crate::MAX_ENTRIES;
use crate::check::at_most;
use crate::error::ManifestError;
use crate::source::Source;

/// `args = ["..", ..]`: the arguments after `argv[0]`.
pub(crate) type ArgsField = Option<Spanned<Vec<Spanned<String>>>>;

/// `[env]`: variable names to values. A map, so the result is sorted by name.
pub(crate) type EnvField = Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>;

/// Variables the runtime sets itself, which the manifest may not set.
const RESERVED_ENV: &[&str] = &["FD_COUNT", "FD_NAMES"];

/// Checks the arguments: none may contain a NUL, as each becomes a C string.
pub(crate) fn lower_args(src: &Source<'_>, field: ArgsField) -> Result<Vec<String>, ManifestError> {
    let Some(args) = field else {
        return Ok(Vec::new());
    };
    let span = args.span();
    let args = args.into_inner();
    at_most(src, &span, "args", args.len(), MAX_ENTRIES)?;
    args.into_iter()
        .enumerate()
        .map(|(index, arg)| {
            if arg.get_ref().contains('\0') {
                return Err(src.invalid(&arg.span(), format!("args[{index}] contains a NUL byte")));
            }
            Ok(arg.into_inner())
        })
        .collect()
}

/// Checks the environment and returns it sorted by name (byte order).
pub(crate) fn lower_env(
    src: &Source<'_>,
    field: EnvField,
) -> Result<Vec<(String, String)>, ManifestError> {
    let Some(env) = field else {
        return Ok(Vec::new());
    };
    let span = env.span();
    let env = env.into_inner();
    at_most(src, &span, "env", env.len(), MAX_ENTRIES)?;
    env.into_iter()
        .map(|(name, value)| {
            let key = name.get_ref();
            if key.is_empty() {
                return Err(src.invalid(&name.span(), "an environment variable name is empty"));
            }
            if key.contains('=') || key.contains('\0') {
                return Err(src.invalid(
                    &name.span(),
                    format!("environment variable name {key:?} contains '=' or a NUL byte"),
                ));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return Err(src.invalid(
                    &name.span(),
                    format!("env.{key} is set by Keep from the preopened fds; remove it"),
                ));
            }
            if value.get_ref().contains('\0') {
                return Err(src.invalid(&value.span(), format!("env.{key} contains a NUL byte")));
            }
            Ok((name.into_inner(), value.into_inner()))
        })
        .collect()
}
