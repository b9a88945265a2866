//! The HTTP front: authentication, routing of resource and discovery paths, content
//! negotiation (JSON, Table), fault injection, the request log and audit emission.

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::audit::{self, AuditBackend, AuditRecord, UserInfo};
use super::discovery;
use super::openapi;
use super::patch::{self, PatchKind};
use super::protobuf;
use super::rbac;
use super::resources::{self, ResourceType, TOKEN_SUBRESOURCE};
use super::selector::{labels_of, FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{self, Preconditions, Store};
use super::table;
use super::validate;

/// Largest request body accepted (the apiserver's limit is 3 MiB for most requests).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// One request as the sim saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    pub username: String,
    pub audit_id: String,
}

/// A planned failure: the next `remaining` requests with this method and path (a trailing
/// `*` makes it a prefix) get `code`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path: String,
    pub remaining: u32,
    pub code: u16,
}

impl Fault {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining > 0
            && self.method.eq_ignore_ascii_case(method)
            && match self.path.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => self.path == path,
            }
    }
}

/// State shared by the server task and the handle.
pub struct Shared {
    pub store: Mutex<Store>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<Vec<Fault>>,
    /// bearer token → username
    pub tokens: Mutex<HashMap<String, String>>,
    pub audit: Option<AuditBackend>,
    pub server_address: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("server_address", &self.server_address)
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

/// What a handled request answers.
enum Reply {
    Json(u16, Value),
    Text(u16, &'static str),
    Bytes(u16, &'static str, Vec<u8>),
}

/// What the audit event of a write needs beyond the reply.
struct AuditCtx {
    verb: &'static str,
    resource: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    request_object: Option<Value>,
}

/// The parsed URL of a resource request.
struct Target {
    t: &'static ResourceType,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn user_for(shared: &Shared, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(auth) = auth else {
        // kubectl (client-go) never sends a bearer token over plain HTTP, so a request
        // without credentials is the admin, as on the apiserver's old insecure port.
        return Ok(UserInfo {
            username: super::ADMIN_USER.into(),
            groups: vec![
                "kubeadm:cluster-admins".into(),
                "system:authenticated".into(),
            ],
        });
    };
    let token = auth
        .strip_prefix("Bearer ")
        .ok_or_else(ApiError::unauthorized)?
        .trim();
    let tokens = shared
        .tokens
        .lock()
        .map_err(|_| ApiError::for_code(500, "lock poisoned"))?;
    let username = tokens
        .get(token)
        .cloned()
        .ok_or_else(ApiError::unauthorized)?;
    let mut groups = rbac::service_account_groups(&username);
    groups.push("system:authenticated".to_string());
    if username == super::ADMIN_USER {
        groups.insert(0, "kubeadm:cluster-admins".into());
    }
    Ok(UserInfo { username, groups })
}

fn parse_target(path: &str) -> Option<Result<Target, ApiError>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if *plural != "status" && *plural != "finalize" => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let no_route = || Some(Err(ApiError::no_route(path)));
    let Some(t) = resources::lookup(group, version, rest[0]) else {
        return no_route();
    };
    if rest.len() > 3 || (!t.namespaced && ns.is_some()) {
        return no_route();
    }
    let name = rest.get(1).map(|s| s.to_string());
    let sub = rest.get(2).map(|s| s.to_string());
    if t.namespaced && ns.is_none() && name.is_some() {
        return no_route();
    }
    if let Some(s) = &sub {
        let token = s == TOKEN_SUBRESOURCE && t.group.is_empty() && t.plural == "serviceaccounts";
        if !token && (s != "status" || !t.status_subresource) {
            return no_route();
        }
    }
    Some(Ok(Target { t, ns, name, sub }))
}

fn query_map(query: &str) -> HashMap<String, String> {
    let uri: Result<axum::http::Uri, _> = format!("/?{query}").parse();
    uri.ok()
        .and_then(|u| {
            axum::extract::Query::<HashMap<String, String>>::try_from_uri(&u)
                .ok()
                .map(|q| q.0)
        })
        .unwrap_or_default()
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.starts_with("application/vnd.kubernetes.protobuf") {
        return protobuf::decode(body);
    }
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::unsupported_body(ct));
    }
    if ct.contains("yaml") {
        return patch::parse_apply_body(body);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn strip_type_meta(t: &ResourceType, mut o: Value) -> Value {
    if t.builtin {
        if let Some(m) = o.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
    }
    o
}

fn continue_key(o: &Value) -> String {
    use base64::Engine;
    let ns = o
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ns}/{name}"))
}

fn list(
    store: &Store,
    tg: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Reply, ApiError> {
    let t = tg.t;
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return Err(ApiError::method_not_allowed(
            "GET",
            "watch (kube-sim serves no watches)",
        ));
    }
    let ls = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
    let fs = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), t.plural)?;
    let mut items: Vec<Value> = store
        .list(t, tg.ns.as_deref())
        .into_iter()
        .filter(|o| ls.matches(&labels_of(o)) && fs.matches(o))
        .collect();
    if let Some(token) = q.get("continue").filter(|c| !c.is_empty()) {
        let pos = items.iter().position(|o| continue_key(o) == *token);
        let Some(pos) = pos else {
            return Err(ApiError::bad_request("continue key is not valid"));
        };
        items.drain(..=pos);
    }
    let limit = q
        .get("limit")
        .map(|l| l.parse::<usize>())
        .transpose()
        .map_err(|_| ApiError::bad_request("limit must be a non-negative integer"))?
        .unwrap_or(0);
    let rv = store.resource_version();
    let mut meta = json!({ "resourceVersion": rv });
    if limit > 0 && items.len() > limit {
        let rest = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            meta["continue"] = json!(continue_key(last));
            meta["remainingItemCount"] = json!(rest);
        }
    }
    if wants_table(headers) {
        let inc = q.get("includeObject").map_or("Metadata", String::as_str);
        return Ok(Reply::Json(200, table::table(t, &items, inc, &rv)));
    }
    Ok(Reply::Json(
        200,
        json!({
            "kind": t.list_kind(),
            "apiVersion": t.api_version(),
            "metadata": meta,
            "items": items.into_iter().map(|o| strip_type_meta(t, o)).collect::<Vec<_>>(),
        }),
    ))
}

fn preconditions(body: &Option<Value>) -> Preconditions {
    let p = body.as_ref().and_then(|b| b.get("preconditions"));
    let get = |k: &str| {
        p.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Preconditions {
        uid: get("uid"),
        resource_version: get("resourceVersion"),
    }
}

/// The success body of a delete that removed the object at once (upstream `finalizeDelete`:
/// built-in types answer a Status, custom resources the object).
fn deleted_reply(t: &ResourceType, obj: Value) -> Value {
    let removed_now = obj.pointer("/metadata/deletionTimestamp").is_none();
    if !removed_now || !t.builtin {
        return obj;
    }
    let mut details = json!({
        "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "kind": t.plural,
        "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
    });
    if !t.group.is_empty() {
        details["group"] = json!(t.group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// Handles a request on a resource path. Returns the reply and, for writes, the audit
/// context.
fn resource_request(
    shared: &Shared,
    method: &Method,
    tg: Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> (Result<Reply, ApiError>, Option<AuditCtx>, Vec<String>) {
    let t = tg.t;
    let ns = tg.ns.clone();
    let name = tg.name.clone();
    let status_only = tg.sub.is_some();
    let verb: Option<&'static str> = match (method.as_str(), &name) {
        ("POST", None) => Some("create"),
        ("PUT", Some(_)) => Some("update"),
        ("PATCH", Some(_)) => Some("patch"),
        ("DELETE", Some(_)) => Some("delete"),
        ("DELETE", None) => Some("deletecollection"),
        _ => None,
    };
    let patch_kind = if method == Method::PATCH {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Some(PatchKind::from_content_type(ct))
    } else {
        None
    };
    let parsed: Result<Option<Value>, ApiError> = if body.is_empty() {
        Ok(None)
    } else {
        match patch_kind {
            Some(Ok(PatchKind::Apply)) => patch::parse_apply_body(body).map(Some),
            Some(Ok(_)) => serde_json::from_slice(body)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}"))),
            Some(Err(_)) => Ok(None),
            None => parse_body(headers, body).map(Some),
        }
    };
    // Server-side field validation (`fieldValidation`, default Warn): unknown fields are
    // refused under Strict, else dropped with a warning. JSON patches are not checked.
    let mut warnings = Vec::new();
    let parsed = parsed.and_then(|body| {
        let Some(mut body) = body else {
            return Ok(None);
        };
        let checked = !matches!(patch_kind, Some(Ok(PatchKind::Json)))
            && matches!(method.as_str(), "POST" | "PUT" | "PATCH");
        if checked {
            let unknown = validate::unknown_fields(t, &body);
            if !unknown.is_empty() {
                let mode = q.get("fieldValidation").map_or("Warn", String::as_str);
                let msgs: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                match mode {
                    "Strict" => {
                        return Err(ApiError::bad_request(format!(
                            "strict decoding error: {}",
                            msgs.join(", ")
                        )))
                    }
                    "Ignore" => {}
                    _ => warnings = msgs,
                }
                validate::prune_unknown_fields(&mut body, &unknown);
            }
        }
        Ok(Some(body))
    });
    let ctx = verb.map(|verb| AuditCtx {
        verb,
        resource: t,
        namespace: ns.clone(),
        name: name.clone(),
        subresource: tg.sub.clone(),
        request_object: parsed.as_ref().ok().cloned().flatten(),
    });
    let result = (|| -> Result<Reply, ApiError> {
        let body = parsed?;
        let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
        let mut guard = shared
            .store
            .lock()
            .map_err(|_| ApiError::for_code(500, "store lock poisoned"))?;
        let mut scratch;
        let store: &mut Store = if dry_run {
            scratch = guard.clone();
            &mut scratch
        } else {
            &mut guard
        };
        let need_body = || {
            body.clone()
                .ok_or_else(|| ApiError::bad_request("request body is required"))
        };
        match (method.as_str(), name.as_deref()) {
            ("GET", None) => list(store, &tg, q, headers),
            ("GET", Some(n)) => {
                let o = store.get(t, ns.as_deref(), n)?;
                if wants_table(headers) {
                    let inc = q.get("includeObject").map_or("Metadata", String::as_str);
                    let rv = store.resource_version();
                    return Ok(Reply::Json(200, table::table(t, &[o], inc, &rv)));
                }
                Ok(Reply::Json(200, o))
            }
            ("POST", None) => {
                if t.namespaced && ns.is_none() {
                    return Err(ApiError::method_not_allowed("POST", t.plural));
                }
                Ok(Reply::Json(
                    201,
                    store.create(t, ns.as_deref(), need_body()?)?,
                ))
            }
            ("PUT", Some(n)) => {
                let w = store.update(t, ns.as_deref(), n, need_body()?, status_only)?;
                Ok(Reply::Json(if w.created { 201 } else { 200 }, w.object))
            }
            ("PATCH", Some(n)) => {
                let kind = patch_kind.unwrap_or(Ok(PatchKind::Merge))?;
                if kind == PatchKind::Apply && q.get("fieldManager").is_none_or(String::is_empty) {
                    return Err(ApiError::bad_request(
                        "fieldManager is required for apply requests",
                    ));
                }
                let w = store.patch(t, ns.as_deref(), n, kind, &need_body()?, status_only)?;
                Ok(Reply::Json(if w.created { 201 } else { 200 }, w.object))
            }
            ("DELETE", Some(n)) => {
                let o = store.delete(t, ns.as_deref(), n, &preconditions(&body))?;
                Ok(Reply::Json(200, deleted_reply(t, o)))
            }
            ("DELETE", None) => {
                let ls = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
                let fs = FieldSelector::parse(
                    q.get("fieldSelector").map_or("", String::as_str),
                    t.plural,
                )?;
                let victims: Vec<Value> = store
                    .list(t, ns.as_deref())
                    .into_iter()
                    .filter(|o| ls.matches(&labels_of(o)) && fs.matches(o))
                    .collect();
                let mut items = Vec::new();
                for v in victims {
                    let vns = v.pointer("/metadata/namespace").and_then(Value::as_str);
                    let vname = v
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    items.push(strip_type_meta(
                        t,
                        store.delete(t, vns, vname, &Preconditions::default())?,
                    ));
                }
                Ok(Reply::Json(
                    200,
                    json!({"kind": t.list_kind(), "apiVersion": t.api_version(),
                           "metadata": {"resourceVersion": store.resource_version()}, "items": items}),
                ))
            }
            (m, _) => Err(ApiError::method_not_allowed(m, t.plural)),
        }
    })();
    (result, ctx, warnings)
}

fn discovery_request(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Reply> {
    if method != Method::GET {
        return None;
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let v = match segs.as_slice() {
        ["version"] => discovery::version(),
        ["api"] => discovery::core_versions(&shared.server_address),
        ["apis"] => discovery::group_list(),
        ["api", v] => discovery::resource_list("", v)?,
        ["apis", g] => discovery::api_group(g)?,
        ["apis", g, v] => discovery::resource_list(g, v)?,
        ["healthz"] | ["livez"] | ["readyz"] => return Some(Reply::Text(200, "ok")),
        ["openapi", "v2"] => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("protobuf") {
                return Some(Reply::Bytes(
                    200,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    openapi::v2_protobuf(),
                ));
            }
            openapi::v2_json()
        }
        ["openapi", "v3"] => openapi::v3_root(),
        ["openapi", "v3", "api", v] => openapi::v3_group_version("", v)?,
        ["openapi", "v3", "apis", g, v] => openapi::v3_group_version(g, v)?,
        _ => return None,
    };
    Some(Reply::Json(200, v))
}

/// RBAC for a resource request; then the requests answered from identities and rules rather
/// than stored (TokenRequest, SelfSubjectAccessReview). `None`: an ordinary request, allowed.
fn auth_request(
    shared: &Shared,
    method: &Method,
    tg: &Target,
    q: &HashMap<String, String>,
    user: &UserInfo,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Reply>, ApiError> {
    let verb = rbac::verb_of(method, tg.name.is_some(), q);
    let store = shared
        .store
        .lock()
        .map_err(|_| ApiError::for_code(500, "store lock poisoned"))?;
    rbac::authorize(
        &store,
        user,
        &rbac::Attributes {
            verb: &verb,
            group: tg.t.group,
            resource: tg.t.plural,
            subresource: tg.sub.as_deref(),
            namespace: tg.ns.as_deref(),
            name: tg.name.as_deref(),
        },
    )?;
    let token = tg.sub.as_deref() == Some(TOKEN_SUBRESOURCE);
    let review = tg.t.group == "authorization.k8s.io";
    if !token && !review {
        return Ok(None);
    }
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(method.as_str(), tg.t.plural));
    }
    let body = if body.is_empty() {
        None
    } else {
        Some(parse_body(headers, body)?)
    };
    let answer = match (token, tg.ns.as_deref(), tg.name.as_deref()) {
        (true, Some(ns), Some(name)) => {
            rbac::token_request(&store, ns, name, body.as_ref(), |username| {
                Ok(register_token(shared, &username))
            })?
        }
        (true, _, _) => return Err(ApiError::no_route(tg.t.plural)),
        (false, _, _) => rbac::self_subject_access_review(&store, user, body.as_ref())?,
    };
    Ok(Some(Reply::Json(201, answer)))
}

/// A fresh random bearer token naming `username`.
pub fn register_token(shared: &Shared, username: &str) -> String {
    let token = super::random_token();
    if let Ok(mut t) = shared.tokens.lock() {
        t.insert(token.clone(), username.to_string());
    }
    token
}

fn take_fault(shared: &Shared, method: &str, path: &str) -> Option<u16> {
    let mut faults = shared.faults.lock().ok()?;
    let f = faults.iter_mut().find(|f| f.matches(method, path))?;
    f.remaining -= 1;
    let code = f.code;
    faults.retain(|f| f.remaining > 0);
    Some(code)
}

/// The axum fallback handler: every path goes through here.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let received = store::now_micro();
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let method = parts.method;
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let audit_id = headers
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(store::new_uid);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(body, MAX_BODY).await;

    let mut audit_ctx = None;
    let mut warnings: Vec<String> = Vec::new();
    let mut username = String::new();
    let reply: Result<Reply, ApiError> = (|| {
        let body = body.map_err(|_| {
            let mut e = ApiError::for_code(413, "the request body is too large");
            e.reason = "RequestEntityTooLarge";
            e
        })?;
        let user = user_for(&shared, &headers)?;
        let user = {
            let store = shared
                .store
                .lock()
                .map_err(|_| ApiError::for_code(500, "store lock poisoned"))?;
            rbac::impersonate(&store, user, &headers)?
        };
        username = user.username.clone();
        if let Some(code) = take_fault(&shared, method.as_str(), &path) {
            return Err(ApiError::for_code(code, format!("injected fault ({code})")));
        }
        if let Some(r) = discovery_request(&shared, &method, &path, &headers) {
            return Ok(r);
        }
        let Some(target) = parse_target(&path) else {
            return Err(ApiError::no_route(&path));
        };
        let target = target?;
        let q = query_map(&query);
        if let Some(r) = auth_request(&shared, &method, &target, &q, &user, &headers, &body)? {
            return Ok(r);
        }
        let (r, ctx, w) = resource_request(&shared, &method, target, &q, &headers, &body);
        audit_ctx = ctx.map(|c| (c, user));
        warnings = w;
        r
    })();

    let (code, body_json, resp) = match reply {
        Ok(Reply::Text(code, text)) => (
            code,
            None,
            bytes_response(code, "text/plain; charset=utf-8", text.as_bytes().to_vec()),
        ),
        Ok(Reply::Bytes(code, ct, bytes)) => (code, None, bytes_response(code, ct, bytes)),
        Ok(Reply::Json(code, v)) => (code, Some(v.clone()), json_response(code, &v, None)),
        Err(e) => {
            let v = e.to_status();
            (
                e.code,
                Some(v.clone()),
                json_response(e.code, &v, e.retry_after),
            )
        }
    };
    let mut resp = resp;
    if let Ok(v) = audit_id.parse() {
        resp.headers_mut().insert("audit-id", v);
    }
    for w in &warnings {
        if let Ok(v) = format!("299 - {w:?}").parse() {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    if let Ok(mut log) = shared.log.lock() {
        log.push(RequestRecord {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status: code,
            user_agent: user_agent.clone(),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            username,
            audit_id: audit_id.clone(),
        });
    }
    if let (Some(backend), Some((ctx, user))) = (&shared.audit, audit_ctx) {
        let request_uri = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        };
        let source_ip = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| remote.ip().to_string());
        // The apiserver logs the decoded DeleteOptions, TypeMeta included, body or not.
        let request_object = match (ctx.verb, ctx.request_object) {
            ("delete" | "deletecollection", body) => {
                let mut opts = match body {
                    Some(Value::Object(m)) => Value::Object(m),
                    _ => json!({}),
                };
                opts["kind"] = json!("DeleteOptions");
                opts["apiVersion"] = json!("meta.k8s.io/v1");
                Some(opts)
            }
            (_, r) => r,
        };
        backend.enqueue(audit::event(&AuditRecord {
            audit_id,
            request_uri,
            verb: ctx.verb,
            user,
            source_ip,
            user_agent,
            resource: ctx.resource,
            namespace: ctx.namespace,
            name: ctx.name,
            subresource: ctx.subresource,
            request_object,
            response_code: code,
            response_object: body_json.unwrap_or(Value::Null),
            received,
            completed: store::now_micro(),
        }));
    }
    resp
}

fn json_response(code: u16, v: &Value, retry_after: Option<u64>) -> Response<Body> {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(s) = retry_after {
        b = b.header(header::RETRY_AFTER, s.to_string());
    }
    b.body(Body::from(v.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn bytes_response(code: u16, content_type: &str, bytes: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
