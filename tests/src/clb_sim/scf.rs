//! SCF 2018-04-16 `Invoke`, asynchronous only: what the sharded sweep calls. Nothing runs;
//! each accepted call is recorded with its `ClientContext` for the test to inspect (and, if
//! it likes, to deliver as the event itself).

use serde::Serialize;
use serde_json::{json, Value};

use super::clb::{Ctx, Outcome};
use super::params::{ApiError, ApiResult, Obj};

pub const SCF_VERSION: &str = "2018-04-16";

/// Largest `ClientContext` of an async invocation (tencent-cloud-more.md §4.4).
pub const ASYNC_CONTEXT_LIMIT: usize = 128 * 1024;

pub fn is_scf_action(action: &str) -> bool {
    action == "Invoke"
}

/// One accepted asynchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invocation {
    pub function_name: String,
    pub namespace: String,
    pub qualifier: String,
    /// The event exactly as sent (a JSON string).
    pub client_context: String,
    /// `Result.FunctionRequestId` answered.
    pub function_request_id: String,
}

pub(crate) fn dispatch(
    log: &mut Vec<Invocation>,
    ctx: &Ctx,
    action: &str,
    p: Obj,
) -> ApiResult<Outcome> {
    if !is_scf_action(action) {
        return Err(ApiError::new(
            "InvalidAction",
            format!("the action `{action}` does not exist"),
        ));
    }
    p.only(&[
        "FunctionName",
        "InvocationType",
        "Qualifier",
        "ClientContext",
        "LogType",
        "Namespace",
        "RoutingKey",
    ])?;
    let function_name = p.req_str("FunctionName")?;
    if function_name.trim().is_empty() {
        return Err(ApiError::new(
            "InvalidParameter.FunctionName",
            "FunctionName is empty",
        ));
    }
    match p.str("InvocationType")?.as_deref() {
        Some("Event") => {}
        other => {
            return Err(p.invalid_value(
                "InvocationType",
                &format!("{other:?}: only asynchronous (`Event`) invocations are emulated"),
            ))
        }
    }
    let client_context = p.str("ClientContext")?.unwrap_or_default();
    if client_context.len() > ASYNC_CONTEXT_LIMIT {
        return Err(p.invalid_value(
            "ClientContext",
            &format!("over the {ASYNC_CONTEXT_LIMIT}-byte limit of async events"),
        ));
    }
    if !client_context.is_empty() && serde_json::from_str::<Value>(&client_context).is_err() {
        return Err(p.invalid_value("ClientContext", "not a JSON string"));
    }
    let function_request_id = format!("{}-fn", ctx.request_id);
    log.push(Invocation {
        function_name,
        namespace: p.str("Namespace")?.unwrap_or_else(|| "default".into()),
        qualifier: p.str("Qualifier")?.unwrap_or_else(|| "$LATEST".into()),
        client_context,
        function_request_id: function_request_id.clone(),
    });
    Ok(Outcome::new(
        json!({"Result": {
            "FunctionRequestId": function_request_id,
            "Log": "", "RetMsg": "", "ErrMsg": "",
            "MemUsage": 0, "Duration": 0, "BillDuration": 0,
        }}),
        Vec::new(),
    ))
}
