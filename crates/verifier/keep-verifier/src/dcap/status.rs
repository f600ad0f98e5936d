//! TCB statuses and how Intel combines them.
//!
//! A TCB level in the TCB info, a TDX module TCB level and a QE identity TCB level
//! each carry a status. The statuses of the levels that match the evidence are
//! combined the way Intel's Quote Verification Library does it:
//!
//! * a second status that is `OutOfDate` makes an `UpToDate` or `SWHardeningNeeded`
//!   status `OutOfDate`, and a `ConfigurationNeeded` or
//!   `ConfigurationAndSWHardeningNeeded` status `OutOfDateConfigurationNeeded`;
//! * a second status that is `Revoked` makes the result `Revoked`;
//! * otherwise the first status stands.
//!
//! That rule is applied first with the TDX module status (TDX only), then with the
//! QE identity status (for the QE, any status other than `UpToDate` and `Revoked`
//! counts as `OutOfDate`). `Revoked` is the only status that says the evidence is
//! not genuine; the others are a matter of policy.

use serde::{Deserialize, Serialize};

/// The status of a TCB level, or of a combination of levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
pub enum TcbStatus {
    /// The TCB is current.
    UpToDate,
    /// Current, but software mitigations for advisories are needed.
    SWHardeningNeeded,
    /// Current, but the platform configuration needs a change (e.g. SMT, memory
    /// integrity) to be protected against some advisories.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// A newer TCB fixes known advisories.
    OutOfDate,
    /// Out of date, and configuration is needed.
    OutOfDateConfigurationNeeded,
    /// TDX 1.5 only (result, never a level): the platform was updated with a
    /// TD-preserving TDX module update and is current once this TD is relaunched.
    #[serde(rename = "TDRelaunchAdvised")]
    TdRelaunchAdvised,
    /// As `TDRelaunchAdvised`, with configuration needed.
    #[serde(rename = "TDRelaunchAdvisedConfigurationNeeded")]
    TdRelaunchAdvisedConfigurationNeeded,
    /// The TCB is revoked: the evidence must not be trusted.
    Revoked,
}

impl TcbStatus {
    /// The statuses a TCB info level may carry (Intel's names).
    pub fn from_level_name(s: &str) -> Option<Self> {
        Some(match s {
            "UpToDate" => TcbStatus::UpToDate,
            "SWHardeningNeeded" => TcbStatus::SWHardeningNeeded,
            "ConfigurationNeeded" => TcbStatus::ConfigurationNeeded,
            "ConfigurationAndSWHardeningNeeded" => TcbStatus::ConfigurationAndSWHardeningNeeded,
            "OutOfDate" => TcbStatus::OutOfDate,
            "OutOfDateConfigurationNeeded" => TcbStatus::OutOfDateConfigurationNeeded,
            "Revoked" => TcbStatus::Revoked,
            _ => return None,
        })
    }

    /// Intel's name of the status.
    pub fn name(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::Revoked => "Revoked",
        }
    }

    /// Whether evidence with this status can be genuine (everything but `Revoked`).
    pub fn is_genuine(self) -> bool {
        self != TcbStatus::Revoked
    }

    /// Whether the status asks for a configuration change.
    pub fn needs_configuration(self) -> bool {
        matches!(
            self,
            TcbStatus::ConfigurationNeeded
                | TcbStatus::ConfigurationAndSWHardeningNeeded
                | TcbStatus::OutOfDateConfigurationNeeded
                | TcbStatus::TdRelaunchAdvisedConfigurationNeeded
        )
    }
}

impl std::fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Combines a status with a second one (a TDX module's or a QE's), as described in
/// the module documentation.
pub fn converge(status: TcbStatus, other: TcbStatus) -> TcbStatus {
    match other {
        TcbStatus::Revoked => TcbStatus::Revoked,
        TcbStatus::OutOfDate => match status {
            TcbStatus::UpToDate | TcbStatus::SWHardeningNeeded => TcbStatus::OutOfDate,
            TcbStatus::ConfigurationNeeded | TcbStatus::ConfigurationAndSWHardeningNeeded => {
                TcbStatus::OutOfDateConfigurationNeeded
            }
            s => s,
        },
        _ => status,
    }
}

/// What a QE identity level's status means when combined: `UpToDate`, `Revoked`,
/// or (anything else) `OutOfDate`.
pub fn qe_effective(status: TcbStatus) -> TcbStatus {
    match status {
        TcbStatus::UpToDate | TcbStatus::Revoked => status,
        _ => TcbStatus::OutOfDate,
    }
}

#[cfg(test)]
mod tests {
    use super::TcbStatus::*;
    use super::*;

    #[test]
    fn converge_follows_intels_table() {
        let all = [
            UpToDate,
            SWHardeningNeeded,
            ConfigurationNeeded,
            ConfigurationAndSWHardeningNeeded,
            OutOfDate,
            OutOfDateConfigurationNeeded,
            Revoked,
        ];
        for s in all {
            assert_eq!(converge(s, UpToDate), s);
            assert_eq!(converge(s, Revoked), Revoked);
        }
        assert_eq!(converge(UpToDate, OutOfDate), OutOfDate);
        assert_eq!(converge(SWHardeningNeeded, OutOfDate), OutOfDate);
        assert_eq!(
            converge(ConfigurationNeeded, OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(
            converge(ConfigurationAndSWHardeningNeeded, OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(converge(OutOfDate, OutOfDate), OutOfDate);
        assert_eq!(
            converge(OutOfDateConfigurationNeeded, OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(converge(Revoked, OutOfDate), Revoked);
    }

    #[test]
    fn names_round_trip_and_only_revoked_is_not_genuine() {
        for s in [
            "UpToDate",
            "SWHardeningNeeded",
            "ConfigurationNeeded",
            "ConfigurationAndSWHardeningNeeded",
            "OutOfDate",
            "OutOfDateConfigurationNeeded",
            "Revoked",
        ] {
            let st = TcbStatus::from_level_name(s).unwrap();
            assert_eq!(st.name(), s);
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{s}\""));
            assert_eq!(st.is_genuine(), s != "Revoked");
        }
        assert_eq!(TcbStatus::from_level_name("TDRelaunchAdvised"), None);
        assert_eq!(TcbStatus::from_level_name("uptodate"), None);
        assert_eq!(
            serde_json::to_string(&TdRelaunchAdvised).unwrap(),
            "\"TDRelaunchAdvised\""
        );
        assert_eq!(qe_effective(SWHardeningNeeded), OutOfDate);
        assert_eq!(qe_effective(Revoked), Revoked);
    }
}
