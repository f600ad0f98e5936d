//! `[limits]` of Keep.toml: what the workload asks for.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::error::ManifestError;
use crate::manifest::RequestedLimits;
use crate::source::Source;
use crate::units::{parse_duration_ms, parse_size};

/// The `[limits]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsTable {
    memory: Option<Spanned<Bytes>>,
    cpu: Option<Spanned<Millis>>,
    wall: Option<Spanned<Millis>>,
    output: Option<Spanned<Bytes>>,
    open_files: Option<Spanned<u32>>,
}

/// Checks that no limit is zero.
pub(crate) fn lower_limits(
    src: &Source<'_>,
    table: LimitsTable,
) -> Result<RequestedLimits, ManifestError> {
    Ok(RequestedLimits {
        memory_bytes: positive(src, "memory", table.memory.map(|v| map(v, |b| b.0)))?,
        cpu_ms: positive(src, "cpu", table.cpu.map(|v| map(v, |m| m.0)))?,
        wall_ms: positive(src, "wall", table.wall.map(|v| map(v, |m| m.0)))?,
        output_bytes: positive(src, "output", table.output.map(|v| map(v, |b| b.0)))?,
        open_files: positive(src, "open_files", table.open_files)?,
    })
}

fn map<T, U>(value: Spanned<T>, f: impl FnOnce(T) -> U) -> Spanned<U> {
    let span = value.span();
    Spanned::new(span, f(value.into_inner()))
}

fn positive<T: Default + PartialEq>(
    src: &Source<'_>,
    field: &str,
    value: Option<Spanned<T>>,
) -> Result<Option<T>, ManifestError> {
    match value {
        Some(value) if *value.get_ref() == T::default() => Err(src.invalid(
            &value.span(),
            format!("limits.{field} must be greater than zero"),
        )),
        value => Ok(value.map(Spanned::into_inner)),
    }
}

/// A size: integer bytes, or a string for [`parse_size`].
struct Bytes(u64);

/// A duration: integer seconds, or a string for [`parse_duration_ms`].
struct Millis(u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnitVisitor::size()).map(Bytes)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UnitVisitor::duration())
            .map(Millis)
    }
}

/// Reads an integer (scaled) or a string (parsed) into a `u64`.
struct UnitVisitor {
    expecting: &'static str,
    integer_scale: u64,
    parse: fn(&str) -> Result<u64, String>,
}

impl UnitVisitor {
    fn size() -> Self {
        Self {
            expecting: "a size: integer bytes or a string such as \"256MiB\"",
            integer_scale: 1,
            parse: parse_size,
        }
    }

    fn duration() -> Self {
        Self {
            expecting: "a duration: integer seconds or a string such as \"10s\"",
            integer_scale: 1_000,
            parse: parse_duration_ms,
        }
    }
}

impl Visitor<'_> for UnitVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "{v} is negative; expected {}",
                self.expecting
            ))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        v.checked_mul(self.integer_scale)
            .ok_or_else(|| E::custom(format!("{v} is too large")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.parse)(v).map_err(E::custom)
    }
}
