//! The HTTP front: authentication, routing by service and action, rate limiting, faults,
//! the call log, the envelope; and the `/_sim/` admin routes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::clb::{self, Ctx, Outcome};
use super::faults::{Fault, Faults, Injector};
use super::limits::{CLB_VERSION, MAX_SKEW_SECS, TAG_VERSION};
use super::model::{state_json, SimState};
use super::params::{ApiError, Obj};
use super::scf;
use super::sign;
use super::tag;
use super::SimConfig;

/// One API call as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// `X-TC-Action` as sent (may be empty or unknown).
    pub action: String,
    /// `X-TC-Region` as sent (empty when absent).
    pub region: String,
    /// The service of the credential scope (`clb`, `tag`), empty when unreadable.
    pub service: String,
    /// `"Ok"` for success, else the error code answered (including injected ones);
    /// `"Dropped"` when the connection was cut by an injected fault.
    pub code: String,
    /// The CLBs the call touched (created, read by id, changed).
    pub lb_ids: Vec<String>,
    pub request_id: String,
    /// Wall-clock time the call arrived, unix milliseconds.
    pub at_unix_ms: u64,
    /// The request body as sent (`null` when it is not JSON), so a test can judge what a
    /// write named: tags of a create, listener ids, tag keys removed. It carries no secret
    /// (the signature travels in a header).
    pub params: Value,
}

impl CallRecord {
    pub fn ok(&self) -> bool {
        self.code == "Ok"
    }
}

pub(crate) struct Sim {
    pub cfg: SimConfig,
    pub state: Mutex<SimState>,
    /// The state of each of `cfg.other_regions` (a CLB lives in one region; calls reach it
    /// only with that region in `X-TC-Region`).
    pub others: Mutex<BTreeMap<String, SimState>>,
    pub calls: Mutex<Vec<CallRecord>>,
    /// Accepted SCF `Invoke` calls.
    pub invocations: Mutex<Vec<scf::Invocation>>,
    pub faults: Mutex<Injector>,
    rate: Mutex<HashMap<String, (u64, u32)>>,
    started: Instant,
    /// Runtime-adjustable copies of `cfg.task_ms` and `cfg.rate_limit`.
    pub task_ms: AtomicU64,
    pub rate_limit: AtomicU32,
}

/// A seed of its own for each other region, so its ids differ from the home region's.
fn region_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Locks a mutex even if a holder panicked: the data is plain and stays usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let faults = Faults::from_rate(cfg.fault_rate);
        Sim {
            state: Mutex::new(SimState::new(cfg.seed)),
            others: Mutex::new(
                cfg.other_regions
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.clone(), SimState::new(region_seed(cfg.seed, i))))
                    .collect(),
            ),
            calls: Mutex::new(Vec::new()),
            invocations: Mutex::new(Vec::new()),
            faults: Mutex::new(Injector::new(faults, cfg.seed)),
            rate: Mutex::new(HashMap::new()),
            started: Instant::now(),
            task_ms: AtomicU64::new(cfg.task_ms),
            rate_limit: AtomicU32::new(cfg.rate_limit),
            cfg,
        }
    }

    /// Whether calls in `region` are served.
    pub fn serves(&self, region: &str) -> bool {
        region == self.cfg.region || self.cfg.other_regions.iter().any(|r| r == region)
    }

    /// Runs `f` on the state of `region` (the home region's for any region not served).
    pub fn in_region<R>(&self, region: &str, f: impl FnOnce(&mut SimState) -> R) -> R {
        if region != self.cfg.region {
            if let Some(state) = lock(&self.others).get_mut(region) {
                return f(state);
            }
        }
        f(&mut lock(&self.state))
    }

    /// Every CLB of every region served, home region first.
    pub fn all_clbs(&self) -> Vec<tag::TaggedClb> {
        let mut out = tag::TaggedClb::of(&self.cfg.region, &lock(&self.state));
        for (region, state) in lock(&self.others).iter() {
            out.extend(tag::TaggedClb::of(region, state));
        }
        out
    }

    /// Fixed one-second windows per action.
    fn over_rate(&self, action: &str, now: Instant) -> bool {
        let limit = self.rate_limit.load(Ordering::Relaxed);
        if limit == 0 {
            return false;
        }
        let sec = now.duration_since(self.started).as_secs();
        let mut rate = lock(&self.rate);
        let e = rate.entry(action.to_string()).or_insert((sec, 0));
        if e.0 != sec {
            *e = (sec, 0);
        }
        e.1 += 1;
        e.1 > limit
    }
}

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", any(api))
        .route("/_sim/state", get(admin_state))
        .route("/_sim/calls", get(admin_calls))
        .route("/_sim/invocations", get(admin_invocations))
        .route("/_sim/faults", get(admin_get_faults).post(admin_set_faults))
        .fallback(any(api))
        .with_state(sim)
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn envelope(request_id: &str, result: &Result<Map<String, Value>, ApiError>) -> Value {
    match result {
        Ok(fields) => {
            let mut m = fields.clone();
            m.insert("RequestId".into(), json!(request_id));
            json!({ "Response": m })
        }
        Err(e) => json!({"Response": {
            "Error": {"Code": e.code, "Message": e.message},
            "RequestId": request_id,
        }}),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A response whose body fails after the headers: the client sees the connection cut.
fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected dropped connection",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

struct Authed {
    service: String,
    action: String,
}

fn authenticate(
    sim: &Sim,
    method: &Method,
    h: &HeaderMap,
    body: &[u8],
) -> Result<Authed, (String, ApiError)> {
    let action = header_str(h, "x-tc-action").unwrap_or("").to_string();
    let fail = |service: &str, code: &str, msg: String| {
        Err((service.to_string(), ApiError::new(code, msg)))
    };
    if method != Method::POST {
        return fail(
            "",
            "UnsupportedProtocol",
            format!("{method} is not served; use POST with a JSON body"),
        );
    }
    let Some(auth) = header_str(h, "authorization") else {
        return fail(
            "",
            "AuthFailure.InvalidAuthorization",
            "the Authorization header is missing".into(),
        );
    };
    let cred = match sign::parse_authorization(auth) {
        Ok(c) => c,
        Err(sign::Malformed(why)) => return fail("", "AuthFailure.InvalidAuthorization", why),
    };
    let service = cred.service.clone();
    if !["clb", "tag", "scf", "ssl"].contains(&service.as_str()) {
        return fail(
            &service,
            "NoSuchProduct",
            format!("the service `{service}` is not served here"),
        );
    }
    if cred.secret_id != sim.cfg.secret_id {
        return fail(
            &service,
            "AuthFailure.SecretIdNotFound",
            "the SecretId is not found".into(),
        );
    }
    let Some(ts_raw) = header_str(h, "x-tc-timestamp") else {
        return fail(
            &service,
            "MissingParameter",
            "the X-TC-Timestamp header is missing".into(),
        );
    };
    let Ok(ts) = ts_raw.trim().parse::<i64>() else {
        return fail(
            &service,
            "InvalidParameter",
            "X-TC-Timestamp is not a unix time".into(),
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - ts).abs() > MAX_SKEW_SECS {
        return fail(
            &service,
            "AuthFailure.SignatureExpire",
            format!(
                "the request timestamp {ts} is more than {MAX_SKEW_SECS}s from server time {now}"
            ),
        );
    }
    let signed_ok = cred.signed_headers.iter().any(|x| x == "content-type")
        && cred.signed_headers.iter().any(|x| x == "host");
    if !signed_ok || sign::utc_date(ts).as_deref() != Some(cred.date.as_str()) {
        return fail(
            &service,
            "AuthFailure.SignatureFailure",
            "the request signature does not match".into(),
        );
    }
    match sign::expected_signature(&sim.cfg.secret_key, &cred, ts_raw.trim(), h, body) {
        Some(expected) if sign::constant_time_eq(&expected, &cred.signature) => {}
        _ => {
            return fail(
                &service,
                "AuthFailure.SignatureFailure",
                "the request signature does not match".into(),
            )
        }
    }
    let version = header_str(h, "x-tc-version").unwrap_or("");
    let want = match service.as_str() {
        "clb" => CLB_VERSION,
        "scf" => scf::SCF_VERSION,
        "ssl" => super::ssl::SSL_VERSION,
        _ => TAG_VERSION,
    };
    if version.is_empty() {
        return fail(
            &service,
            "MissingParameter",
            "the X-TC-Version header is missing".into(),
        );
    }
    if version != want {
        return fail(
            &service,
            "NoSuchVersion",
            format!("version `{version}` of {service} does not exist"),
        );
    }
    if action.is_empty() {
        return fail(
            &service,
            "MissingParameter",
            "the X-TC-Action header is missing".into(),
        );
    }
    let known = match service.as_str() {
        "clb" => clb::is_clb_action(&action),
        "scf" => scf::is_scf_action(&action),
        "ssl" => super::ssl::is_ssl_action(&action),
        _ => tag::is_tag_action(&action),
    };
    if !known {
        return fail(
            &service,
            "InvalidAction",
            format!("the action `{action}` does not exist"),
        );
    }
    // SCF's Region is required too (tencent-cloud-more.md §4.4).
    if service == "clb" || service == "scf" {
        match header_str(h, "x-tc-region") {
            None | Some("") => {
                return fail(
                    &service,
                    "MissingParameter",
                    "the X-TC-Region header is missing".into(),
                )
            }
            Some(r) if !sim.serves(r) => {
                return fail(
                    &service,
                    "UnsupportedRegion",
                    format!("region `{r}` is not served (only {})", sim.cfg.region),
                )
            }
            _ => {}
        }
    }
    Ok(Authed { service, action })
}

async fn api(State(sim): State<Arc<Sim>>, method: Method, h: HeaderMap, body: Bytes) -> Response {
    let arrived = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let request_id = lock(&sim.state).request_id();
    let mut record = CallRecord {
        action: header_str(&h, "x-tc-action").unwrap_or("").to_string(),
        region: header_str(&h, "x-tc-region").unwrap_or("").to_string(),
        service: String::new(),
        code: "Ok".into(),
        lb_ids: Vec::new(),
        request_id: request_id.clone(),
        at_unix_ms: arrived,
        params: logged_params(&body),
    };
    let result = run(&sim, &method, &h, &body, &request_id, &mut record).await;
    let response = match result {
        Err(Dropped) => {
            record.code = "Dropped".into();
            dropped()
        }
        Ok(result) => {
            if let Err(e) = &result {
                record.code = e.code.clone();
            }
            json_response(StatusCode::OK, &envelope(&request_id, &result))
        }
    };
    lock(&sim.calls).push(record);
    response
}

struct Dropped;

/// The request as the call log keeps it: a private key is replaced before it is stored, so
/// no test that prints calls can show one.
fn logged_params(body: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(key) = v.get_mut(super::ssl::PRIVATE_KEY_FIELD) {
        *key = Value::String("<redacted>".into());
    }
    v
}

async fn run(
    sim: &Sim,
    method: &Method,
    h: &HeaderMap,
    body: &[u8],
    request_id: &str,
    record: &mut CallRecord,
) -> Result<Result<Map<String, Value>, ApiError>, Dropped> {
    let authed = match authenticate(sim, method, h, body) {
        Ok(a) => a,
        Err((service, e)) => {
            record.service = service;
            return Ok(Err(e));
        }
    };
    record.service = authed.service.clone();
    let now = Instant::now();
    if sim.over_rate(&authed.action, now) {
        return Ok(Err(ApiError::new(
            "RequestLimitExceeded",
            format!(
                "{} is limited to {} requests per second",
                authed.action,
                sim.rate_limit.load(Ordering::Relaxed)
            ),
        )));
    }
    let (fault, latency) = lock(&sim.faults).decide(&authed.action);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match fault {
        Some(Fault::Drop) => return Err(Dropped),
        Some(Fault::Error(code)) => {
            return Ok(Err(ApiError::new(&code, "injected fault")));
        }
        None => {}
    }
    let params: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Err(ApiError::new(
                "InvalidParameter",
                format!("the body is not valid JSON: {e}"),
            )))
        }
    };
    let Value::Object(map) = params else {
        return Ok(Err(ApiError::new(
            "InvalidParameter",
            "the body must be a JSON object",
        )));
    };
    // CLB calls reach the state of the region they name (SSL is global); a region not served
    // was refused above. The Tag API is global: (Un)TagResources act in the region of the
    // resource names, GetResources reads every region (below).
    let tag_region = (authed.service == "tag")
        .then(|| tag::acting_region(&authed.action, &map))
        .flatten()
        .filter(|r| sim.serves(r));
    let region = match (tag_region, header_str(h, "x-tc-region")) {
        (Some(r), _) => r,
        (None, Some(r)) if authed.service != "ssl" && sim.serves(r) => r.to_string(),
        _ => sim.cfg.region.clone(),
    };
    let ctx = Ctx {
        request_id: request_id.to_string(),
        now: Instant::now(),
        task: Duration::from_millis(sim.task_ms.load(Ordering::Relaxed)),
        region: region.clone(),
    };
    let p = Obj::new(&map, "");
    if authed.service == "scf" {
        let mut log = lock(&sim.invocations);
        return Ok(scf::dispatch(&mut log, &ctx, &authed.action, p).map(|o| o.fields));
    }
    if authed.service == "tag" && authed.action == "GetResources" {
        let outcome = tag::get_resources(&sim.all_clbs(), p);
        return Ok(outcome.map(|o| o.fields));
    }
    let fail_task = lock(&sim.faults).task_should_fail(&authed.action);
    let outcome = sim.in_region(&region, |state| {
        // A task that is to fail undoes its change: keep what to restore.
        let before = fail_task.then(|| (state.load_balancers.clone(), state.client_tokens.clone()));
        let outcome: Result<Outcome, ApiError> = if authed.service == "clb" {
            clb::dispatch(state, &ctx, &authed.action, p)
        } else if authed.service == "ssl" {
            super::ssl::dispatch(state, &ctx, &authed.action, p)
        } else {
            tag::dispatch(state, &ctx, &authed.action, p)
        };
        if let (Some((lbs, tokens)), Ok(_)) = (before, &outcome) {
            let task = state
                .tasks
                .get(request_id)
                .map(|t| (t.done_at, t.lb_ids.clone()));
            if let Some((done_at, ids)) = task {
                state.load_balancers = lbs;
                state.client_tokens = tokens;
                for id in &ids {
                    if let Some(lb) = state.lb_mut(id) {
                        lb.busy_until = Some(done_at);
                    }
                }
                if let Some(t) = state.tasks.get_mut(request_id) {
                    t.failed = true;
                }
                lock(&sim.faults).consume_task_failure(&authed.action);
            }
        }
        outcome
    });
    let lagging = authed.action == "DescribeLoadBalancers"
        && map
            .get("LoadBalancerIds")
            .and_then(Value::as_array)
            .is_some_and(|ids| !ids.is_empty())
        && outcome.is_ok()
        && lock(&sim.faults).take_lagging_id_read();
    Ok(match outcome {
        Ok(_) if lagging => Ok(Map::from_iter([
            ("TotalCount".to_string(), Value::from(0)),
            ("LoadBalancerSet".to_string(), Value::Array(Vec::new())),
        ])),
        Ok(o) => {
            record.lb_ids = o.lb_ids;
            Ok(o.fields)
        }
        Err(e) => {
            // Name the CLB a failed call was aimed at, so tests can count calls per CLB.
            if let Some(Value::String(id)) = map.get("LoadBalancerId") {
                record.lb_ids = vec![id.clone()];
            }
            Err(e)
        }
    })
}

async fn admin_state(State(sim): State<Arc<Sim>>) -> Response {
    let v = state_json(&lock(&sim.state), Instant::now());
    json_response(StatusCode::OK, &v)
}

async fn admin_calls(State(sim): State<Arc<Sim>>) -> Response {
    let v = serde_json::to_value(&*lock(&sim.calls)).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &v)
}

async fn admin_invocations(State(sim): State<Arc<Sim>>) -> Response {
    let invocations = lock(&sim.invocations).clone();
    json_response(StatusCode::OK, &json!(invocations))
}

async fn admin_get_faults(State(sim): State<Arc<Sim>>) -> Response {
    let v = serde_json::to_value(&lock(&sim.faults).faults).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &v)
}

async fn admin_set_faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let parsed: Result<Faults, String> = serde_json::from_slice::<Faults>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| f.validate().map(|_| f));
    match parsed {
        Ok(f) => {
            lock(&sim.faults).faults = f.clone();
            json_response(
                StatusCode::OK,
                &serde_json::to_value(&f).unwrap_or(Value::Null),
            )
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
    }
}
