//! Intel DCAP: TDX and SGX quotes (placeholder: being written).
use crate::policy::HexBytes;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct TdxClaims {}
#[derive(Debug, Clone, Serialize)]
pub struct SgxClaims {}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TdxPolicy {
    pub report_data: Option<HexBytes>,
}
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgxPolicy {
    pub report_data: Option<HexBytes>,
}
