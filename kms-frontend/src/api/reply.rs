//! `AwsReply`: what an API handler hands back to `server`, independent of
//! hyper. `server` turns it into an HTTP response with
//! `content-type: application/x-amz-json-1.1`, `x-amzn-RequestId` and, for
//! errors, `x-amzn-ErrorType`.

/// A finished reply: status, JSON body and, for errors, the AWS error name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsReply {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Some("NotFoundException")` etc. for errors, `None` on success.
    pub error_type: Option<&'static str>,
}

impl AwsReply {
    /// A 200 reply with a JSON body.
    pub fn ok(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            body,
            error_type: None,
        }
    }

    /// An AWS-shaped error: `{"__type": name, "message": message}`.
    /// `message` must not contain secrets, SQL or paths.
    pub fn error(status: u16, name: &'static str, message: &str) -> Self {
        let body = serde_json::json!({ "__type": name, "message": message });
        Self {
            status,
            body: body.to_string().into_bytes(),
            error_type: Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_has_aws_shape() {
        let r = AwsReply::error(400, "NotFoundException", "Key 'x' does not exist");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["__type"], "NotFoundException");
        assert_eq!(v["message"], "Key 'x' does not exist");
        assert_eq!(r.error_type, Some("NotFoundException"));
    }
}
