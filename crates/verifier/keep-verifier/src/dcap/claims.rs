//! The claims a DCAP verification reports: what the quote says (measurements,
//! attributes, report data) and what the collateral says about the platform
//! (statuses, advisories). Bytes are serialized as hex strings. Claims are only as
//! meaningful as the checks that passed.

use serde::Serialize;

use super::pck::PckExtensions;
use super::quote::{Body, Quote};
use super::report::EnclaveReport;
use super::status::TcbStatus;
use crate::policy::HexBytes;

/// TD_ATTRIBUTES bit: the TD runs in debug mode (the host can read its state).
pub const TD_ATTR_DEBUG: u64 = 1 << 0;
/// TD_ATTRIBUTES bits 4..=6: profiling features, which also make the TD untrusted.
pub const TD_ATTR_PROFILING: u64 = 0b111 << 4;
/// TD_ATTRIBUTES bit: ICSSD.
pub const TD_ATTR_ICSSD: u64 = 1 << 16;
/// TD_ATTRIBUTES bit: linear address space separation.
pub const TD_ATTR_LASS: u64 = 1 << 27;
/// TD_ATTRIBUTES bit: EPT violations on pending pages are not turned into #VE.
pub const TD_ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;
/// TD_ATTRIBUTES bit: the TD can be migrated.
pub const TD_ATTR_MIGRATABLE: u64 = 1 << 29;
/// TD_ATTRIBUTES bit: supervisor protection keys.
pub const TD_ATTR_PKS: u64 = 1 << 30;
/// TD_ATTRIBUTES bit: key locker.
pub const TD_ATTR_KL: u64 = 1 << 31;
/// TD_ATTRIBUTES bit: TPA.
pub const TD_ATTR_TPA: u64 = 1 << 62;
/// TD_ATTRIBUTES bit: performance monitoring.
pub const TD_ATTR_PERFMON: u64 = 1 << 63;
/// Every TD_ATTRIBUTES bit that has a meaning; the rest are reserved and must be 0.
pub const TD_ATTR_KNOWN: u64 = TD_ATTR_DEBUG
    | TD_ATTR_PROFILING
    | TD_ATTR_ICSSD
    | TD_ATTR_LASS
    | TD_ATTR_SEPT_VE_DISABLE
    | TD_ATTR_MIGRATABLE
    | TD_ATTR_PKS
    | TD_ATTR_KL
    | TD_ATTR_TPA
    | TD_ATTR_PERFMON;

/// TD_ATTRIBUTES, raw and decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdAttributes {
    /// The 8 bytes as in the report.
    pub raw: HexBytes,
    /// DEBUG (bit 0).
    pub debug: bool,
    /// Any of the profiling bits 4..=6 (untrusted, like debug).
    pub profiling: bool,
    /// SEPT_VE_DISABLE (bit 28).
    pub sept_ve_disable: bool,
    /// MIGRATABLE (bit 29).
    pub migratable: bool,
    /// PKS (bit 30).
    pub pks: bool,
    /// KL (bit 31).
    pub kl: bool,
    /// PERFMON (bit 63).
    pub perfmon: bool,
    /// The reserved bits that are set (0 when none).
    pub reserved_bits: u64,
}

impl TdAttributes {
    /// Decodes the little-endian 64-bit flags.
    pub fn decode(raw: [u8; 8]) -> Self {
        let v = u64::from_le_bytes(raw);
        TdAttributes {
            raw: HexBytes(raw.to_vec()),
            debug: v & TD_ATTR_DEBUG != 0,
            profiling: v & TD_ATTR_PROFILING != 0,
            sept_ve_disable: v & TD_ATTR_SEPT_VE_DISABLE != 0,
            migratable: v & TD_ATTR_MIGRATABLE != 0,
            pks: v & TD_ATTR_PKS != 0,
            kl: v & TD_ATTR_KL != 0,
            perfmon: v & TD_ATTR_PERFMON != 0,
            reserved_bits: v & !TD_ATTR_KNOWN,
        }
    }
}

/// What the collateral says about the platform (absent without collateral).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlatformClaims {
    /// FMSPC from the PCK certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmspc: Option<HexBytes>,
    /// PCE ID from the PCK certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pce_id: Option<HexBytes>,
    /// PCESVN from the PCK certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pce_svn: Option<u16>,
    /// The 16 SGX TCB component SVNs from the PCK certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sgx_tcb_components: Option<HexBytes>,
    /// The combined TCB status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<TcbStatus>,
    /// Status of the selected platform TCB level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_tcb_status: Option<TcbStatus>,
    /// Status of the QE identity level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qe_tcb_status: Option<TcbStatus>,
    /// Union of the selected levels' advisory IDs, sorted, without duplicates.
    pub advisory_ids: Vec<String>,
    /// Date of the selected platform TCB level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_date: Option<String>,
    /// TCB evaluation data number of the TCB info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcb_evaluation_data_number: Option<u32>,
}

impl PlatformClaims {
    /// The parts that come from the PCK certificate.
    pub fn from_pck(pck: Option<&PckExtensions>) -> Self {
        let Some(p) = pck else {
            return PlatformClaims::default();
        };
        PlatformClaims {
            fmspc: Some(p.fmspc_hex()),
            pce_id: Some(HexBytes(p.pce_id.to_vec())),
            pce_svn: Some(p.pce_svn),
            sgx_tcb_components: Some(HexBytes(p.tcb_components.to_vec())),
            ..PlatformClaims::default()
        }
    }
}

/// Claims of a TDX quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxClaims {
    /// Quote version (4 or 5).
    pub quote_version: u16,
    /// TEE type (`0x81` for TDX).
    pub tee_type: u32,
    /// TD report layout: `1.0` or `1.5`.
    pub td_report: &'static str,
    /// Platform and TCB status claims.
    #[serde(flatten)]
    pub platform: PlatformClaims,
    /// Status of the TDX module level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tdx_module_tcb_status: Option<TcbStatus>,
    /// The TDX module identity used (`TDX_01` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tdx_module_identity: Option<String>,
    /// TD_ATTRIBUTES.
    pub td_attributes: TdAttributes,
    /// XFAM.
    pub xfam: HexBytes,
    /// MRTD.
    pub mrtd: HexBytes,
    /// MRCONFIGID.
    pub mrconfigid: HexBytes,
    /// MROWNER.
    pub mrowner: HexBytes,
    /// MROWNERCONFIG.
    pub mrownerconfig: HexBytes,
    /// RTMR0.
    pub rtmr0: HexBytes,
    /// RTMR1.
    pub rtmr1: HexBytes,
    /// RTMR2.
    pub rtmr2: HexBytes,
    /// RTMR3.
    pub rtmr3: HexBytes,
    /// MRSERVICETD (TD report 1.5 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrservicetd: Option<HexBytes>,
    /// MRSIGNERSEAM.
    pub mrsignerseam: HexBytes,
    /// MRSEAM.
    pub mrseam: HexBytes,
    /// SEAMATTRIBUTES.
    pub seam_attributes: HexBytes,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: HexBytes,
    /// TEE_TCB_SVN2 (TD report 1.5 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn2: Option<HexBytes>,
    /// REPORTDATA.
    pub report_data: HexBytes,
}

impl TdxClaims {
    /// The claims of a TDX quote (`None` for an SGX quote).
    pub fn from_quote(q: &Quote, platform: PlatformClaims) -> Option<Self> {
        let td = q.body.td()?;
        let (td_report, svn2, service) = match &q.body {
            Body::Td15(r) => (
                "1.5",
                Some(HexBytes(r.tee_tcb_svn2.to_vec())),
                Some(HexBytes(r.mr_service_td.to_vec())),
            ),
            _ => ("1.0", None, None),
        };
        let hex = |b: &[u8]| HexBytes(b.to_vec());
        Some(TdxClaims {
            quote_version: q.header.version,
            tee_type: q.header.tee_type,
            td_report,
            platform,
            tdx_module_tcb_status: None,
            tdx_module_identity: None,
            td_attributes: TdAttributes::decode(td.td_attributes),
            xfam: hex(&td.xfam),
            mrtd: hex(&td.mr_td),
            mrconfigid: hex(&td.mr_config_id),
            mrowner: hex(&td.mr_owner),
            mrownerconfig: hex(&td.mr_owner_config),
            rtmr0: hex(&td.rtmr[0]),
            rtmr1: hex(&td.rtmr[1]),
            rtmr2: hex(&td.rtmr[2]),
            rtmr3: hex(&td.rtmr[3]),
            mrservicetd: service,
            mrsignerseam: hex(&td.mr_signer_seam),
            mrseam: hex(&td.mr_seam),
            seam_attributes: hex(&td.seam_attributes),
            tee_tcb_svn: hex(&td.tee_tcb_svn),
            tee_tcb_svn2: svn2,
            report_data: hex(&td.report_data),
        })
    }
}

/// SGX ATTRIBUTES, raw and decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SgxAttributes {
    /// The 16 bytes as in the report (flags, then XFRM).
    pub raw: HexBytes,
    /// DEBUG (flags bit 1).
    pub debug: bool,
}

/// Claims of an SGX quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SgxClaims {
    /// Quote version (3).
    pub quote_version: u16,
    /// Platform and TCB status claims.
    #[serde(flatten)]
    pub platform: PlatformClaims,
    /// MRENCLAVE.
    pub mrenclave: HexBytes,
    /// MRSIGNER.
    pub mrsigner: HexBytes,
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// ATTRIBUTES.
    pub attributes: SgxAttributes,
    /// MISCSELECT (the report's four bytes).
    pub miscselect: HexBytes,
    /// CPUSVN of the report.
    pub cpusvn: HexBytes,
    /// REPORTDATA.
    pub report_data: HexBytes,
}

impl SgxClaims {
    /// The claims of an SGX quote (`None` for a TDX quote).
    pub fn from_quote(q: &Quote, platform: PlatformClaims) -> Option<Self> {
        let Body::Sgx(r) = &q.body else {
            return None;
        };
        Some(Self::from_report(q.header.version, r, platform))
    }

    fn from_report(quote_version: u16, r: &EnclaveReport, platform: PlatformClaims) -> Self {
        SgxClaims {
            quote_version,
            platform,
            mrenclave: HexBytes(r.mr_enclave.to_vec()),
            mrsigner: HexBytes(r.mr_signer.to_vec()),
            isv_prod_id: r.isv_prod_id,
            isv_svn: r.isv_svn,
            attributes: SgxAttributes {
                raw: HexBytes(r.attributes.to_vec()),
                debug: r.debug(),
            },
            miscselect: HexBytes(r.misc_select.to_vec()),
            cpusvn: HexBytes(r.cpu_svn.to_vec()),
            report_data: HexBytes(r.report_data.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_td_attributes() {
        let a = TdAttributes::decode([0x01, 0, 0, 0x10, 0, 0, 0, 0x80]);
        assert!(a.debug && a.sept_ve_disable && a.perfmon);
        assert!(!a.pks && !a.kl && !a.migratable && !a.profiling);
        assert_eq!(a.reserved_bits, 0);
        let r = TdAttributes::decode([0x02, 0x01, 0, 0, 0x01, 0, 0, 0]);
        assert_eq!(r.reserved_bits, (1 << 1) | (1 << 8) | (1 << 32));
        assert!(TdAttributes::decode([0x10, 0, 0, 0, 0, 0, 0, 0]).profiling);
        assert_eq!(
            serde_json::to_value(TdAttributes::decode([0; 8])).unwrap()["raw"],
            "0000000000000000"
        );
    }
}
