//! Appraising the platform with the (parsed) collateral: the TCB info and QE
//! identity must be for this TEE and this platform, then the TCB levels are
//! selected and their statuses combined (see [`super::tcb_level`]).
//!
//! Checks: `dcap.tcb_info.id`, `dcap.tcb_info.fmspc`, `dcap.tcb_info.pce_id`,
//! `dcap.tcb_level`, `dcap.tdx_module` (TDX), `dcap.qe_identity.id`,
//! `dcap.qe_identity.match`, `dcap.qe_identity.tcb_level` and `dcap.tcb_status`
//! (the combined status is not `Revoked`).

use super::claims::PlatformClaims;
use super::pck::PckExtensions;
use super::qe_identity::QeIdentity;
use super::quote::{Body, Quote};
use super::status::TcbStatus;
use super::tcb_info::{TcbInfo, TcbInfoKind};
use super::tcb_level::{
    Combined, ModuleMatch, PlatformTcb, TdxInputs, combine_sgx, combine_tdx, match_levels,
    match_tdx_module,
};
use crate::check::Checks;

/// What the appraisal adds to the claims.
#[derive(Debug, Clone, Default)]
pub(crate) struct Appraisal {
    /// Statuses, advisories and dates.
    pub platform: PlatformClaims,
    /// The TDX module status.
    pub module_status: Option<TcbStatus>,
    /// The TDX module identity used.
    pub module_identity: Option<String>,
}

/// Runs the appraisal checks. `tcb_info` and `qe_identity` are the parsed
/// documents (already checked for signatures and dates by the caller).
pub(crate) fn appraise(
    ev: &mut Checks,
    quote: &Quote,
    pck: Option<&PckExtensions>,
    tcb_info: Option<&TcbInfo>,
    qe_identity: Option<&QeIdentity>,
) -> Appraisal {
    let mut out = Appraisal {
        platform: PlatformClaims::from_pck(pck),
        ..Appraisal::default()
    };
    let tdx = quote.is_tdx();
    if let Some(info) = tcb_info {
        out.platform.tcb_evaluation_data_number = Some(info.tcb_evaluation_data_number);
        let want = if tdx {
            TcbInfoKind::Tdx
        } else {
            TcbInfoKind::Sgx
        };
        ev.expect("dcap.tcb_info.id", info.kind == want, || {
            format!(
                "TCB info is for {:?} (version {}), the quote is {want:?}",
                info.kind, info.version
            )
        });
        if let Some(p) = pck {
            ev.expect("dcap.tcb_info.fmspc", info.fmspc == p.fmspc, || {
                format!(
                    "TCB info is for FMSPC {}, the PCK certificate says {}",
                    hex::encode_upper(info.fmspc),
                    hex::encode_upper(p.fmspc)
                )
            });
            ev.expect("dcap.tcb_info.pce_id", info.pce_id == p.pce_id, || {
                format!(
                    "TCB info is for PCE ID {}, the PCK certificate says {}",
                    hex::encode(info.pce_id),
                    hex::encode(p.pce_id)
                )
            });
        }
    }
    let qe_level = qe_identity.and_then(|id| appraise_qe(ev, quote, id));
    if let Some(l) = qe_level {
        out.platform.qe_tcb_status = Some(l.0);
    }
    let (Some(info), Some(p)) = (tcb_info, pck) else {
        return out;
    };
    let td = quote.body.td();
    let platform_tcb = PlatformTcb {
        sgx_components: p.tcb_components,
        pce_svn: p.pce_svn,
        tee_tcb_svn: td
            .filter(|_| info.kind == TcbInfoKind::Tdx)
            .map(|t| t.tee_tcb_svn),
    };
    let levels = match_levels(info, &platform_tcb);
    let selected = levels.platform(tdx);
    match selected {
        Some(l) => {
            ev.pass("dcap.tcb_level");
            out.platform.platform_tcb_status = Some(l.status);
            out.platform.tcb_date = Some(l.tcb_date.clone());
        }
        None => ev.fail(
            "dcap.tcb_level",
            format!(
                "no TCB level matches SGX components {} PCESVN {}{}",
                hex::encode(p.tcb_components),
                p.pce_svn,
                td.map(|t| format!(" TEE_TCB_SVN {}", hex::encode(t.tee_tcb_svn)))
                    .unwrap_or_default()
            ),
        ),
    }
    let module: Option<ModuleMatch<'_>> = td.and_then(|t| match match_tdx_module(info, t) {
        Ok(m) => {
            ev.pass("dcap.tdx_module");
            out.module_status = Some(m.status);
            out.module_identity = m.identity.map(|i| i.id.clone());
            Some(m)
        }
        Err(e) => {
            ev.fail("dcap.tdx_module", e);
            None
        }
    });
    let (Some(level), Some((qe_status, qe_adv))) = (selected, qe_level) else {
        return out;
    };
    let combined: Result<Combined, String> = if tdx {
        let (Some(sgx_level), Some(module)) = (levels.sgx, module) else {
            return out;
        };
        let svn2 = match &quote.body {
            Body::Td15(r) => Some(r.tee_tcb_svn2),
            _ => None,
        };
        let inputs = TdxInputs {
            info,
            sgx_level,
            tdx_level: level,
            module,
            tee_tcb_svn2: svn2,
        };
        combine_tdx(&inputs, qe_status, qe_adv)
    } else {
        Ok(combine_sgx(level, qe_status, qe_adv))
    };
    match combined {
        Ok(c) => {
            ev.expect("dcap.tcb_status", c.status.is_genuine(), || {
                format!("TCB status {}", c.status)
            });
            out.platform.tcb_status = Some(c.status);
            out.platform.advisory_ids = c.advisory_ids;
        }
        Err(e) => ev.fail("dcap.tcb_status", e),
    }
    out
}

/// QE identity checks; returns the QE level's status and advisories.
fn appraise_qe<'a>(
    ev: &mut Checks,
    quote: &Quote,
    id: &'a QeIdentity,
) -> Option<(TcbStatus, &'a [String])> {
    let want = if quote.is_tdx() { "TD_QE" } else { "QE" };
    ev.expect("dcap.qe_identity.id", id.id == want, || {
        format!("QE identity is {:?}, the quote needs {want:?}", id.id)
    });
    ev.result("dcap.qe_identity.match", id.check_report(&quote.qe_report));
    let isv_svn = quote.qe_report.isv_svn;
    match id.level_for(isv_svn) {
        Some(l) => {
            ev.pass("dcap.qe_identity.tcb_level");
            Some((l.status, l.advisory_ids.as_slice()))
        }
        None => {
            ev.fail(
                "dcap.qe_identity.tcb_level",
                format!("QE ISVSVN {isv_svn} is below every QE identity level"),
            );
            None
        }
    }
}
