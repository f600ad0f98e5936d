//! Intel's enclave identity document for the quoting enclave (version 2): `QE` for
//! SGX quotes, `TD_QE` for TDX quotes. It says which MRSIGNER, ISVPRODID,
//! MISCSELECT and ATTRIBUTES (under masks) the QE must have, and the status of each
//! QE ISVSVN.

use serde::Deserialize;

use super::error::{DcapError, hex_array};
use super::report::EnclaveReport;
use super::status::TcbStatus;
use super::tcb_info::{date, level_status};
use crate::time::UnixTime;

/// The largest QE identity document accepted.
pub const MAX_QE_IDENTITY: usize = 256 * 1024;

/// A TCB level of the QE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeTcbLevel {
    /// Minimum QE ISVSVN.
    pub isv_svn: u16,
    /// The date of the level, as written.
    pub tcb_date: String,
    /// Its status.
    pub status: TcbStatus,
    /// Advisories that apply at this level.
    pub advisory_ids: Vec<String>,
}

/// A parsed QE identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeIdentity {
    /// `QE` (SGX) or `TD_QE` (TDX).
    pub id: String,
    /// 2.
    pub version: u32,
    /// When Intel issued it.
    pub issue_date: UnixTime,
    /// When it must be replaced.
    pub next_update: UnixTime,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// Expected MISCSELECT (bytes as in the report) under the mask.
    pub miscselect: [u8; 4],
    /// MISCSELECT mask.
    pub miscselect_mask: [u8; 4],
    /// Expected ATTRIBUTES under the mask.
    pub attributes: [u8; 16],
    /// ATTRIBUTES mask.
    pub attributes_mask: [u8; 16],
    /// Expected MRSIGNER.
    pub mrsigner: [u8; 32],
    /// Expected ISVPRODID.
    pub isv_prod_id: u16,
    /// TCB levels, highest first.
    pub tcb_levels: Vec<QeTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeIdentity {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<RawQeLevel>,
}

#[derive(Deserialize)]
struct RawIsvSvn {
    isvsvn: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeLevel {
    tcb: RawIsvSvn,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

impl QeIdentity {
    /// Parses the enclave identity JSON (the `enclaveIdentity` object).
    pub fn parse(json: &[u8]) -> Result<QeIdentity, DcapError> {
        if json.len() > MAX_QE_IDENTITY {
            return Err(DcapError::TooLarge {
                what: "QE identity",
                len: json.len(),
                max: MAX_QE_IDENTITY,
            });
        }
        let raw: RawQeIdentity = serde_json::from_slice(json).map_err(|e| DcapError::Json {
            what: "QE identity",
            reason: e.to_string(),
        })?;
        if raw.version != 2 {
            return Err(DcapError::invalid(
                "QE identity",
                format!("unsupported version {}", raw.version),
            ));
        }
        let tcb_levels = raw
            .tcb_levels
            .into_iter()
            .map(|l| {
                Ok(QeTcbLevel {
                    isv_svn: l.tcb.isvsvn,
                    tcb_date: l.tcb_date,
                    status: level_status(&l.tcb_status, "QE identity level tcbStatus")?,
                    advisory_ids: l.advisory_ids,
                })
            })
            .collect::<Result<Vec<_>, DcapError>>()?;
        Ok(QeIdentity {
            id: raw.id,
            version: raw.version,
            issue_date: date(&raw.issue_date, "QE identity issueDate")?,
            next_update: date(&raw.next_update, "QE identity nextUpdate")?,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            miscselect: hex_array(&raw.miscselect, "QE identity miscselect")?,
            miscselect_mask: hex_array(&raw.miscselect_mask, "QE identity miscselectMask")?,
            attributes: hex_array(&raw.attributes, "QE identity attributes")?,
            attributes_mask: hex_array(&raw.attributes_mask, "QE identity attributesMask")?,
            mrsigner: hex_array(&raw.mrsigner, "QE identity mrsigner")?,
            isv_prod_id: raw.isvprodid,
            tcb_levels,
        })
    }

    /// Checks the QE report against the identity: MISCSELECT and ATTRIBUTES under
    /// their masks equal the expected values, MRSIGNER and ISVPRODID equal. Reports
    /// every mismatch.
    pub fn check_report(&self, qe: &EnclaveReport) -> Result<(), String> {
        let mut errors = Vec::new();
        let masked_equal = |actual: &[u8], mask: &[u8], expected: &[u8]| {
            actual
                .iter()
                .zip(mask)
                .map(|(a, m)| a & m)
                .eq(expected.iter().copied())
        };
        if !masked_equal(&qe.misc_select, &self.miscselect_mask, &self.miscselect) {
            errors.push(format!(
                "MISCSELECT {} under mask {} is not {}",
                hex::encode(qe.misc_select),
                hex::encode(self.miscselect_mask),
                hex::encode(self.miscselect)
            ));
        }
        if !masked_equal(&qe.attributes, &self.attributes_mask, &self.attributes) {
            errors.push(format!(
                "ATTRIBUTES {} under mask {} is not {}",
                hex::encode(qe.attributes),
                hex::encode(self.attributes_mask),
                hex::encode(self.attributes)
            ));
        }
        if qe.mr_signer != self.mrsigner {
            errors.push(format!(
                "MRSIGNER {} is not {}",
                hex::encode(qe.mr_signer),
                hex::encode(self.mrsigner)
            ));
        }
        if qe.isv_prod_id != self.isv_prod_id {
            errors.push(format!(
                "ISVPRODID {} is not {}",
                qe.isv_prod_id, self.isv_prod_id
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The first level (in listed order) whose ISVSVN the QE meets.
    pub fn level_for(&self, isv_svn: u16) -> Option<&QeTcbLevel> {
        self.tcb_levels.iter().find(|l| isv_svn >= l.isv_svn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGX_QE: &str = r#"{"id":"QE","version":2,"issueDate":"2025-06-19T10:01:18Z",
      "nextUpdate":"2025-07-19T10:01:18Z","tcbEvaluationDataNumber":17,"miscselect":"00000000",
      "miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000",
      "attributesMask":"FBFFFFFFFFFFFFFF0000000000000000",
      "mrsigner":"8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF","isvprodid":1,
      "tcbLevels":[{"tcb":{"isvsvn":8},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"},
        {"tcb":{"isvsvn":6},"tcbDate":"2021-11-10T00:00:00Z","tcbStatus":"OutOfDate","advisoryIDs":["INTEL-SA-00615"]}]}"#;

    fn qe_report(id: &QeIdentity) -> EnclaveReport {
        let mut attributes = [0u8; 16];
        attributes[0] = 0x15; // INIT, PROVISIONKEY, and MODE64BIT (outside the mask)
        attributes[8] = 0xe7; // XFRM, outside the mask
        EnclaveReport {
            cpu_svn: [0; 16],
            misc_select: [0; 4],
            attributes,
            mr_enclave: [0; 32],
            mr_signer: id.mrsigner,
            isv_prod_id: 1,
            isv_svn: 7,
            report_data: [0; 64],
        }
    }

    #[test]
    fn matches_under_masks_and_selects_levels() {
        let id = QeIdentity::parse(SGX_QE.as_bytes()).unwrap();
        assert_eq!(id.id, "QE");
        let r = qe_report(&id);
        id.check_report(&r).unwrap();
        assert_eq!(id.level_for(7).unwrap().status, TcbStatus::OutOfDate);
        assert_eq!(id.level_for(9).unwrap().status, TcbStatus::UpToDate);
        assert!(id.level_for(5).is_none());
        let mut debug = r.clone();
        debug.attributes[0] |= 0x02;
        assert!(id.check_report(&debug).unwrap_err().contains("ATTRIBUTES"));
        let mut other = r.clone();
        other.mr_signer[0] ^= 1;
        other.isv_prod_id = 2;
        other.misc_select[0] = 1;
        let e = other.clone();
        let msg = id.check_report(&e).unwrap_err();
        assert!(
            msg.contains("MRSIGNER") && msg.contains("ISVPRODID") && msg.contains("MISCSELECT")
        );
    }

    #[test]
    fn refuses_wrong_shapes() {
        assert!(
            QeIdentity::parse(SGX_QE.replace("\"version\":2", "\"version\":1").as_bytes()).is_err()
        );
        assert!(QeIdentity::parse(SGX_QE.replace("FBFFFFFF", "FBFF").as_bytes()).is_err());
        assert!(QeIdentity::parse(SGX_QE.replace("\"OutOfDate\"", "\"Old\"").as_bytes()).is_err());
        assert!(matches!(
            QeIdentity::parse(b"not json"),
            Err(DcapError::Json { .. })
        ));
    }
}
