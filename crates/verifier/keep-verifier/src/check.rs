//! The record of one verification: every check and policy rule, by name, with its
//! outcome. A verifier never stops at the first failure; the caller sees all of them.
//!
//! A check either ran (passed or failed) or was skipped, and a skipped check says
//! so by name rather than being left out: [`Skipped::NotChecked`] when what it
//! needs was not supplied (no CRL: revocation was not checked),
//! [`Skipped::NotApplicable`] when the input it would judge does not concern this
//! evidence (a CRL of another issuer). A skipped check does not fail the evidence,
//! so its `passed` is true; a passed check may carry a note in `detail`.

use serde::Serialize;

/// Why a check did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Skipped {
    /// What the check needs was not supplied.
    NotChecked,
    /// The supplied input does not concern this evidence.
    NotApplicable,
}

impl Skipped {
    /// `not checked` or `not applicable`.
    pub fn text(self) -> &'static str {
        match self {
            Skipped::NotChecked => "not checked",
            Skipped::NotApplicable => "not applicable",
        }
    }
}

/// The outcome of one named check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable dotted name, e.g. `snp.report.signature` or `policy.snp.debug`.
    pub name: String,
    /// Whether the check passed (true for a skipped check: it failed nothing).
    pub passed: bool,
    /// What was found (on failure, why it failed; when skipped, why; on a pass, an
    /// optional note).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Set when the check did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
}

/// An ordered list of checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Checks(Vec<Check>);

impl Checks {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a passed check.
    pub fn pass(&mut self, name: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            passed: true,
            detail: String::new(),
            skipped: None,
        });
    }

    /// Records a passed check with a note the reader should see.
    pub fn pass_with_note(&mut self, name: impl Into<String>, note: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            passed: true,
            detail: note.into(),
            skipped: None,
        });
    }

    /// Records a check that did not run, and why.
    pub fn skip(&mut self, name: impl Into<String>, why: Skipped, detail: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            passed: true,
            detail: detail.into(),
            skipped: Some(why),
        });
    }

    /// Records a failed check with the reason.
    pub fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            passed: false,
            detail: detail.into(),
            skipped: None,
        });
    }

    /// Records `ok` as the outcome of `name`; `detail` is only built on failure.
    pub fn expect(&mut self, name: impl Into<String>, ok: bool, detail: impl FnOnce() -> String) {
        if ok {
            self.pass(name)
        } else {
            self.fail(name, detail())
        }
    }

    /// Records the outcome of a fallible step.
    pub fn result<E: std::fmt::Display>(
        &mut self,
        name: impl Into<String>,
        r: Result<(), E>,
    ) -> bool {
        match r {
            Ok(()) => {
                self.pass(name);
                true
            }
            Err(e) => {
                self.fail(name, e.to_string());
                false
            }
        }
    }

    /// True when no check failed (an empty list passes).
    pub fn all_passed(&self) -> bool {
        self.0.iter().all(|c| c.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.0.iter().filter(|c| !c.passed)
    }

    /// Every check, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Check> {
        self.0.iter()
    }

    /// Whether a check of this name was recorded and failed.
    pub fn failed(&self, name: &str) -> bool {
        self.0.iter().any(|c| c.name == name && !c.passed)
    }

    /// Whether a check of this name ran and passed.
    pub fn passed(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|c| c.name == name && c.passed && c.skipped.is_none())
    }

    /// Whether a check of this name was recorded as skipped for this reason.
    pub fn skipped(&self, name: &str, why: Skipped) -> bool {
        self.0
            .iter()
            .any(|c| c.name == name && c.skipped == Some(why))
    }

    /// Number of checks recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends another list.
    pub fn extend(&mut self, other: Checks) {
        self.0.extend(other.0)
    }
}
