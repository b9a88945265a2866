//! Listener and forwarding-rule actions.

use serde_json::{json, Map, Value};

use super::clb::{lb_not_found, task_started, writable, Ctx, Outcome};
use super::limits::*;
use super::model::{
    api_time_now, listener_json, Certificate, Listener, LoadBalancer, Rule, SimState,
};
use super::params::{ApiError, ApiResult, Obj};

const PROTOCOLS: &[&str] = &["TCP", "UDP", "HTTP", "HTTPS", "TCP_SSL", "QUIC"];

pub(crate) fn listener_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidParameter.ListenerIdNotFound",
        format!("Listener ({id}) not found"),
    )
}

pub(crate) fn location_not_found(what: &str) -> ApiError {
    ApiError::new(
        "InvalidParameter.LocationNotFound",
        format!("Location ({what}) not found"),
    )
}

pub(crate) fn listener_mut<'a>(lb: &'a mut LoadBalancer, id: &str) -> ApiResult<&'a mut Listener> {
    lb.listeners
        .iter_mut()
        .find(|l| l.id == id)
        .ok_or_else(|| listener_not_found(id))
}

/// A certificate by id, or uploaded inline (CertContent + CertKey), which — like the real
/// API — mints a new certificate id on every call (tencent-cloud-more §3.2).
fn parse_cert(s: &mut SimState, m: &Map<String, Value>, path: &str) -> ApiResult<Certificate> {
    let c = Obj::new(m, path);
    c.only(&[
        "SSLMode",
        "SSLVerifyClient",
        "CertId",
        "CertCaId",
        "CertName",
        "CertKey",
        "CertContent",
        "CertCaName",
        "CertCaContent",
    ])?;
    let mode = c.str("SSLMode")?.unwrap_or_else(|| "UNIDIRECTIONAL".into());
    if mode != "UNIDIRECTIONAL" && mode != "MUTUAL" {
        return Err(c.invalid_value("SSLMode", "must be UNIDIRECTIONAL or MUTUAL"));
    }
    let _ = c.str("SSLVerifyClient")?;
    let _ = c.str("CertName")?;
    let _ = c.str("CertCaName")?;
    let cert_id = match (c.str("CertId")?, c.str("CertContent")?, c.str("CertKey")?) {
        (Some(id), None, None) => id,
        (None, Some(pem), Some(key)) => {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(c.invalid_value("CertContent", "is not a PEM certificate"));
            }
            if !key.contains("PRIVATE KEY-----") {
                return Err(c.invalid_value("CertKey", "is not a PEM private key"));
            }
            s.new_id("cert")
        }
        (None, Some(_), None) => return Err(c.missing("CertKey")),
        (None, None, Some(_)) => return Err(c.missing("CertContent")),
        (None, None, None) => return Err(c.missing("CertId")),
        (Some(_), _, _) => {
            return Err(ApiError::new(
                "InvalidParameter",
                format!("{path}: pass CertId or CertContent+CertKey, not both"),
            ))
        }
    };
    let ca = match (c.str("CertCaId")?, c.str("CertCaContent")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "InvalidParameter",
                format!("{path}: pass CertCaId or CertCaContent, not both"),
            ))
        }
        (Some(id), None) => Some(id),
        (None, Some(pem)) => {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(c.invalid_value("CertCaContent", "is not a PEM certificate"));
            }
            Some(s.new_id("cert"))
        }
        (None, None) => None,
    };
    if mode == "MUTUAL" && ca.is_none() {
        return Err(c.missing("CertCaId"));
    }
    Ok(Certificate {
        ssl_mode: mode,
        cert_id,
        cert_ca_id: ca,
    })
}

/// A full HealthCheck with the documented defaults, with `m`'s fields over `base`.
pub(crate) fn parse_health_check(
    base: Option<&Map<String, Value>>,
    m: Option<&Map<String, Value>>,
    path: &str,
) -> ApiResult<Map<String, Value>> {
    let mut hc = match base {
        Some(b) => b.clone(),
        None => match json!({
            "HealthSwitch": 1, "TimeOut": 2, "IntervalTime": 5, "HealthNum": 3, "UnHealthNum": 3,
            "HttpCode": 31, "HttpCheckPath": "/", "HttpCheckDomain": "", "HttpCheckMethod": "HEAD",
            "CheckPort": null, "ContextType": null, "SendContext": null, "RecvContext": null,
            "CheckType": "HTTP", "HttpVersion": null, "SourceIpType": 0, "ExtendedCode": null,
        }) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    let Some(m) = m else { return Ok(hc) };
    let h = Obj::new(m, path);
    h.only(&[
        "HealthSwitch",
        "TimeOut",
        "IntervalTime",
        "HealthNum",
        "UnHealthNum",
        "HttpCode",
        "HttpCheckPath",
        "HttpCheckDomain",
        "HttpCheckMethod",
        "CheckPort",
        "ContextType",
        "SendContext",
        "RecvContext",
        "CheckType",
        "HttpVersion",
        "SourceIpType",
        "ExtendedCode",
    ])?;
    let ranges: [(&str, i64, i64); 7] = [
        ("HealthSwitch", 0, 1),
        ("TimeOut", 2, 60),
        ("IntervalTime", 2, 300),
        ("HealthNum", 2, 10),
        ("UnHealthNum", 2, 10),
        ("HttpCode", 1, 31),
        ("SourceIpType", 0, 1),
    ];
    for (name, lo, hi) in ranges {
        if let Some(v) = h.int_in(name, lo, hi)? {
            hc.insert(name.into(), json!(v));
        }
    }
    if let Some(v) = h.int_in("CheckPort", 1, 65535)? {
        hc.insert("CheckPort".into(), json!(v));
    }
    if let Some(path_v) = h.str("HttpCheckPath")? {
        if path_v.is_empty() || path_v.len() > 200 || !path_v.starts_with('/') {
            return Err(
                h.invalid_value("HttpCheckPath", "must be 1-200 characters starting with /")
            );
        }
        hc.insert("HttpCheckPath".into(), json!(path_v));
    }
    if let Some(d) = h.str("HttpCheckDomain")? {
        if d.len() > 80
            || !d
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
        {
            return Err(h.invalid_value(
                "HttpCheckDomain",
                "must be up to 80 characters of a-z 0-9 . - _",
            ));
        }
        hc.insert("HttpCheckDomain".into(), json!(d));
    }
    if let Some(meth) = h.str("HttpCheckMethod")? {
        let up = meth.to_ascii_uppercase();
        if up != "HEAD" && up != "GET" {
            return Err(h.invalid_value("HttpCheckMethod", "must be HEAD or GET"));
        }
        hc.insert("HttpCheckMethod".into(), json!(up));
    }
    for name in [
        "ContextType",
        "SendContext",
        "RecvContext",
        "CheckType",
        "HttpVersion",
    ] {
        if let Some(v) = h.str(name)? {
            hc.insert(name.into(), json!(v));
        }
    }
    if let Some(v) = h.int("ExtendedCode")? {
        hc.insert("ExtendedCode".into(), json!(v));
    }
    let (t, i) = (
        hc.get("TimeOut").and_then(Value::as_i64),
        hc.get("IntervalTime").and_then(Value::as_i64),
    );
    if let (Some(t), Some(i)) = (t, i) {
        if t >= i {
            return Err(h.invalid_value("TimeOut", "must be less than IntervalTime"));
        }
    }
    Ok(hc)
}

fn check_scheduler(p: &Obj, name: &str) -> ApiResult<Option<String>> {
    let v = p.str(name)?;
    if let Some(s) = &v {
        if !["WRR", "LEAST_CONN", "IP_HASH"].contains(&s.as_str()) {
            return Err(p.invalid_value(name, "must be WRR, LEAST_CONN or IP_HASH"));
        }
    }
    Ok(v)
}

fn check_session_expire(p: &Obj) -> ApiResult<Option<i64>> {
    let v = p.int("SessionExpireTime")?;
    if let Some(t) = v {
        if t != 0 && !(30..=86400).contains(&t) {
            return Err(ApiError::new(
                "InvalidParameterValue.Range",
                format!(
                    "{}SessionExpireTime must be 0 or 30-86400",
                    if p.path().is_empty() {
                        String::new()
                    } else {
                        format!("{}.", p.path())
                    }
                ),
            ));
        }
    }
    Ok(v)
}

/// Listener parameters accepted but not modelled.
const UNMODELLED_LISTENER: &[&str] = &[
    "SessionType",
    "DeregisterTargetRst",
    "MaxConn",
    "MaxCps",
    "IdleConnectTimeout",
    "ProxyProtocol",
    "SnatEnable",
    "H2cSwitch",
    "SslCloseSwitch",
    "DataCompressMode",
    "RescheduleTargetZeroWeight",
    "RescheduleUnhealthy",
    "RescheduleExpandTarget",
    "RescheduleStartTime",
    "RescheduleInterval",
];

fn unmodelled(p: &Obj) -> Map<String, Value> {
    p.entries()
        .filter(|(k, _)| UNMODELLED_LISTENER.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) fn create_listener(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "Ports",
        "Protocol",
        "ListenerNames",
        "HealthCheck",
        "Certificate",
        "SessionExpireTime",
        "Scheduler",
        "SniSwitch",
        "TargetType",
        "SessionType",
        "KeepaliveEnable",
        "EndPort",
        "DeregisterTargetRst",
        "MultiCertInfo",
        "MaxConn",
        "MaxCps",
        "IdleConnectTimeout",
        "ProxyProtocol",
        "SnatEnable",
        "FullEndPorts",
        "H2cSwitch",
        "SslCloseSwitch",
        "DataCompressMode",
        "RescheduleTargetZeroWeight",
        "RescheduleUnhealthy",
        "RescheduleExpandTarget",
        "RescheduleStartTime",
        "RescheduleInterval",
    ])?;
    p.refuse_unmodelled(&[
        ("MultiCertInfo", None),
        ("EndPort", Some(json!(0))),
        ("FullEndPorts", Some(json!(0))),
        ("TargetType", Some(json!("NODE"))),
    ])?;
    let extra = unmodelled(&p);
    let lb_id = p.req_str("LoadBalancerId")?;
    let ports = p.ints("Ports", 50)?.ok_or_else(|| p.missing("Ports"))?;
    if ports.is_empty() {
        return Err(p.missing("Ports"));
    }
    let protocol = p.req_str("Protocol")?;
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return Err(p.invalid_value("Protocol", "must be TCP, UDP, HTTP, HTTPS, TCP_SSL or QUIC"));
    }
    let names = p.strs("ListenerNames", 50)?;
    if let Some(n) = &names {
        if n.len() != ports.len() {
            return Err(p.invalid_value("ListenerNames", "must have one name per port"));
        }
        if n.iter().any(|x| x.chars().count() > 255) {
            return Err(ApiError::new(
                "InvalidParameterValue.Length",
                "ListenerNames: at most 255 characters",
            ));
        }
    }
    let l7 = protocol == "HTTP" || protocol == "HTTPS";
    let sni = p.int_in("SniSwitch", 0, 1)?.unwrap_or(0) == 1;
    if sni && protocol != "HTTPS" {
        return Err(p.invalid_value("SniSwitch", "only HTTPS listeners have SNI"));
    }
    let cert = match p.obj("Certificate")? {
        Some(m) => Some(parse_cert(s, m, "Certificate")?),
        None => None,
    };
    if cert.is_some() && !matches!(protocol.as_str(), "HTTPS" | "TCP_SSL" | "QUIC") {
        return Err(p.invalid_value(
            "Certificate",
            "only HTTPS, TCP_SSL and QUIC listeners take a certificate",
        ));
    }
    if cert.is_none() && ((protocol == "HTTPS" && !sni) || protocol == "TCP_SSL") {
        return Err(p.missing("Certificate"));
    }
    let hc = if l7 {
        None
    } else {
        Some(parse_health_check(
            None,
            p.obj("HealthCheck")?,
            "HealthCheck",
        )?)
    };
    let scheduler = check_scheduler(&p, "Scheduler")?.unwrap_or_else(|| "WRR".into());
    let session = check_session_expire(&p)?.unwrap_or(0);
    let keepalive = p.int_in("KeepaliveEnable", 0, 1)?.unwrap_or(0);
    for (i, port) in ports.iter().enumerate() {
        if !(1..=65535).contains(port) {
            return Err(ApiError::new(
                "InvalidParameterValue.Range",
                format!("Ports.{i} must be 1-65535, got {port}"),
            ));
        }
        if ports[..i].contains(port) {
            return Err(ApiError::new(
                "InvalidParameter.PortCheckFailed",
                format!("port {port} is given twice"),
            ));
        }
    }
    let max = s.limits.listeners_per_clb;
    let lb = writable(s, &lb_id, ctx.now)?;
    for port in &ports {
        if lb
            .listeners
            .iter()
            .any(|l| l.port == *port && ports_conflict(&l.protocol, &protocol))
        {
            return Err(ApiError::new(
                "InvalidParameter.PortCheckFailed",
                format!("port {port} is already used by a listener of {lb_id}"),
            ));
        }
    }
    if lb.listeners.len() + ports.len() > max {
        return Err(ApiError::new(
            "LimitExceeded",
            format!("a CLB has at most {max} listeners"),
        ));
    }
    let mut ids = Vec::new();
    let now = api_time_now();
    for (i, port) in ports.iter().enumerate() {
        let id = s.new_id("lbl");
        let listener = Listener {
            id: id.clone(),
            protocol: protocol.clone(),
            port: *port,
            name: names
                .as_ref()
                .and_then(|n| n.get(i).cloned())
                .unwrap_or_default(),
            certificate: cert.clone(),
            sni,
            health_check: hc.clone(),
            scheduler: scheduler.clone(),
            session_expire: session,
            keepalive,
            rules: Vec::new(),
            targets: Vec::new(),
            create_time: now.clone(),
            extra_params: extra.clone(),
        };
        if let Some(lb) = s.lb_mut(&lb_id) {
            lb.listeners.push(listener);
        }
        ids.push(id);
    }
    s.start_task(
        &ctx.request_id,
        std::slice::from_ref(&lb_id),
        ctx.now,
        ctx.task,
    );
    Ok(Outcome::new(json!({"ListenerIds": ids}), vec![lb_id]))
}

pub(crate) fn describe_listeners(s: &mut SimState, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "ListenerIds", "Protocol", "Port"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let ids = p.strs("ListenerIds", MAX_DESCRIBE_LISTENER_IDS)?;
    let protocol = p.str("Protocol")?;
    let port = p.int("Port")?;
    let lb = s.lb(&lb_id).ok_or_else(|| lb_not_found(&lb_id))?;
    let listeners: Vec<Value> = lb
        .listeners
        .iter()
        .filter(|l| ids.as_ref().is_none_or(|ids| ids.contains(&l.id)))
        .filter(|l| protocol.as_ref().is_none_or(|p| *p == l.protocol))
        .filter(|l| port.is_none_or(|p| p == l.port))
        .map(|l| super::rewrite::with_rewrite_targets(lb, listener_json(l)))
        .collect();
    Ok(Outcome::new(
        json!({"TotalCount": listeners.len(), "Listeners": listeners}),
        vec![lb_id],
    ))
}

pub(crate) fn modify_listener(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "ListenerId",
        "ListenerName",
        "SessionExpireTime",
        "HealthCheck",
        "Certificate",
        "Scheduler",
        "SniSwitch",
        "TargetType",
        "KeepaliveEnable",
        "DeregisterTargetRst",
        "SessionType",
        "MultiCertInfo",
        "MaxConn",
        "MaxCps",
        "IdleConnectTimeout",
        "ProxyProtocol",
        "SnatEnable",
        "DataCompressMode",
        "RescheduleTargetZeroWeight",
        "RescheduleUnhealthy",
        "RescheduleExpandTarget",
        "RescheduleStartTime",
        "RescheduleInterval",
    ])?;
    p.refuse_unmodelled(&[("MultiCertInfo", None), ("TargetType", Some(json!("NODE")))])?;
    let extra = unmodelled(&p);
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let name = p.str("ListenerName")?;
    let session = check_session_expire(&p)?;
    let scheduler = check_scheduler(&p, "Scheduler")?;
    let sni = p.int_in("SniSwitch", 0, 1)?;
    let keepalive = p.int_in("KeepaliveEnable", 0, 1)?;
    let cert = match p.obj("Certificate")? {
        Some(m) => Some(parse_cert(s, m, "Certificate")?),
        None => None,
    };
    let hc_in = p.obj("HealthCheck")?;
    let lb = writable(s, &lb_id, ctx.now)?;
    let l = listener_mut(lb, &listener_id)?;
    if l.is_l7() && (hc_in.is_some() || scheduler.is_some() || session.is_some()) {
        return Err(ApiError::new(
            "InvalidParameter",
            "HealthCheck, Scheduler and SessionExpireTime of a layer-7 listener are set on its rules",
        ));
    }
    if cert.is_some() && !matches!(l.protocol.as_str(), "HTTPS" | "TCP_SSL" | "QUIC") {
        return Err(p.invalid_value(
            "Certificate",
            "only HTTPS, TCP_SSL and QUIC listeners take a certificate",
        ));
    }
    match sni {
        Some(1) if l.protocol != "HTTPS" => {
            return Err(p.invalid_value("SniSwitch", "only HTTPS listeners have SNI"))
        }
        Some(0) if l.sni => {
            return Err(ApiError::new(
                "InvalidParameter",
                "SNI cannot be switched off once on",
            ))
        }
        _ => {}
    }
    let hc = match hc_in {
        Some(m) => Some(parse_health_check(
            l.health_check.as_ref(),
            Some(m),
            "HealthCheck",
        )?),
        None => None,
    };
    if let Some(n) = name {
        l.name = n;
    }
    if let Some(v) = session {
        l.session_expire = v;
    }
    if let Some(v) = scheduler {
        l.scheduler = v;
    }
    if let Some(v) = sni {
        l.sni = v == 1;
    }
    if let Some(v) = keepalive {
        l.keepalive = v;
    }
    if cert.is_some() {
        l.certificate = cert;
    }
    if hc.is_some() {
        l.health_check = hc;
    }
    l.extra_params.extend(extra);
    Ok(task_started(s, ctx, lb_id))
}

pub(crate) fn delete_listener(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "ListenerId"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let lb = writable(s, &lb_id, ctx.now)?;
    listener_mut(lb, &listener_id)?;
    super::rewrite::guard_listeners(lb, std::slice::from_ref(&listener_id))?;
    lb.listeners.retain(|l| l.id != listener_id);
    Ok(task_started(s, ctx, lb_id))
}

pub(crate) fn delete_lb_listeners(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "ListenerIds"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let ids = p.strs("ListenerIds", MAX_LISTENER_IDS)?;
    let lb = writable(s, &lb_id, ctx.now)?;
    match ids {
        Some(ids) if !ids.is_empty() => {
            for id in &ids {
                listener_mut(lb, id)?;
            }
            super::rewrite::guard_listeners(lb, &ids)?;
            lb.listeners.retain(|l| !ids.contains(&l.id));
        }
        _ => {
            let all: Vec<String> = lb.listeners.iter().map(|l| l.id.clone()).collect();
            super::rewrite::guard_listeners(lb, &all)?;
            lb.listeners.clear()
        }
    }
    Ok(task_started(s, ctx, lb_id))
}

/// CLB domain syntax (tencent-cloud-more §1.1): exact, one leading or trailing `*`, or `~regex`.
pub(crate) fn valid_domain(d: &str) -> Result<(), &'static str> {
    if d.is_empty() || d.chars().count() > 80 {
        return Err("must be 1-80 characters");
    }
    if d.starts_with('_') {
        return Err("must not start with _");
    }
    if let Some(re) = d.strip_prefix('~') {
        if re.contains('~') || re.is_empty() {
            return Err("a regex domain has exactly one leading ~");
        }
        return Ok(());
    }
    let stars = d.matches('*').count();
    if stars > 1 || (stars == 1 && !(d.starts_with("*.") || d.ends_with(".*"))) {
        return Err("a wildcard is only *.example.com or www.example.*");
    }
    if !d
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_*".contains(c))
    {
        return Err("allowed characters are a-z 0-9 . - _");
    }
    Ok(())
}

/// CLB URL syntax (tencent-cloud-more §1.3).
pub(crate) fn valid_url(u: &str) -> Result<(), &'static str> {
    if u.is_empty() || u.chars().count() > 200 {
        return Err("must be 1-200 characters");
    }
    if let Some(re) = u.strip_prefix('~') {
        if re.contains('~') {
            return Err("a regex URL has exactly one leading ~");
        }
        return Ok(());
    }
    let plain = u
        .strip_prefix("^~")
        .or_else(|| u.strip_prefix('='))
        .unwrap_or(u);
    if !plain.starts_with('/') {
        return Err("must start with /");
    }
    if !plain
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_/=?:".contains(c))
    {
        return Err("allowed characters are a-z A-Z 0-9 . - _ / = ? :");
    }
    Ok(())
}

struct NewRule {
    domains: Vec<String>,
    url: String,
    hc: Map<String, Value>,
    scheduler: String,
    session: i64,
    forward: String,
    default_server: bool,
    http2: Option<bool>,
    cert: Option<Certificate>,
}

fn parse_rule_input(s: &mut SimState, path: &str, m: &Map<String, Value>) -> ApiResult<NewRule> {
    let r = Obj::new(m, path);
    r.only(&[
        "Url",
        "Domain",
        "SessionExpireTime",
        "HealthCheck",
        "Certificate",
        "Scheduler",
        "ForwardType",
        "DefaultServer",
        "Http2",
        "TargetType",
        "TrpcCallee",
        "TrpcFunc",
        "Quic",
        "Domains",
        "MultiCertInfo",
        "CookieName",
    ])?;
    r.refuse_unmodelled(&[
        ("TargetType", Some(json!("NODE"))),
        ("TrpcCallee", None),
        ("TrpcFunc", None),
        ("Quic", Some(json!(false))),
        ("MultiCertInfo", None),
        ("CookieName", None),
    ])?;
    let url = r.req_str("Url")?;
    valid_url(&url).map_err(|why| r.invalid_value("Url", why))?;
    let domains = match (r.str("Domain")?, r.strs("Domains", 50)?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "InvalidParameter",
                format!("{path}: pass Domain or Domains, not both"),
            ))
        }
        (Some(d), None) => vec![d],
        (None, Some(ds)) if !ds.is_empty() => ds,
        _ => return Err(r.missing("Domain")),
    };
    for d in &domains {
        valid_domain(d).map_err(|why| r.invalid_value("Domain", why))?;
    }
    let forward = r.str("ForwardType")?.unwrap_or_else(|| "HTTP".into());
    if !["HTTP", "HTTPS", "GRPC", "GRPCS", "TRPC"].contains(&forward.as_str()) {
        return Err(r.invalid_value("ForwardType", "must be HTTP, HTTPS, GRPC, GRPCS or TRPC"));
    }
    let cert = match r.obj("Certificate")? {
        Some(c) => Some(parse_cert(s, c, &format!("{path}.Certificate"))?),
        None => None,
    };
    Ok(NewRule {
        domains,
        url,
        hc: parse_health_check(None, r.obj("HealthCheck")?, &format!("{path}.HealthCheck"))?,
        scheduler: check_scheduler(&r, "Scheduler")?.unwrap_or_else(|| "WRR".into()),
        session: check_session_expire(&r)?.unwrap_or(0),
        forward,
        default_server: r.bool("DefaultServer")?.unwrap_or(false),
        http2: r.bool("Http2")?,
        cert,
    })
}

/// Makes `domain` the listener's one default domain.
fn set_default(l: &mut Listener, domain: &str) {
    for r in &mut l.rules {
        r.default_server = r.has_domain(domain);
    }
}

/// After rules left, make sure one domain is still the default: `preferred` if given, else
/// the earliest-created remaining domain (tencent-cloud-more §1.2).
fn ensure_default(l: &mut Listener, preferred: Option<&str>) {
    if l.rules.iter().any(|r| r.default_server) || l.rules.is_empty() {
        return;
    }
    let pick = preferred
        .filter(|d| l.rules.iter().any(|r| r.has_domain(d)))
        .map(str::to_string)
        .or_else(|| {
            l.rules
                .iter()
                .min_by_key(|r| r.seq)
                .map(|r| r.domain().to_string())
        });
    if let Some(d) = pick {
        set_default(l, &d);
    }
}

pub(crate) fn create_rule(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&["LoadBalancerId", "ListenerId", "Rules"])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let inputs = p.objs("Rules", 1000)?.ok_or_else(|| p.missing("Rules"))?;
    if inputs.is_empty() {
        return Err(p.missing("Rules"));
    }
    let rules = inputs
        .iter()
        .map(|(path, m)| parse_rule_input(s, path, m))
        .collect::<ApiResult<Vec<_>>>()?;
    let defaults: Vec<&str> = rules
        .iter()
        .filter(|r| r.default_server)
        .map(|r| r.domains[0].as_str())
        .collect();
    if defaults.iter().any(|d| *d != defaults[0]) {
        return Err(ApiError::new(
            "InvalidParameter",
            "only one domain per listener can be DefaultServer",
        ));
    }
    let max = s.limits.rules_per_listener;
    {
        let lb = writable(s, &lb_id, ctx.now)?;
        let l = listener_mut(lb, &listener_id)?;
        if !l.is_l7() {
            return Err(ApiError::new(
                "InvalidParameter.ProtocolCheckFailed",
                format!(
                    "Listener ({listener_id}) is {}; rules need HTTP or HTTPS",
                    l.protocol
                ),
            ));
        }
        if l.rules.len() + rules.len() > max {
            return Err(ApiError::new(
                "LimitExceeded",
                format!("a listener has at most {max} rules"),
            ));
        }
        for (i, r) in rules.iter().enumerate() {
            let clash =
                |ds: &[String], url: &str| url == r.url && ds.iter().any(|d| r.domains.contains(d));
            if l.rules.iter().any(|e| clash(&e.domains, &e.url))
                || rules[..i].iter().any(|e| clash(&e.domains, &e.url))
            {
                return Err(ApiError::new(
                    DUPLICATE_RULE_CODE,
                    format!(
                        "the rule {}{} already exists on listener {listener_id}",
                        r.domains[0], r.url
                    ),
                ));
            }
            if r.cert.is_some() && !l.sni {
                return Err(ApiError::new(
                    "InvalidParameter",
                    format!("Rules.{i}.Certificate: per-domain certificates need an SNI listener"),
                ));
            }
            if r.forward != "HTTP" && l.protocol != "HTTPS" {
                return Err(ApiError::new(
                    "InvalidParameter",
                    format!(
                        "Rules.{i}.ForwardType: only HTTPS listeners forward with {}",
                        r.forward
                    ),
                ));
            }
            let known_domain = l.rules.iter().any(|e| e.has_domain(&r.domains[0]))
                || rules[..i]
                    .iter()
                    .any(|e| e.domains[0] == r.domains[0] && e.cert.is_some());
            if l.sni && SNI_DOMAIN_NEEDS_CERT && r.cert.is_none() && !known_domain {
                return Err(ApiError::new(
                "MissingParameter",
                format!("Rules.{i}.Certificate: a new domain on an SNI listener needs its certificate"),
            ));
            }
        }
    }
    let now = api_time_now();
    let mut created = Vec::new();
    for r in rules {
        let id = s.new_id("loc");
        let seq = s.next_seq();
        let lb = s.lb_mut(&lb_id).ok_or_else(|| lb_not_found(&lb_id))?;
        let l = listener_mut(lb, &listener_id)?;
        // Domain-level attributes are shared: a rule on a known domain inherits them.
        let sibling = l
            .rules
            .iter()
            .find(|e| e.has_domain(&r.domains[0]))
            .cloned();
        let rule = Rule {
            id: id.clone(),
            domains: r.domains.clone(),
            url: r.url,
            health_check: r.hc,
            scheduler: r.scheduler,
            session_expire: r.session,
            forward_type: r.forward,
            default_server: sibling.as_ref().is_some_and(|x| x.default_server),
            http2: r
                .http2
                .or(sibling.as_ref().map(|x| x.http2))
                .unwrap_or(false),
            certificate: r
                .cert
                .clone()
                .or(sibling.as_ref().and_then(|x| x.certificate.clone())),
            targets: Vec::new(),
            create_time: now.clone(),
            seq,
        };
        created.push(id);
        if let Some(c) = &r.cert {
            for e in l.rules.iter_mut().filter(|e| e.has_domain(&r.domains[0])) {
                e.certificate = Some(c.clone());
            }
        }
        l.rules.push(rule);
        if r.default_server {
            set_default(l, &r.domains[0]);
        }
        ensure_default(l, None);
    }
    s.start_task(
        &ctx.request_id,
        std::slice::from_ref(&lb_id),
        ctx.now,
        ctx.task,
    );
    Ok(Outcome::new(json!({"LocationIds": created}), vec![lb_id]))
}

pub(crate) fn modify_rule(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "ListenerId",
        "LocationId",
        "Url",
        "HealthCheck",
        "Scheduler",
        "SessionExpireTime",
        "ForwardType",
        "TrpcCallee",
        "TrpcFunc",
        "OAuth",
        "CookieName",
    ])?;
    p.refuse_unmodelled(&[
        ("TrpcCallee", None),
        ("TrpcFunc", None),
        ("OAuth", None),
        ("CookieName", None),
    ])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let loc = p.req_str("LocationId")?;
    let url = p.str("Url")?;
    if let Some(u) = &url {
        valid_url(u).map_err(|why| p.invalid_value("Url", why))?;
    }
    let scheduler = check_scheduler(&p, "Scheduler")?;
    let session = check_session_expire(&p)?;
    let forward = p.str("ForwardType")?;
    let hc_in = p.obj("HealthCheck")?;
    let lb = writable(s, &lb_id, ctx.now)?;
    let l = listener_mut(lb, &listener_id)?;
    let https = l.protocol == "HTTPS";
    let idx = l
        .rules
        .iter()
        .position(|r| r.id == loc)
        .ok_or_else(|| location_not_found(&loc))?;
    if let Some(u) = &url {
        let doms = l.rules[idx].domains.clone();
        if l.rules
            .iter()
            .any(|r| r.id != loc && r.url == *u && r.domains.iter().any(|d| doms.contains(d)))
        {
            return Err(ApiError::new(
                DUPLICATE_RULE_CODE,
                format!("the rule {}{u} already exists", doms[0]),
            ));
        }
    }
    if let Some(f) = &forward {
        if !https || !["HTTP", "HTTPS", "GRPC", "GRPCS", "TRPC"].contains(&f.as_str()) {
            return Err(p.invalid_value(
                "ForwardType",
                "only an HTTPS listener's rules take HTTP, HTTPS, GRPC, GRPCS or TRPC",
            ));
        }
    }
    let hc = match hc_in {
        Some(m) => Some(parse_health_check(
            Some(&l.rules[idx].health_check),
            Some(m),
            "HealthCheck",
        )?),
        None => None,
    };
    let r = &mut l.rules[idx];
    if let Some(u) = url {
        r.url = u;
    }
    if let Some(v) = scheduler {
        r.scheduler = v;
    }
    if let Some(v) = session {
        r.session_expire = v;
    }
    if let Some(v) = forward {
        r.forward_type = v;
    }
    if let Some(h) = hc {
        r.health_check = h;
    }
    Ok(task_started(s, ctx, lb_id))
}

pub(crate) fn delete_rule(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "ListenerId",
        "LocationIds",
        "Domain",
        "Url",
        "NewDefaultServerDomain",
    ])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let locs = p.strs("LocationIds", 1000)?;
    let domain = p.str("Domain")?;
    let url = p.str("Url")?;
    let new_default = p.str("NewDefaultServerDomain")?;
    let lb = writable(s, &lb_id, ctx.now)?;
    let l = listener_mut(lb, &listener_id)?;
    let doomed: Vec<String> = match (locs, domain, url) {
        (Some(locs), _, _) if !locs.is_empty() => {
            for loc in &locs {
                if !l.rules.iter().any(|r| r.id == *loc) {
                    return Err(location_not_found(loc));
                }
            }
            locs
        }
        (_, Some(d), Some(u)) => {
            let found: Vec<String> = l
                .rules
                .iter()
                .filter(|r| r.has_domain(&d) && r.url == u)
                .map(|r| r.id.clone())
                .collect();
            if found.is_empty() {
                return Err(location_not_found(&format!("{d}{u}")));
            }
            found
        }
        _ => return Err(p.missing("LocationIds")),
    };
    if let Some(nd) = &new_default {
        if !l
            .rules
            .iter()
            .any(|r| r.has_domain(nd) && !doomed.contains(&r.id))
        {
            return Err(p.invalid_value(
                "NewDefaultServerDomain",
                "names no remaining domain of the listener",
            ));
        }
    }
    super::rewrite::guard_rules(lb, &doomed)?;
    let l = listener_mut(lb, &listener_id)?;
    l.rules.retain(|r| !doomed.contains(&r.id));
    ensure_default(l, new_default.as_deref());
    Ok(task_started(s, ctx, lb_id))
}

pub(crate) fn modify_domain_attributes(s: &mut SimState, ctx: &Ctx, p: Obj) -> ApiResult<Outcome> {
    p.only(&[
        "LoadBalancerId",
        "ListenerId",
        "Domain",
        "NewDomain",
        "Certificate",
        "Http2",
        "DefaultServer",
        "Quic",
        "NewDefaultServerDomain",
        "NewDomains",
        "MultiCertInfo",
    ])?;
    p.refuse_unmodelled(&[
        ("Quic", Some(json!(false))),
        ("NewDomains", None),
        ("MultiCertInfo", None),
    ])?;
    let lb_id = p.req_str("LoadBalancerId")?;
    let listener_id = p.req_str("ListenerId")?;
    let domain = p.req_str("Domain")?;
    let new_domain = p.str("NewDomain")?;
    if let Some(nd) = &new_domain {
        valid_domain(nd).map_err(|why| p.invalid_value("NewDomain", why))?;
    }
    let cert = match p.obj("Certificate")? {
        Some(m) => Some(parse_cert(s, m, "Certificate")?),
        None => None,
    };
    let http2 = p.bool("Http2")?;
    let default_server = p.bool("DefaultServer")?;
    let new_default = p.str("NewDefaultServerDomain")?;
    let lb = writable(s, &lb_id, ctx.now)?;
    let l = listener_mut(lb, &listener_id)?;
    if !l.rules.iter().any(|r| r.has_domain(&domain)) {
        return Err(location_not_found(&domain));
    }
    if cert.is_some() && !l.sni {
        return Err(ApiError::new(
            "InvalidParameter",
            "Certificate: only SNI listeners have per-domain certificates",
        ));
    }
    if let Some(nd) = &new_domain {
        let urls: Vec<&String> = l
            .rules
            .iter()
            .filter(|r| r.has_domain(&domain))
            .map(|r| &r.url)
            .collect();
        if l.rules
            .iter()
            .any(|r| r.has_domain(nd) && urls.contains(&&r.url))
            && *nd != domain
        {
            return Err(ApiError::new(
                DUPLICATE_RULE_CODE,
                format!("domain {nd} already has these URLs"),
            ));
        }
    }
    let is_default = l
        .rules
        .iter()
        .any(|r| r.has_domain(&domain) && r.default_server);
    if default_server == Some(false) && is_default {
        let Some(nd) = &new_default else {
            return Err(p.missing("NewDefaultServerDomain"));
        };
        if *nd == domain || !l.rules.iter().any(|r| r.has_domain(nd)) {
            return Err(p.invalid_value(
                "NewDefaultServerDomain",
                "names no other domain of the listener",
            ));
        }
    }
    for r in l.rules.iter_mut().filter(|r| r.has_domain(&domain)) {
        if let Some(c) = &cert {
            r.certificate = Some(c.clone());
        }
        if let Some(h) = http2 {
            r.http2 = h;
        }
    }
    match default_server {
        Some(true) => set_default(l, &domain),
        Some(false) if is_default => {
            if let Some(nd) = &new_default {
                set_default(l, nd);
            }
        }
        _ => {}
    }
    if let Some(nd) = new_domain {
        for r in l.rules.iter_mut() {
            for d in r.domains.iter_mut().filter(|d| **d == domain) {
                *d = nd.clone();
            }
        }
    }
    Ok(task_started(s, ctx, lb_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_syntax_follows_the_clb_rules() {
        assert!(valid_domain("www.example.com").is_ok());
        assert!(valid_domain("*.example.com").is_ok());
        assert!(valid_domain("www.example.*").is_ok());
        assert!(valid_domain("~^www\\d+\\.example\\.com$").is_ok());
        assert!(valid_domain("a.*.com").is_err());
        assert!(valid_domain("WWW.example.com").is_err());
        assert!(valid_domain("_x.com").is_err());
        assert!(valid_domain(&"a".repeat(81)).is_err());
    }

    #[test]
    fn url_syntax_follows_the_clb_rules() {
        assert!(valid_url("/").is_ok());
        assert!(valid_url("/api/v1?x=1").is_ok());
        assert!(valid_url("=/exact").is_ok());
        assert!(valid_url("~* \\.png$").is_ok());
        assert!(valid_url("api").is_err());
        assert!(valid_url("/a b").is_err());
        assert!(valid_url(&format!("/{}", "a".repeat(200))).is_err());
    }
}
