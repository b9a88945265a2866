//! The cloud layer's one error type, and which failures are worth another attempt.

/// A failed cloud call. Messages carry the action, the API's code and message and its
/// RequestId (for a support ticket) — never credentials or request headers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    /// The API answered (HTTP 200) with `Response.Error`.
    #[error("{action}: {code}: {message} (RequestId {request_id})")]
    Api {
        action: String,
        code: String,
        message: String,
        request_id: String,
    },
    /// No usable HTTP answer: connect failure, reset, or the attempt timed out.
    #[error("{action}: network error{}: {message}", if *.timeout { " (timeout)" } else { "" })]
    Network {
        action: String,
        message: String,
        timeout: bool,
    },
    /// An HTTP status other than 200 (the API itself always answers 200).
    #[error("{action}: HTTP status {status}")]
    HttpStatus { action: String, status: u16 },
    /// The body was not the API's envelope or not the shape we expect.
    #[error("{action}: could not decode response: {message}")]
    Decode { action: String, message: String },
    /// Retries for one call ran past the call's deadline; `last` is the final failure.
    #[error("{action}: gave up after {attempts} attempts (deadline exceeded); last error: {last}")]
    DeadlineExceeded {
        action: String,
        attempts: u32,
        last: Box<CloudError>,
    },
    /// A batch call succeeded for some items and failed for those named in `failed`
    /// (listener ids for target batches, resource names for tag batches).
    #[error("{action}: failed for {failed:?}: {message} (RequestId {request_id})")]
    PartialFailure {
        action: String,
        failed: Vec<String>,
        message: String,
        request_id: String,
    },
    /// DescribeTaskStatus said the async task failed (Status 1).
    #[error("task {task_id} failed: {message}")]
    TaskFailed { task_id: String, message: String },
    /// The async task was still running at the wait deadline.
    #[error("task {task_id} still running after the wait deadline")]
    TaskTimeout { task_id: String },
    /// CreateLoadBalancer named a CLB that reads say does not exist: the ClientToken was
    /// replayed for a CLB deleted since (its answer is remembered past the deletion).
    #[error("CreateLoadBalancer answered {id}, which no longer exists")]
    CreatedLoadBalancerGone { id: String },
    /// A CLB this run was about to write to does not carry the tags that make it ours (a
    /// replayed ClientToken answered a CLB whose tags changed since, or another Ingress won
    /// the adoption): nothing more is written to it. `code` is the stable E-code.
    #[error("{code}: CLB {lb_id} is not ours to write: {message}")]
    NotOurs {
        lb_id: String,
        code: &'static str,
        message: String,
    },
    /// A ClientToken answered a CLB no longer ours, and the next token could not be recorded
    /// (the Lease changed hands, or another run moved the create epoch): nothing is created.
    #[error("CreateLoadBalancer: the next ClientToken could not be recorded: {0}")]
    TokenNotRecorded(String),
    /// The API's answer contradicted itself (e.g. a created CLB that cannot be found).
    #[error("{action}: unexpected response: {message}")]
    Unexpected { action: String, message: String },
    /// Missing or invalid configuration (environment, endpoints, request built wrongly).
    #[error("cloud configuration: {0}")]
    Config(String),
}

/// Error codes that are transient by their nature: throttling, a busy resource, server
/// trouble. Matches the SDK retryer plus TKE's handling of a busy CLB
/// (tencent-cloud.md §2.5; the policy itself is marked unverified there).
pub fn is_retryable_code(code: &str) -> bool {
    code == "RequestLimitExceeded"
        || code.starts_with("RequestLimitExceeded.")
        || code == "FailedOperation.ResourceInOperating"
        || code == "InternalError"
        || code.starts_with("InternalError.")
        || code == "ServiceUnavailable"
}

impl CloudError {
    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            CloudError::Api { code, .. } => is_retryable_code(code),
            CloudError::Network { .. } => true,
            // The API answers 200 even for errors, so a 5xx or 429 comes from whatever is
            // in front of it and is as transient as ServiceUnavailable; a 4xx means a wrong
            // endpoint or request and will not change.
            CloudError::HttpStatus { status, .. } => *status == 429 || (500..600).contains(status),
            CloudError::Decode { .. }
            | CloudError::DeadlineExceeded { .. }
            | CloudError::PartialFailure { .. }
            | CloudError::TaskFailed { .. }
            | CloudError::TaskTimeout { .. }
            | CloudError::CreatedLoadBalancerGone { .. }
            | CloudError::NotOurs { .. }
            | CloudError::TokenNotRecorded(_)
            | CloudError::Unexpected { .. }
            | CloudError::Config(_) => false,
        }
    }

    /// The API error code, if the API answered with one (looking through a deadline).
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api { code, .. } => Some(code),
            CloudError::NotOurs { code, .. } => Some(code),
            CloudError::DeadlineExceeded { last, .. } => last.code(),
            _ => None,
        }
    }

    /// The RequestId of the failing call, if the API answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CloudError::Api { request_id, .. } | CloudError::PartialFailure { request_id, .. } => {
                Some(request_id)
            }
            CloudError::DeadlineExceeded { last, .. } => last.request_id(),
            _ => None,
        }
    }

    /// The CLB (or listener) is already gone: callers deleting it may treat this as done.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "InvalidParameter.LBIdNotFound"
                    | "InvalidParameter.ListenerIdNotFound"
                    | "InvalidParameter.LocationNotFound"
                    | "ResourceNotFound"
            )
        )
    }

    /// Credentials were rejected; no amount of retrying helps.
    pub fn is_auth_failure(&self) -> bool {
        self.code().is_some_and(|c| c.starts_with("AuthFailure"))
    }

    /// Whether the failure is not this call's alone, so the calls after it in a plan would
    /// fail the same way (or must not be sent): the API out of reach or throttling us past
    /// the retries, the credentials refused, the CLB gone or not ours, the configuration
    /// wrong. Any other failure (a quota, a bad parameter, a failed task) belongs to its call,
    /// and the plan goes on with the calls that do not depend on it.
    pub fn stops_the_plan(&self) -> bool {
        match self {
            CloudError::Api { code, .. } => {
                is_retryable_code(code)
                    || code.starts_with("AuthFailure")
                    || code == "InvalidParameter.LBIdNotFound"
            }
            CloudError::Network { .. }
            | CloudError::HttpStatus { .. }
            | CloudError::DeadlineExceeded { .. }
            | CloudError::CreatedLoadBalancerGone { .. }
            | CloudError::NotOurs { .. }
            | CloudError::TokenNotRecorded(_)
            | CloudError::Config(_) => true,
            CloudError::Decode { .. }
            | CloudError::PartialFailure { .. }
            | CloudError::TaskFailed { .. }
            | CloudError::TaskTimeout { .. }
            | CloudError::Unexpected { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> CloudError {
        CloudError::Api {
            action: "CreateRule".into(),
            code: code.into(),
            message: "m".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn classification_table_marks_only_transient_failures_retryable() {
        let table: &[(&str, bool)] = &[
            ("RequestLimitExceeded", true),
            ("RequestLimitExceeded.UinLimitExceeded", true),
            ("RequestLimitExceeded.GlobalRegionUinLimitExceeded", true),
            ("RequestLimitExceeded.IPLimitExceeded", true),
            ("FailedOperation.ResourceInOperating", true),
            ("InternalError", true),
            ("ServiceUnavailable", true),
            ("FailedOperation", false),
            ("FailedOperation.InvalidLBStatus", false),
            ("FailedOperation.TargetNumCheckRisk", false),
            ("AuthFailure.SignatureFailure", false),
            ("AuthFailure.SecretIdNotFound", false),
            ("AuthFailure.SignatureExpire", false),
            ("InvalidParameter", false),
            ("InvalidParameter.LBIdNotFound", false),
            ("InvalidParameterValue.Length", false),
            ("MissingParameter", false),
            ("UnknownParameter", false),
            ("LimitExceeded", false),
            ("ResourceInUse", false),
            ("UnauthorizedOperation", false),
            ("RequestLimitExceededButNotReally", false),
        ];
        for (code, want) in table {
            assert_eq!(api(code).is_retryable(), *want, "{code}");
        }
    }

    #[test]
    fn network_errors_and_gateway_statuses_are_retryable_others_terminal() {
        let net = CloudError::Network {
            action: "A".into(),
            message: "reset".into(),
            timeout: true,
        };
        assert!(net.is_retryable());
        for (status, want) in [
            (502, true),
            (503, true),
            (504, true),
            (429, true),
            (404, false),
            (400, false),
            (500, true),
        ] {
            let e = CloudError::HttpStatus {
                action: "A".into(),
                status,
            };
            assert_eq!(e.is_retryable(), want, "{status}");
        }
        assert!(!CloudError::Decode {
            action: "A".into(),
            message: "x".into()
        }
        .is_retryable());
        let deadline = CloudError::DeadlineExceeded {
            action: "A".into(),
            attempts: 3,
            last: Box::new(api("RequestLimitExceeded")),
        };
        assert!(!deadline.is_retryable());
        assert_eq!(deadline.code(), Some("RequestLimitExceeded"));
    }

    #[test]
    fn only_failures_of_the_call_itself_let_the_rest_of_a_plan_run() {
        for code in [
            "LimitExceeded",
            "InvalidParameter",
            "InvalidParameterValue",
            "FailedOperation",
            "ResourceInsufficient",
            "UnauthorizedOperation",
        ] {
            assert!(!api(code).stops_the_plan(), "{code}");
        }
        for code in [
            "RequestLimitExceeded",
            "InternalError",
            "AuthFailure.SignatureFailure",
            "InvalidParameter.LBIdNotFound",
        ] {
            assert!(api(code).stops_the_plan(), "{code}");
        }
        let net = CloudError::Network {
            action: "A".into(),
            message: "reset".into(),
            timeout: false,
        };
        assert!(net.stops_the_plan());
        assert!(CloudError::Config("x".into()).stops_the_plan());
        let task = CloudError::TaskFailed {
            task_id: "t".into(),
            message: "m".into(),
        };
        assert!(!task.stops_the_plan());
    }

    #[test]
    fn display_carries_code_message_and_request_id() {
        let e = CloudError::Api {
            action: "CreateRule".into(),
            code: "InvalidParameter".into(),
            message: "bad url".into(),
            request_id: "req-1".into(),
        };
        assert_eq!(
            e.to_string(),
            "CreateRule: InvalidParameter: bad url (RequestId req-1)"
        );
        assert!(api("AuthFailure.SignatureFailure").is_auth_failure());
        assert!(api("InvalidParameter.LBIdNotFound").is_not_found());
    }
}
