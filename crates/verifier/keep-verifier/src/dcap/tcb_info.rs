//! Intel's TCB info document (versions 2 and 3): for one FMSPC, the TCB levels of
//! the platform (SGX component SVNs, PCESVN, for TDX also the TEE TCB SVNs) and
//! their statuses, and for TDX the TDX module identities and their TCB levels.
//!
//! Version 2 is SGX only and has no `id`; its components are the keys
//! `sgxtcbcomp01svn` .. `sgxtcbcomp16svn`. Version 3 has an `id` (`SGX` or `TDX`)
//! and component arrays. Unknown fields are ignored (the document is signed by
//! Intel, and Intel adds fields); every field used is checked for shape and size.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{DcapError, hex_array};
use super::status::TcbStatus;
use crate::time::UnixTime;

/// The largest TCB info document accepted.
pub const MAX_TCB_INFO: usize = 512 * 1024;

/// Which TEE a TCB info describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcbInfoKind {
    /// SGX (version 2 without `id`, or `id` = `SGX`).
    Sgx,
    /// TDX (`id` = `TDX`, version 3).
    Tdx,
}

/// One TCB level of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbLevel {
    /// Minimum SVN of each of the 16 SGX TCB components.
    pub sgx_components: [u8; 16],
    /// Minimum PCESVN.
    pub pce_svn: u16,
    /// Minimum TEE_TCB_SVN components (TDX only).
    pub tdx_components: Option<[u8; 16]>,
    /// The date of the TCB level, as written.
    pub tcb_date: String,
    /// Its status.
    pub status: TcbStatus,
    /// Intel security advisories that apply at this level.
    pub advisory_ids: Vec<String>,
}

/// A TCB level of a TDX module identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleTcbLevel {
    /// Minimum TDX module SVN (TEE_TCB_SVN[0]).
    pub isv_svn: u16,
    /// The date of the level, as written.
    pub tcb_date: String,
    /// Its status.
    pub status: TcbStatus,
    /// Advisories that apply at this level.
    pub advisory_ids: Vec<String>,
}

/// The expected signer and attributes of a TDX module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModule {
    /// Expected MRSIGNERSEAM.
    pub mrsigner: [u8; 48],
    /// Expected SEAMATTRIBUTES (under the mask).
    pub attributes: [u8; 8],
    /// Which SEAMATTRIBUTES bits are compared.
    pub attributes_mask: [u8; 8],
}

/// A TDX module identity (`TDX_<major version>`) with its own TCB levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxModuleIdentity {
    /// `TDX_01`, `TDX_03`, ...
    pub id: String,
    /// Signer and attributes.
    pub module: TdxModule,
    /// TCB levels, highest first.
    pub tcb_levels: Vec<ModuleTcbLevel>,
}

/// A parsed TCB info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbInfo {
    /// SGX or TDX.
    pub kind: TcbInfoKind,
    /// 2 or 3.
    pub version: u32,
    /// When Intel issued it.
    pub issue_date: UnixTime,
    /// When it must be replaced.
    pub next_update: UnixTime,
    /// The FMSPC it applies to.
    pub fmspc: [u8; 6],
    /// The PCE ID it applies to.
    pub pce_id: [u8; 2],
    /// TCB type (0).
    pub tcb_type: u32,
    /// TCB evaluation data number (increases with each TCB recovery).
    pub tcb_evaluation_data_number: u32,
    /// The default TDX module identity (TDX only).
    pub tdx_module: Option<TdxModule>,
    /// TDX module identities by major version (TDX only).
    pub tdx_module_identities: Option<Vec<TdxModuleIdentity>>,
    /// The platform TCB levels, in the order listed (highest first).
    pub tcb_levels: Vec<TcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbInfo {
    id: Option<String>,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u32,
    tcb_evaluation_data_number: u32,
    tdx_module: Option<RawModule>,
    tdx_module_identities: Option<Vec<RawModuleIdentity>>,
    tcb_levels: Vec<RawLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawModule {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawModuleIdentity {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<RawModuleLevel>,
}

#[derive(Deserialize)]
struct RawIsvSvn {
    isvsvn: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawModuleLevel {
    tcb: RawIsvSvn,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLevel {
    tcb: RawTcb,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawTcb {
    sgxtcbcomponents: Option<Vec<RawComponent>>,
    tdxtcbcomponents: Option<Vec<RawComponent>>,
    pcesvn: u16,
    /// Version 2 keys `sgxtcbcompNNsvn` (and anything else, ignored).
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawComponent {
    svn: u8,
}

impl TcbInfo {
    /// Parses the TCB info JSON (the `tcbInfo` object, as in the collateral).
    pub fn parse(json: &[u8]) -> Result<TcbInfo, DcapError> {
        if json.len() > MAX_TCB_INFO {
            return Err(DcapError::TooLarge {
                what: "TCB info",
                len: json.len(),
                max: MAX_TCB_INFO,
            });
        }
        let raw: RawTcbInfo = serde_json::from_slice(json).map_err(|e| DcapError::Json {
            what: "TCB info",
            reason: e.to_string(),
        })?;
        let kind = match (raw.version, raw.id.as_deref()) {
            (2, None) => TcbInfoKind::Sgx,
            (3, Some("SGX")) => TcbInfoKind::Sgx,
            (3, Some("TDX")) => TcbInfoKind::Tdx,
            (v, id) => {
                return Err(DcapError::invalid(
                    "TCB info",
                    format!("unsupported version {v} with id {id:?}"),
                ));
            }
        };
        let tcb_levels = raw
            .tcb_levels
            .into_iter()
            .map(|l| level(l, raw.version, kind))
            .collect::<Result<Vec<_>, _>>()?;
        let (tdx_module, tdx_module_identities) = if kind == TcbInfoKind::Tdx {
            (
                raw.tdx_module.map(module).transpose()?,
                raw.tdx_module_identities
                    .map(|ids| ids.into_iter().map(module_identity).collect())
                    .transpose()?,
            )
        } else {
            (None, None)
        };
        Ok(TcbInfo {
            kind,
            version: raw.version,
            issue_date: date(&raw.issue_date, "TCB info issueDate")?,
            next_update: date(&raw.next_update, "TCB info nextUpdate")?,
            fmspc: hex_array(&raw.fmspc, "TCB info fmspc")?,
            pce_id: hex_array(&raw.pce_id, "TCB info pceId")?,
            tcb_type: raw.tcb_type,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            tdx_module,
            tdx_module_identities,
            tcb_levels,
        })
    }
}

/// Parses an RFC 3339 date of a DCAP document.
pub(crate) fn date(s: &str, what: &'static str) -> Result<UnixTime, DcapError> {
    UnixTime::parse(s).map_err(|e| DcapError::invalid(what, e.to_string()))
}

/// Parses a status a level may carry.
pub(crate) fn level_status(s: &str, what: &'static str) -> Result<TcbStatus, DcapError> {
    TcbStatus::from_level_name(s)
        .ok_or_else(|| DcapError::invalid(what, format!("unknown status {s:?}")))
}

fn components(list: Vec<RawComponent>, what: &'static str) -> Result<[u8; 16], DcapError> {
    let svns: Vec<u8> = list.into_iter().map(|c| c.svn).collect();
    <[u8; 16]>::try_from(svns.as_slice())
        .map_err(|_| DcapError::invalid(what, format!("{} components, expected 16", svns.len())))
}

fn v2_components(other: &BTreeMap<String, serde_json::Value>) -> Result<[u8; 16], DcapError> {
    let mut out = [0u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        let key = format!("sgxtcbcomp{:02}svn", i + 1);
        let v = other
            .get(&key)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| {
                DcapError::invalid("TCB info level", format!("{key} missing or over 255"))
            })?;
        *slot = v;
    }
    Ok(out)
}

fn level(raw: RawLevel, version: u32, kind: TcbInfoKind) -> Result<TcbLevel, DcapError> {
    let sgx_components = if version == 2 {
        v2_components(&raw.tcb.other)?
    } else {
        let list = raw
            .tcb
            .sgxtcbcomponents
            .ok_or_else(|| DcapError::invalid("TCB info level", "no sgxtcbcomponents"))?;
        components(list, "TCB info sgxtcbcomponents")?
    };
    let tdx_components = match kind {
        TcbInfoKind::Sgx => None,
        TcbInfoKind::Tdx => {
            let list = raw.tcb.tdxtcbcomponents.ok_or_else(|| {
                DcapError::invalid("TCB info level", "TDX level without tdxtcbcomponents")
            })?;
            Some(components(list, "TCB info tdxtcbcomponents")?)
        }
    };
    Ok(TcbLevel {
        sgx_components,
        pce_svn: raw.tcb.pcesvn,
        tdx_components,
        tcb_date: raw.tcb_date,
        status: level_status(&raw.tcb_status, "TCB info level tcbStatus")?,
        advisory_ids: raw.advisory_ids,
    })
}

fn module(raw: RawModule) -> Result<TdxModule, DcapError> {
    Ok(TdxModule {
        mrsigner: hex_array(&raw.mrsigner, "TDX module mrsigner")?,
        attributes: hex_array(&raw.attributes, "TDX module attributes")?,
        attributes_mask: hex_array(&raw.attributes_mask, "TDX module attributesMask")?,
    })
}

fn module_identity(raw: RawModuleIdentity) -> Result<TdxModuleIdentity, DcapError> {
    let tcb_levels = raw
        .tcb_levels
        .into_iter()
        .map(|l| {
            Ok(ModuleTcbLevel {
                isv_svn: l.tcb.isvsvn,
                tcb_date: l.tcb_date,
                status: level_status(&l.tcb_status, "TDX module level tcbStatus")?,
                advisory_ids: l.advisory_ids,
            })
        })
        .collect::<Result<Vec<_>, DcapError>>()?;
    Ok(TdxModuleIdentity {
        id: raw.id,
        module: module(RawModule {
            mrsigner: raw.mrsigner,
            attributes: raw.attributes,
            attributes_mask: raw.attributes_mask,
        })?,
        tcb_levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3_TDX: &str = r#"{"id":"TDX","version":3,"issueDate":"2025-06-19T10:16:03Z",
      "nextUpdate":"2025-07-19T10:16:03Z","fmspc":"B0C06F000000","pceId":"0000","tcbType":0,
      "tcbEvaluationDataNumber":17,
      "tdxModule":{"mrsigner":"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF"},
      "tdxModuleIdentities":[{"id":"TDX_01","mrsigner":"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF",
        "tcbLevels":[{"tcb":{"isvsvn":4},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"}]}],
      "tcbLevels":[{"tcb":{"sgxtcbcomponents":[{"svn":2,"category":"BIOS"},{"svn":2},{"svn":2},{"svn":2},{"svn":3},{"svn":1},{"svn":0},{"svn":5},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}],
        "pcesvn":11,"tdxtcbcomponents":[{"svn":5},{"svn":0},{"svn":2},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}]},
        "tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate","advisoryIDs":["INTEL-SA-00001"]}]}"#;

    #[test]
    fn parses_v3_tdx() {
        let t = TcbInfo::parse(V3_TDX.as_bytes()).unwrap();
        assert_eq!(t.kind, TcbInfoKind::Tdx);
        assert_eq!(t.fmspc, [0xb0, 0xc0, 0x6f, 0, 0, 0]);
        assert_eq!(
            t.issue_date,
            UnixTime::parse("2025-06-19T10:16:03Z").unwrap()
        );
        let l = &t.tcb_levels[0];
        assert_eq!(l.sgx_components[7], 5);
        assert_eq!(l.tdx_components.unwrap()[2], 2);
        assert_eq!((l.pce_svn, l.status), (11, TcbStatus::UpToDate));
        assert_eq!(l.advisory_ids, vec!["INTEL-SA-00001".to_owned()]);
        let ids = t.tdx_module_identities.unwrap();
        assert_eq!(ids[0].id, "TDX_01");
        assert_eq!(ids[0].tcb_levels[0].isv_svn, 4);
        assert_eq!(t.tdx_module.unwrap().attributes_mask, [0xff; 8]);
    }

    #[test]
    fn parses_v2_sgx_components_by_key() {
        let mut tcb = String::new();
        for i in 1..=16 {
            tcb.push_str(&format!("\"sgxtcbcomp{i:02}svn\":{i},"));
        }
        let json = format!(
            r#"{{"version":2,"issueDate":"2025-02-13T03:29:42Z","nextUpdate":"2025-03-15T03:29:42Z",
            "fmspc":"00606a000000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,
            "tcbLevels":[{{"tcb":{{{tcb}"pcesvn":13}},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"SWHardeningNeeded"}}]}}"#
        );
        let t = TcbInfo::parse(json.as_bytes()).unwrap();
        assert_eq!(t.kind, TcbInfoKind::Sgx);
        assert_eq!(t.tcb_levels[0].sgx_components[15], 16);
        assert!(t.tcb_levels[0].advisory_ids.is_empty());
        let missing = json.replace("\"sgxtcbcomp16svn\":16,", "");
        assert!(TcbInfo::parse(missing.as_bytes()).is_err());
    }

    #[test]
    fn refuses_wrong_shapes() {
        for (from, to) in [
            ("\"version\":3", "\"version\":4"),
            ("\"id\":\"TDX\"", "\"id\":\"XYZ\""),
            (
                "\"tcbStatus\":\"UpToDate\",\"advisoryIDs\"",
                "\"tcbStatus\":\"Great\",\"advisoryIDs\"",
            ),
            ("B0C06F000000", "B0C06F0000"),
            (
                "{\"svn\":5},{\"svn\":0},{\"svn\":2}",
                "{\"svn\":5},{\"svn\":0}",
            ),
            ("\"pcesvn\":11", "\"pcesvn\":70000"),
            ("2025-06-19T10:16:03Z", "yesterday"),
        ] {
            let bad = V3_TDX.replacen(from, to, 1);
            assert_ne!(bad, V3_TDX, "{from}");
            assert!(TcbInfo::parse(bad.as_bytes()).is_err(), "{from} -> {to}");
        }
        assert!(matches!(TcbInfo::parse(b"{]"), Err(DcapError::Json { .. })));
        assert!(TcbInfo::parse(&V3_TDX.as_bytes()[..100]).is_err());
    }
}
