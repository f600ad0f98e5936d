//! The report bodies a DCAP quote carries: the SGX enclave report (also the QE
//! report), and the TDX TD report in its 1.0 and 1.5 layouts. Fields are read at
//! fixed offsets; reserved areas are skipped, not interpreted.

use super::error::DcapError;
use super::reader::Reader;

/// Size of an SGX enclave report (`sgx_report_body_t`).
pub const ENCLAVE_REPORT_LEN: usize = 384;
/// Size of a TD report 1.0 body (quote v4 and v5 body type 2).
pub const TD_REPORT10_LEN: usize = 584;
/// Size of a TD report 1.5 body (quote v5 body type 3).
pub const TD_REPORT15_LEN: usize = 648;

/// An SGX enclave report: the body of an SGX quote and the QE report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveReport {
    /// CPUSVN of the platform the enclave ran on.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT, as the four little-endian bytes of the report.
    pub misc_select: [u8; 4],
    /// ATTRIBUTES (flags in the first 8 bytes, XFRM in the last 8).
    pub attributes: [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// The DEBUG flag of ATTRIBUTES (bit 1).
    pub fn debug(&self) -> bool {
        self.attributes[0] & 0x02 != 0
    }

    /// Parses exactly [`ENCLAVE_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, DcapError> {
        let mut r = Reader::new(bytes);
        let cpu_svn = r.array("enclave report CPUSVN")?;
        let misc_select = r.array("enclave report MISCSELECT")?;
        r.take(28, "enclave report reserved")?;
        let attributes = r.array("enclave report ATTRIBUTES")?;
        let mr_enclave = r.array("enclave report MRENCLAVE")?;
        r.take(32, "enclave report reserved")?;
        let mr_signer = r.array("enclave report MRSIGNER")?;
        r.take(96, "enclave report reserved")?;
        let isv_prod_id = r.u16("enclave report ISVPRODID")?;
        let isv_svn = r.u16("enclave report ISVSVN")?;
        r.take(60, "enclave report reserved")?;
        let report_data = r.array("enclave report REPORTDATA")?;
        r.finish("enclave report")?;
        Ok(EnclaveReport {
            cpu_svn,
            misc_select,
            attributes,
            mr_enclave,
            mr_signer,
            isv_prod_id,
            isv_svn,
            report_data,
        })
    }
}

/// A TD report 1.0 (TDX 1.0 module; also the first part of the 1.5 layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport10 {
    /// TEE_TCB_SVN: [0] TDX module SVN, [1] TDX module major version, [2..] other components.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM: signer of the TDX module (zero for Intel's).
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TD_ATTRIBUTES (little-endian 64-bit flags).
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD: measurement of the initial TD contents.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl TdReport10 {
    /// Reads the 584-byte 1.0 layout from `r`.
    fn read(r: &mut Reader<'_>) -> Result<Self, DcapError> {
        Ok(TdReport10 {
            tee_tcb_svn: r.array("TD report TEE_TCB_SVN")?,
            mr_seam: r.array("TD report MRSEAM")?,
            mr_signer_seam: r.array("TD report MRSIGNERSEAM")?,
            seam_attributes: r.array("TD report SEAMATTRIBUTES")?,
            td_attributes: r.array("TD report TDATTRIBUTES")?,
            xfam: r.array("TD report XFAM")?,
            mr_td: r.array("TD report MRTD")?,
            mr_config_id: r.array("TD report MRCONFIGID")?,
            mr_owner: r.array("TD report MROWNER")?,
            mr_owner_config: r.array("TD report MROWNERCONFIG")?,
            rtmr: [
                r.array("TD report RTMR0")?,
                r.array("TD report RTMR1")?,
                r.array("TD report RTMR2")?,
                r.array("TD report RTMR3")?,
            ],
            report_data: r.array("TD report REPORTDATA")?,
        })
    }

    /// Parses exactly [`TD_REPORT10_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, DcapError> {
        let mut r = Reader::new(bytes);
        let report = Self::read(&mut r)?;
        r.finish("TD report 1.0")?;
        Ok(report)
    }
}

/// A TD report 1.5 (TDX 1.5 module): the 1.0 fields plus two more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport15 {
    /// The fields shared with TD report 1.0.
    pub base: TdReport10,
    /// TEE_TCB_SVN2: the TCB of the module currently loaded (after a TD-preserving update).
    pub tee_tcb_svn2: [u8; 16],
    /// MRSERVICETD: hash of the service TDs bound to this TD (zero when none).
    pub mr_service_td: [u8; 48],
}

impl TdReport15 {
    /// Parses exactly [`TD_REPORT15_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, DcapError> {
        let mut r = Reader::new(bytes);
        let base = TdReport10::read(&mut r)?;
        let tee_tcb_svn2 = r.array("TD report TEE_TCB_SVN2")?;
        let mr_service_td = r.array("TD report MRSERVICETD")?;
        r.finish("TD report 1.5")?;
        Ok(TdReport15 {
            base,
            tee_tcb_svn2,
            mr_service_td,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclave_report_fields_sit_at_their_offsets() {
        let mut b = [0u8; ENCLAVE_REPORT_LEN];
        b[0] = 0x0b;
        b[16] = 0x01;
        b[48] = 0x07;
        b[64] = 0xaa;
        b[128] = 0xbb;
        b[256] = 0x02;
        b[258] = 0x03;
        b[320] = 0xcc;
        b[383] = 0xdd;
        let r = EnclaveReport::parse(&b).unwrap();
        assert_eq!(r.cpu_svn[0], 0x0b);
        assert_eq!(r.misc_select, [1, 0, 0, 0]);
        assert!(r.debug());
        assert_eq!((r.mr_enclave[0], r.mr_signer[0]), (0xaa, 0xbb));
        assert_eq!((r.isv_prod_id, r.isv_svn), (2, 3));
        assert_eq!((r.report_data[0], r.report_data[63]), (0xcc, 0xdd));
        assert!(EnclaveReport::parse(&b[..383]).is_err());
        assert!(EnclaveReport::parse(&[0u8; 385]).is_err());
    }

    #[test]
    fn td_reports_fields_sit_at_their_offsets() {
        let mut b = [0u8; TD_REPORT15_LEN];
        b[1] = 0x01; // module major version
        b[120] = 0x01; // DEBUG
        b[136] = 0x11; // MRTD
        b[472] = 0x33; // RTMR3
        b[520] = 0x44; // REPORTDATA
        b[584] = 0x55; // TEE_TCB_SVN2
        b[600] = 0x66; // MRSERVICETD
        let r = TdReport15::parse(&b).unwrap();
        assert_eq!(r.base.tee_tcb_svn[1], 1);
        assert_eq!(r.base.td_attributes[0], 1);
        assert_eq!(r.base.mr_td[0], 0x11);
        assert_eq!(r.base.rtmr[3][0], 0x33);
        assert_eq!(r.base.report_data[0], 0x44);
        assert_eq!((r.tee_tcb_svn2[0], r.mr_service_td[0]), (0x55, 0x66));
        let r10 = TdReport10::parse(&b[..TD_REPORT10_LEN]).unwrap();
        assert_eq!(r10, r.base);
        assert!(TdReport10::parse(&b).is_err());
        assert!(TdReport15::parse(&b[..TD_REPORT15_LEN - 1]).is_err());
    }
}
