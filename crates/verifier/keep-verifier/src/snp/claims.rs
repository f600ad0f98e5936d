//! The claims a verified SEV-SNP report makes, in a serializable form: byte fields
//! as lowercase hex strings, flag words both raw and decoded, TCB versions decoded
//! for the product.

use serde::{Serialize, Serializer};

use super::report::{Cpuid, FirmwareVersion, GuestPolicy, PlatformInfo, Report, SigningKey};
use super::tcb::TcbVersion;
use crate::roots::AmdProduct;

fn hex_bytes<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v.as_ref()))
}

/// What an SEV-SNP report says (meaningful only as far as the checks passed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpClaims {
    /// Report format version (2 to 5).
    pub version: u32,
    /// The product (from the report's CPUID, the VCEK or the chain), if known.
    pub product: Option<AmdProduct>,
    /// The key that signed the report, per the report (`vcek`, `vlek`), or `None`
    /// when the field holds "no key" or a reserved value.
    pub signing_key: Option<SigningKey>,
    /// `AUTHOR_KEY_EN`.
    pub author_key_en: bool,
    /// `MASK_CHIP_KEY`.
    pub mask_chip_key: bool,
    /// `GUEST_SVN`.
    pub guest_svn: u32,
    /// The guest policy, raw and decoded.
    pub policy: GuestPolicy,
    /// The VMPL the report was requested from.
    pub vmpl: u32,
    /// The platform state, raw and decoded.
    pub platform_info: PlatformInfo,
    /// The launch measurement.
    #[serde(serialize_with = "hex_bytes")]
    pub measurement: [u8; 48],
    /// `HOST_DATA`.
    #[serde(serialize_with = "hex_bytes")]
    pub host_data: [u8; 32],
    /// `REPORT_DATA`.
    #[serde(serialize_with = "hex_bytes")]
    pub report_data: [u8; 64],
    /// `ID_KEY_DIGEST`.
    #[serde(serialize_with = "hex_bytes")]
    pub id_key_digest: [u8; 48],
    /// `AUTHOR_KEY_DIGEST`.
    #[serde(serialize_with = "hex_bytes")]
    pub author_key_digest: [u8; 48],
    /// `FAMILY_ID`.
    #[serde(serialize_with = "hex_bytes")]
    pub family_id: [u8; 16],
    /// `IMAGE_ID`.
    #[serde(serialize_with = "hex_bytes")]
    pub image_id: [u8; 16],
    /// `REPORT_ID`.
    #[serde(serialize_with = "hex_bytes")]
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA`.
    #[serde(serialize_with = "hex_bytes")]
    pub report_id_ma: [u8; 32],
    /// `CHIP_ID` (zero for VLEK-signed reports or when masked).
    #[serde(serialize_with = "hex_bytes")]
    pub chip_id: [u8; 64],
    /// `REPORTED_TCB`: the TCB the VCEK is certified for.
    pub reported_tcb: TcbVersion,
    /// `CURRENT_TCB`.
    pub current_tcb: TcbVersion,
    /// `COMMITTED_TCB`.
    pub committed_tcb: TcbVersion,
    /// `LAUNCH_TCB`: the TCB when the guest was launched.
    pub launch_tcb: TcbVersion,
    /// The running firmware version.
    pub current_firmware: FirmwareVersion,
    /// The committed firmware version.
    pub committed_firmware: FirmwareVersion,
    /// CPU family, model and stepping (report version 3 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuid: Option<Cpuid>,
    /// `LAUNCH_MIT_VECTOR` (report version 5 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_mit_vector: Option<u64>,
    /// `CURRENT_MIT_VECTOR` (report version 5 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_mit_vector: Option<u64>,
}

impl SnpClaims {
    /// The claims of `report`, with TCB versions decoded for `product` (Milan's
    /// layout when the product is unknown; the evidence is then not genuine).
    pub fn from_report(report: &Report, product: Option<AmdProduct>) -> Self {
        let layout = product.unwrap_or(AmdProduct::Milan);
        let tcb = |raw| TcbVersion::decode(raw, layout);
        SnpClaims {
            version: report.version,
            product,
            signing_key: report.signing_key(),
            author_key_en: report.author_key_en(),
            mask_chip_key: report.mask_chip_key(),
            guest_svn: report.guest_svn,
            policy: report.policy,
            vmpl: report.vmpl,
            platform_info: report.platform_info,
            measurement: report.measurement,
            host_data: report.host_data,
            report_data: report.report_data,
            id_key_digest: report.id_key_digest,
            author_key_digest: report.author_key_digest,
            family_id: report.family_id,
            image_id: report.image_id,
            report_id: report.report_id,
            report_id_ma: report.report_id_ma,
            chip_id: report.chip_id,
            reported_tcb: tcb(report.reported_tcb),
            current_tcb: tcb(report.current_tcb),
            committed_tcb: tcb(report.committed_tcb),
            launch_tcb: tcb(report.launch_tcb),
            current_firmware: report.current_firmware,
            committed_firmware: report.committed_firmware,
            cpuid: report.cpuid,
            launch_mit_vector: report.launch_mit_vector,
            current_mit_vector: report.current_mit_vector,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_bytes_as_hex_and_tcbs_per_product() {
        let turin = Report::parse(include_bytes!(
            "../../tests/vectors/snp/turin-oak-v5/report.bin"
        ))
        .unwrap();
        let claims = SnpClaims::from_report(&turin, Some(AmdProduct::Turin));
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["product"], "Turin");
        assert_eq!(json["signing_key"], "vcek");
        assert_eq!(json["version"], 5);
        assert_eq!(json["chip_id"].as_str().unwrap().len(), 128);
        assert!(
            json["chip_id"]
                .as_str()
                .unwrap()
                .starts_with("3b42092f69c656d3")
        );
        assert_eq!(json["reported_tcb"]["fmc"], 0);
        assert_eq!(json["reported_tcb"]["bootloader"], 1);
        assert_eq!(json["reported_tcb"]["snp"], 2);
        assert_eq!(json["reported_tcb"]["microcode"], 71);
        assert_eq!(json["cpuid"]["family"], 0x1a);
        assert_eq!(json["policy"]["smt"], true);
        assert_eq!(json["policy"]["debug"], false);
        assert_eq!(json["launch_mit_vector"], 0);

        let milan = Report::parse(include_bytes!(
            "../../tests/vectors/snp/milan-virtee/report.bin"
        ))
        .unwrap();
        let json = serde_json::to_value(SnpClaims::from_report(&milan, None)).unwrap();
        assert_eq!(json["product"], serde_json::Value::Null);
        assert!(json.get("cpuid").is_none(), "v2 has no CPUID");
        assert!(json.get("launch_mit_vector").is_none());
        assert!(json["reported_tcb"].get("fmc").is_none());
        assert_eq!(json["reported_tcb"]["microcode"], 115);
        assert_eq!(json["current_firmware"]["major"], 1);
    }
}
