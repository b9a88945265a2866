//! Typed SCF API 2018-04-16 call: `Invoke` with `InvocationType: "Event"` (asynchronous),
//! which the sharded sweep uses to start its shards (tencent-cloud-more.md §4.4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clb::nullable;
use super::client::CloudClient;
use super::error::CloudError;

/// SCF API service name and version.
pub const SCF_SERVICE: &str = "scf";
pub const SCF_VERSION: &str = "2018-04-16";

/// Largest `ClientContext` of an asynchronous invocation (SCF's async event limit).
pub const ASYNC_EVENT_LIMIT: usize = 128 * 1024;

/// Which function to invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScfFunction {
    pub name: String,
    /// SCF's default is `default`.
    pub namespace: String,
    /// Version or alias; SCF's default (`$LATEST`) when `None`.
    pub qualifier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeRequest {
    pub function_name: String,
    /// Always `Event` here: the caller does not wait for the function.
    pub invocation_type: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// The event, as a JSON string (not an object).
    pub client_context: String,
}

impl InvokeRequest {
    /// An asynchronous invocation of `function` with `event`; refuses events over the limit.
    pub fn event(function: &ScfFunction, event: &Value) -> Result<Self, CloudError> {
        let client_context = event.to_string();
        if client_context.len() > ASYNC_EVENT_LIMIT {
            return Err(CloudError::Config(format!(
                "Invoke: event of {} bytes is over the {ASYNC_EVENT_LIMIT}-byte async limit",
                client_context.len()
            )));
        }
        Ok(Self {
            function_name: function.name.clone(),
            invocation_type: "Event".into(),
            namespace: function.namespace.clone(),
            qualifier: function.qualifier.clone(),
            client_context,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct InvokeResult {
    /// The only meaningful field of an async invocation's result.
    #[serde(deserialize_with = "nullable")]
    pub function_request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct InvokeResponse {
    pub result: InvokeResult,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

impl CloudClient {
    /// `Invoke`: queues the invocation and returns once SCF has accepted it.
    pub async fn invoke(&self, request: &InvokeRequest) -> Result<InvokeResponse, CloudError> {
        self.call_typed(SCF_SERVICE, SCF_VERSION, "Invoke", request)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn function(qualifier: Option<&str>) -> ScfFunction {
        ScfFunction {
            name: "clb-ingress".into(),
            namespace: "prod".into(),
            qualifier: qualifier.map(str::to_string),
        }
    }

    #[test]
    fn invoke_request_is_async_with_the_event_as_a_json_string() {
        let ev = json!({"clbIngressSweepShard": {"index": 1, "count": 3, "generation": "g"}});
        let req = InvokeRequest::event(&function(Some("$LATEST")), &ev).unwrap();
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(
            body,
            json!({
                "FunctionName": "clb-ingress",
                "InvocationType": "Event",
                "Namespace": "prod",
                "Qualifier": "$LATEST",
                "ClientContext": ev.to_string(),
            })
        );
        let back: Value = serde_json::from_str(body["ClientContext"].as_str().unwrap()).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn invoke_request_omits_an_unset_qualifier() {
        let req = InvokeRequest::event(&function(None), &json!({})).unwrap();
        let body = serde_json::to_value(&req).unwrap();
        assert!(body.get("Qualifier").is_none());
    }

    #[test]
    fn an_event_over_the_async_limit_is_refused_before_sending() {
        let big = json!({"x": "y".repeat(ASYNC_EVENT_LIMIT)});
        assert!(matches!(
            InvokeRequest::event(&function(None), &big),
            Err(CloudError::Config(_))
        ));
    }

    #[test]
    fn invoke_response_reads_the_function_request_id() {
        let r: InvokeResponse = serde_json::from_value(json!({
            "Result": {"FunctionRequestId": "f-1", "Log": "", "RetMsg": "", "ErrMsg": "",
                       "MemUsage": 0, "Duration": 0, "BillDuration": 0},
            "RequestId": "r-1"
        }))
        .unwrap();
        assert_eq!(r.result.function_request_id, "f-1");
        assert_eq!(r.request_id, "r-1");
    }
}
