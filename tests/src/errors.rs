//! Reading AWS errors out of SDK results: the error code (`__type` /
//! `x-amzn-ErrorType`), the message and the HTTP status, plus `assert_err!`.

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// What the service said when a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    pub code: Option<String>,
    pub message: Option<String>,
    pub status: Option<u16>,
}

/// Code, message and status of an SDK error.
pub fn err_info<E>(err: &SdkError<E, HttpResponse>) -> ErrInfo
where
    E: ProvideErrorMetadata,
{
    ErrInfo {
        code: err.code().map(str::to_owned),
        message: err.message().map(str::to_owned),
        status: err.raw_response().map(|r| r.status().as_u16()),
    }
}

/// Asserts that an SDK call failed with the AWS error code `$code` and
/// evaluates to its [`ErrInfo`].
#[macro_export]
macro_rules! assert_err {
    ($res:expr, $code:expr) => {{
        match $res {
            Ok(v) => panic!("expected {} but the call succeeded: {:?}", $code, v),
            Err(e) => {
                let info = $crate::err_info(&e);
                assert_eq!(
                    info.code.as_deref(),
                    Some($code),
                    "wrong error (status {:?}, message {:?}): {:?}",
                    info.status,
                    info.message,
                    e
                );
                info
            }
        }
    }};
}
