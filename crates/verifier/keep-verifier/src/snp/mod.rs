//! AMD SEV-SNP (placeholder: being written).
use crate::policy::HexBytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct SnpClaims {}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnpPolicy {
    pub report_data: Option<HexBytes>,
}
