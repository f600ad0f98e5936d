//! Selecting the TCB levels that apply to a platform, and combining their statuses
//! into the one status of the quote.
//!
//! **Platform level.** The first level of the TCB info, in the order listed (Intel
//! lists them highest first), such that every SGX TCB component SVN of the PCK
//! certificate is at least the level's and the PCK's PCESVN is at least the
//! level's. For TDX (TCB info version 3, id `TDX`) the level must also have every
//! TEE_TCB_SVN byte of the TD report at least its `tdxtcbcomponents` (bytes 0 and 1,
//! the module SVN and version, are left to the module identity when the module
//! version is not 0). No such level: the platform is not supported (not genuine).
//!
//! **TDX module.** When the module major version (TEE_TCB_SVN[1]) is 0 the default
//! `tdxModule` applies and the module status is `UpToDate`. Otherwise the identity
//! `TDX_<version as two hex digits>` must exist, and the module level is its first
//! level whose ISVSVN the module SVN (TEE_TCB_SVN[0]) meets; its status must be
//! `UpToDate`, `OutOfDate` or `Revoked`. Either way MRSIGNERSEAM must equal the
//! identity's `mrsigner` and SEAMATTRIBUTES must equal its `attributes` under
//! `attributesMask`.
//!
//! **Combination** (Intel's QVL order, see [`super::status`]): the platform status,
//! converged with the module status (TDX), then the relaunch advice for TD report
//! 1.5 bodies (below), then converged with the QE identity level status. Advisory
//! IDs are the union of the platform, module and QE levels' advisories, sorted and
//! without duplicates.
//!
//! **Relaunch advice** (TDX, TD report 1.5 only): when the QE is neither out of date
//! nor revoked, the SGX part of the platform is current (`UpToDate`,
//! `SWHardeningNeeded`, `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`),
//! the TDX result is `OutOfDate[ConfigurationNeeded]` because of an out-of-date
//! module, and TEE_TCB_SVN2 (the module loaded now) already meets the newest TCB
//! level (module SVN and byte 2), the TD only needs a relaunch:
//! `TDRelaunchAdvised[ConfigurationNeeded]`.

use super::report::TdReport10;
use super::status::{TcbStatus, converge, qe_effective};
use super::tcb_info::{
    ModuleTcbLevel, TcbInfo, TcbInfoKind, TcbLevel, TdxModule, TdxModuleIdentity,
};

/// What the evidence says about the platform's TCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformTcb {
    /// The SGX TCB component SVNs from the PCK certificate.
    pub sgx_components: [u8; 16],
    /// The PCESVN from the PCK certificate.
    pub pce_svn: u16,
    /// TEE_TCB_SVN of the TD report (TDX quotes with a TDX TCB info only).
    pub tee_tcb_svn: Option<[u8; 16]>,
}

/// The levels selected for a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelMatch<'a> {
    /// The first level the SGX part meets.
    pub sgx: Option<&'a TcbLevel>,
    /// The first level the SGX and TDX parts both meet (TDX only).
    pub tdx: Option<&'a TcbLevel>,
}

impl<'a> LevelMatch<'a> {
    /// The level whose status is the platform's: the TDX level for TDX, else the SGX one.
    pub fn platform(&self, tdx: bool) -> Option<&'a TcbLevel> {
        if tdx { self.tdx } else { self.sgx }
    }
}

fn all_at_least(actual: &[u8], required: &[u8]) -> bool {
    actual.iter().zip(required).all(|(a, r)| a >= r)
}

fn tdx_at_least(tee_tcb_svn: &[u8; 16], level: &TcbLevel) -> bool {
    let Some(required) = level.tdx_components.as_ref() else {
        return false;
    };
    let skip = if tee_tcb_svn[1] > 0 { 2 } else { 0 };
    all_at_least(
        tee_tcb_svn.get(skip..).unwrap_or_default(),
        required.get(skip..).unwrap_or_default(),
    )
}

/// Selects the levels, as described in the module documentation.
pub fn match_levels<'a>(info: &'a TcbInfo, p: &PlatformTcb) -> LevelMatch<'a> {
    let mut out = LevelMatch {
        sgx: None,
        tdx: None,
    };
    for level in &info.tcb_levels {
        if !all_at_least(&p.sgx_components, &level.sgx_components) || p.pce_svn < level.pce_svn {
            continue;
        }
        out.sgx.get_or_insert(level);
        match p.tee_tcb_svn {
            None => return out,
            Some(svn) if tdx_at_least(&svn, level) => {
                out.tdx = Some(level);
                return out;
            }
            Some(_) => {}
        }
    }
    out
}

/// The module identity and level that apply to a TD report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleMatch<'a> {
    /// The identity used (`None`: the default `tdxModule`, module version 0).
    pub identity: Option<&'a TdxModuleIdentity>,
    /// The module TCB level (`None` with the default module).
    pub level: Option<&'a ModuleTcbLevel>,
    /// The module status.
    pub status: TcbStatus,
}

/// The id of the module identity for a module major version.
pub fn module_identity_id(version: u8) -> String {
    format!("TDX_{version:02X}")
}

fn find_identity(info: &TcbInfo, version: u8) -> Option<&TdxModuleIdentity> {
    let wanted = module_identity_id(version);
    info.tdx_module_identities
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|i| i.id.eq_ignore_ascii_case(&wanted))
}

/// Matches the TD report's module against the TCB info (module documentation).
pub fn match_tdx_module<'a>(info: &'a TcbInfo, td: &TdReport10) -> Result<ModuleMatch<'a>, String> {
    if info.kind != TcbInfoKind::Tdx {
        return Err("the TCB info is not a TDX TCB info".into());
    }
    let svn = td.tee_tcb_svn[0];
    let version = td.tee_tcb_svn[1];
    let (expected, identity, level, status): (&TdxModule, _, _, _) = if version == 0 {
        let m = info
            .tdx_module
            .as_ref()
            .ok_or("module version 0 but the TCB info has no tdxModule")?;
        (m, None, None, TcbStatus::UpToDate)
    } else {
        let id = find_identity(info, version).ok_or_else(|| {
            format!(
                "no TDX module identity {} in the TCB info",
                module_identity_id(version)
            )
        })?;
        let level = id
            .tcb_levels
            .iter()
            .find(|l| u16::from(svn) >= l.isv_svn)
            .ok_or_else(|| format!("module SVN {svn} is below every level of {}", id.id))?;
        if !matches!(
            level.status,
            TcbStatus::UpToDate | TcbStatus::OutOfDate | TcbStatus::Revoked
        ) {
            return Err(format!(
                "module level status {} is not valid for a module",
                level.status
            ));
        }
        (&id.module, Some(id), Some(level), level.status)
    };
    if td.mr_signer_seam != expected.mrsigner {
        return Err(format!(
            "MRSIGNERSEAM {} is not the expected {}",
            hex::encode(td.mr_signer_seam),
            hex::encode(expected.mrsigner)
        ));
    }
    let attrs_ok = td
        .seam_attributes
        .iter()
        .zip(&expected.attributes_mask)
        .zip(&expected.attributes)
        .all(|((a, m), e)| a & m == e & m);
    if !attrs_ok {
        return Err(format!(
            "SEAMATTRIBUTES {} do not match {} under mask {}",
            hex::encode(td.seam_attributes),
            hex::encode(expected.attributes),
            hex::encode(expected.attributes_mask)
        ));
    }
    Ok(ModuleMatch {
        identity,
        level,
        status,
    })
}

/// The combined status and advisories of a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The status after every convergence step.
    pub status: TcbStatus,
    /// The union of the selected levels' advisory IDs, sorted, without duplicates.
    pub advisory_ids: Vec<String>,
}

fn union(lists: &[&[String]]) -> Vec<String> {
    let mut out: Vec<String> = lists.iter().flat_map(|l| l.iter().cloned()).collect();
    out.sort();
    out.dedup();
    out
}

/// Combines an SGX platform level with the QE level.
pub fn combine_sgx(
    platform: &TcbLevel,
    qe_status: TcbStatus,
    qe_advisories: &[String],
) -> Combined {
    Combined {
        status: converge(platform.status, qe_effective(qe_status)),
        advisory_ids: union(&[&platform.advisory_ids, qe_advisories]),
    }
}

/// The TDX inputs of [`combine_tdx`].
#[derive(Debug, Clone, Copy)]
pub struct TdxInputs<'a> {
    /// The TCB info (for the relaunch advice).
    pub info: &'a TcbInfo,
    /// The first level the SGX part meets.
    pub sgx_level: &'a TcbLevel,
    /// The first level the SGX and TDX parts meet.
    pub tdx_level: &'a TcbLevel,
    /// The module match.
    pub module: ModuleMatch<'a>,
    /// TEE_TCB_SVN2 for TD report 1.5 bodies.
    pub tee_tcb_svn2: Option<[u8; 16]>,
}

/// Combines a TDX platform level, module and QE level.
pub fn combine_tdx(
    t: &TdxInputs<'_>,
    qe_status: TcbStatus,
    qe_advisories: &[String],
) -> Result<Combined, String> {
    let qe = qe_effective(qe_status);
    let mut status = converge(t.tdx_level.status, t.module.status);
    if status != TcbStatus::Revoked
        && let Some(svn2) = t.tee_tcb_svn2
    {
        status = relaunch_advice(t, &svn2, status, qe)?;
    }
    let module_advisories = t
        .module
        .level
        .map(|l| l.advisory_ids.as_slice())
        .unwrap_or_default();
    Ok(Combined {
        status: converge(status, qe),
        advisory_ids: union(&[&t.tdx_level.advisory_ids, module_advisories, qe_advisories]),
    })
}

fn relaunch_advice(
    t: &TdxInputs<'_>,
    svn2: &[u8; 16],
    tdx_status: TcbStatus,
    qe: TcbStatus,
) -> Result<TcbStatus, String> {
    use TcbStatus::*;
    let applies = !matches!(qe, OutOfDate | Revoked)
        && matches!(
            t.sgx_level.status,
            UpToDate | SWHardeningNeeded | ConfigurationNeeded | ConfigurationAndSWHardeningNeeded
        )
        && matches!(tdx_status, OutOfDate | OutOfDateConfigurationNeeded)
        && t.module.status == OutOfDate;
    if !applies {
        return Ok(tdx_status);
    }
    let latest = t
        .info
        .tcb_levels
        .first()
        .ok_or("the TCB info has no levels")?;
    let latest_tdx = latest
        .tdx_components
        .ok_or("the newest TCB level has no TDX components")?;
    let module_ok = if svn2[1] == 0 {
        svn2[0] >= latest_tdx[0]
    } else {
        let id = find_identity(t.info, svn2[1]).ok_or_else(|| {
            format!(
                "no TDX module identity {} for TEE_TCB_SVN2",
                module_identity_id(svn2[1])
            )
        })?;
        let newest = id
            .tcb_levels
            .first()
            .ok_or_else(|| format!("{} has no levels", id.id))?;
        u16::from(svn2[0]) >= newest.isv_svn
    };
    if !(module_ok && svn2[2] >= latest_tdx[2]) {
        return Ok(tdx_status);
    }
    Ok(
        if t.sgx_level.status.needs_configuration() || tdx_status.needs_configuration() {
            TdRelaunchAdvisedConfigurationNeeded
        } else {
            TdRelaunchAdvised
        },
    )
}

#[cfg(test)]
mod tests {
    use super::TcbStatus::*;
    use super::*;
    use crate::dcap::tcb_info::TdxModule;
    use crate::time::UnixTime;

    fn level(sgx: u8, pce: u16, tdx: [u8; 3], status: TcbStatus, adv: &[&str]) -> TcbLevel {
        let mut t = [0u8; 16];
        t[..3].copy_from_slice(&tdx);
        TcbLevel {
            sgx_components: [sgx; 16],
            pce_svn: pce,
            tdx_components: Some(t),
            tcb_date: "2024-03-13T00:00:00Z".into(),
            status,
            advisory_ids: adv.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn module_level(svn: u16, status: TcbStatus, adv: &[&str]) -> ModuleTcbLevel {
        ModuleTcbLevel {
            isv_svn: svn,
            tcb_date: String::new(),
            status,
            advisory_ids: adv.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn info() -> TcbInfo {
        let zero = TdxModule {
            mrsigner: [0; 48],
            attributes: [0; 8],
            attributes_mask: [0xff; 8],
        };
        TcbInfo {
            kind: TcbInfoKind::Tdx,
            version: 3,
            issue_date: UnixTime(0),
            next_update: UnixTime(1),
            fmspc: [0; 6],
            pce_id: [0; 2],
            tcb_type: 0,
            tcb_evaluation_data_number: 17,
            tdx_module: Some(zero.clone()),
            tdx_module_identities: Some(vec![TdxModuleIdentity {
                id: "TDX_01".into(),
                module: zero,
                tcb_levels: vec![
                    module_level(6, UpToDate, &[]),
                    module_level(4, OutOfDate, &["INTEL-SA-M"]),
                ],
            }]),
            tcb_levels: vec![
                level(7, 13, [5, 0, 7], UpToDate, &[]),
                level(6, 13, [3, 0, 6], OutOfDate, &["INTEL-SA-B", "INTEL-SA-A"]),
                level(6, 11, [3, 0, 6], OutOfDate, &["INTEL-SA-C"]),
            ],
        }
    }

    fn td(svn: [u8; 3]) -> TdReport10 {
        let mut tee_tcb_svn = [0u8; 16];
        tee_tcb_svn[..3].copy_from_slice(&svn);
        TdReport10 {
            tee_tcb_svn,
            mr_seam: [0; 48],
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: [0; 8],
            xfam: [0; 8],
            mr_td: [0; 48],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: [[0; 48]; 4],
            report_data: [0; 64],
        }
    }

    #[test]
    fn selects_the_first_level_met_in_listed_order() {
        let i = info();
        let p = |sgx: u8, pce: u16| PlatformTcb {
            sgx_components: [sgx; 16],
            pce_svn: pce,
            tee_tcb_svn: None,
        };
        assert_eq!(match_levels(&i, &p(7, 13)).sgx, Some(&i.tcb_levels[0]));
        assert_eq!(match_levels(&i, &p(9, 20)).sgx, Some(&i.tcb_levels[0]));
        assert_eq!(match_levels(&i, &p(6, 13)).sgx, Some(&i.tcb_levels[1]));
        assert_eq!(match_levels(&i, &p(7, 12)).sgx, Some(&i.tcb_levels[2]));
        assert_eq!(match_levels(&i, &p(5, 13)).sgx, None);
        // One component below is enough to miss a level.
        let mut one_low = p(7, 13);
        one_low.sgx_components[7] = 6;
        assert_eq!(match_levels(&i, &one_low).sgx, Some(&i.tcb_levels[1]));
    }

    #[test]
    fn tdx_levels_also_need_the_tee_tcb_svn() {
        let i = info();
        let p = |svn: [u8; 3]| {
            let mut t = [0u8; 16];
            t[..3].copy_from_slice(&svn);
            PlatformTcb {
                sgx_components: [7; 16],
                pce_svn: 13,
                tee_tcb_svn: Some(t),
            }
        };
        // Version 1: bytes 0 and 1 are the module's business; byte 2 decides.
        let m = match_levels(&i, &p([0, 1, 7]));
        assert_eq!(
            (m.sgx, m.tdx),
            (Some(&i.tcb_levels[0]), Some(&i.tcb_levels[0]))
        );
        let m = match_levels(&i, &p([9, 1, 6]));
        assert_eq!(
            (m.sgx, m.tdx),
            (Some(&i.tcb_levels[0]), Some(&i.tcb_levels[1]))
        );
        assert_eq!(m.platform(true), Some(&i.tcb_levels[1]));
        assert_eq!(m.platform(false), Some(&i.tcb_levels[0]));
        // Version 0: byte 0 counts too.
        let m = match_levels(&i, &p([4, 0, 7]));
        assert_eq!(m.tdx, Some(&i.tcb_levels[1]));
        let m = match_levels(&i, &p([2, 0, 9]));
        assert_eq!((m.sgx.is_some(), m.tdx), (true, None));
    }

    #[test]
    fn module_identity_and_level() {
        let i = info();
        let m = match_tdx_module(&i, &td([6, 1, 0])).unwrap();
        assert_eq!(
            (m.status, m.identity.map(|x| x.id.as_str())),
            (UpToDate, Some("TDX_01"))
        );
        let m = match_tdx_module(&i, &td([5, 1, 0])).unwrap();
        assert_eq!(m.status, OutOfDate);
        assert!(match_tdx_module(&i, &td([3, 1, 0])).is_err());
        assert!(
            match_tdx_module(&i, &td([6, 3, 0]))
                .unwrap_err()
                .contains("TDX_03")
        );
        let v0 = match_tdx_module(&i, &td([0, 0, 0])).unwrap();
        assert_eq!((v0.status, v0.identity, v0.level), (UpToDate, None, None));
        let mut signer = td([6, 1, 0]);
        signer.mr_signer_seam[0] = 1;
        assert!(
            match_tdx_module(&i, &signer)
                .unwrap_err()
                .contains("MRSIGNERSEAM")
        );
        let mut attrs = td([6, 1, 0]);
        attrs.seam_attributes[7] = 0x80;
        assert!(
            match_tdx_module(&i, &attrs)
                .unwrap_err()
                .contains("SEAMATTRIBUTES")
        );
    }

    #[test]
    fn combination_and_advisories() {
        let i = info();
        let sgx = combine_sgx(&i.tcb_levels[1], UpToDate, &["INTEL-SA-A".into()]);
        assert_eq!(sgx.status, OutOfDate);
        assert_eq!(sgx.advisory_ids, vec!["INTEL-SA-A", "INTEL-SA-B"]);
        let mut sw = i.tcb_levels[0].clone();
        sw.status = ConfigurationAndSWHardeningNeeded;
        assert_eq!(
            combine_sgx(&sw, OutOfDate, &[]).status,
            OutOfDateConfigurationNeeded
        );
        assert_eq!(
            combine_sgx(&sw, SWHardeningNeeded, &[]).status,
            OutOfDateConfigurationNeeded
        );
        assert_eq!(combine_sgx(&sw, Revoked, &[]).status, Revoked);

        let report = td([4, 1, 7]);
        let module = match_tdx_module(&i, &report).unwrap();
        let inputs = TdxInputs {
            info: &i,
            sgx_level: &i.tcb_levels[0],
            tdx_level: &i.tcb_levels[0],
            module,
            tee_tcb_svn2: None,
        };
        let c = combine_tdx(&inputs, UpToDate, &[]).unwrap();
        assert_eq!(
            (c.status, c.advisory_ids),
            (OutOfDate, vec!["INTEL-SA-M".to_owned()])
        );

        // A TD report 1.5 whose loaded module (SVN2) is already current: relaunch.
        let relaunch = TdxInputs {
            tee_tcb_svn2: Some({
                let mut s = [0u8; 16];
                s[..3].copy_from_slice(&[6, 1, 7]);
                s
            }),
            ..inputs
        };
        assert_eq!(
            combine_tdx(&relaunch, UpToDate, &[]).unwrap().status,
            TdRelaunchAdvised
        );
        // ... unless the QE is out of date.
        assert_eq!(
            combine_tdx(&relaunch, OutOfDate, &[]).unwrap().status,
            OutOfDate
        );
        // ... or the loaded module is not current either.
        let stale = TdxInputs {
            tee_tcb_svn2: Some([5, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ..inputs
        };
        assert_eq!(
            combine_tdx(&stale, UpToDate, &[]).unwrap().status,
            OutOfDate
        );
        let mut conf = i.tcb_levels[0].clone();
        conf.status = ConfigurationNeeded;
        let with_conf = TdxInputs {
            sgx_level: &conf,
            tdx_level: &conf,
            ..relaunch
        };
        assert_eq!(
            combine_tdx(&with_conf, UpToDate, &[]).unwrap().status,
            TdRelaunchAdvisedConfigurationNeeded
        );
    }
}
