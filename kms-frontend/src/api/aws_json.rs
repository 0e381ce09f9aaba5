//! STUB, to be replaced by the KMS work: AWS KMS JSON 1.1 dispatch.

use super::AwsReply;
use crate::principal::Principal;
use crate::service::Kms;

/// Handles one authenticated `POST /` with `X-Amz-Target: TrentService.<Op>`.
pub async fn dispatch(
    kms: &Kms,
    principal: &Principal,
    request_id: &str,
    target: &str,
    body: &[u8],
) -> AwsReply {
    let _ = (kms, principal, request_id, body);
    AwsReply::error(
        400,
        "UnknownOperationException",
        &format!("unknown operation {target}"),
    )
}
