//! TKE's `TkeServiceConfig` (tke-annotations.md §1): listener and rule attributes an Ingress
//! names with `ingress.cloud.tencent.com/tke-service-config`. Pure: the object as JSON in,
//! typed sections and coded problems out.
//!
//! A TkeServiceConfig never creates anything: each section selects a listener by (protocol,
//! port), a domain by name and a rule by URL, and sets only the attributes it spells out.
//! A bad section (or rule entry) is reported and skipped; the rest still applies.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::annotations::parse_bool;
use super::lb::{Domain, ListenerKey, Protocol};
use super::problem::{codes, Problem};
use super::refs::{
    ANNOTATION_TKE_SERVICE_CONFIG, ANNOTATION_TKE_SERVICE_CONFIG_AUTO,
    AUTO_TKE_SERVICE_CONFIG_SUFFIX,
};
use super::view::ClusterView;

/// Suffix TKE reserves for the TkeServiceConfig it keeps for a Service; a manual name may
/// end in neither this nor [`AUTO_TKE_SERVICE_CONFIG_SUFFIX`] (tke-annotations.md §1.2).
pub const AUTO_SERVICE_CONFIG_SUFFIX: &str = "-auto-service-config";

/// `SessionExpireTime` for `session: {enable: true}` without `sessionExpireTime`.
/// ASSUMPTION (tke-annotations.md §1.1 gives only the range, 30-3600, and an example of 3600):
/// the shortest persistence the CLB allows.
pub const DEFAULT_SESSION_EXPIRE_TIME: i64 = 30;

/// Schedulers a rule takes (tke-annotations.md §1.1, CLB ModifyRule).
pub const SCHEDULERS: [&str; 3] = ["WRR", "LEAST_CONN", "IP_HASH"];
/// Backend protocols TKE documents for `forwardType` (tke-annotations.md §1.1, cn 45700).
pub const FORWARD_TYPES: [&str; 3] = ["HTTP", "HTTPS", "GRPC"];

/// Health check of one rule. `None` leaves the CLB's value alone. The same shape holds what
/// DescribeListeners shows, where `None` means the API did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealthCheckSettings {
    pub enable: Option<bool>,
    pub interval_time: Option<i64>,
    pub timeout: Option<i64>,
    pub health_num: Option<i64>,
    pub unhealth_num: Option<i64>,
    pub http_code: Option<i64>,
    pub http_check_path: Option<String>,
    pub http_check_domain: Option<String>,
    pub http_check_method: Option<String>,
    pub source_ip_type: Option<i64>,
}

/// The attributes of one rule a TkeServiceConfig sets, or a rule has on the CLB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleAttributes {
    pub scheduler: Option<String>,
    /// `SessionExpireTime`: 0 is off.
    pub session_expire_time: Option<i64>,
    pub forward_type: Option<String>,
    pub health_check: HealthCheckSettings,
}

impl RuleAttributes {
    pub fn is_empty(&self) -> bool {
        *self == RuleAttributes::default()
    }

    /// What `self` (wanted) changes on `current` (the CLB): the fields that differ, with the
    /// whole wanted health check when any of its fields differs (the other fields of the
    /// CLB's health check are never sent, so they stay as they are).
    pub fn changes(&self, current: &RuleAttributes) -> RuleAttributes {
        fn differs<T: PartialEq + Clone>(want: &Option<T>, have: &Option<T>) -> Option<T> {
            want.as_ref().filter(|w| have.as_ref() != Some(*w)).cloned()
        }
        let (w, h) = (&self.health_check, &current.health_check);
        let hc_differs = differs(&w.enable, &h.enable).is_some()
            || differs(&w.interval_time, &h.interval_time).is_some()
            || differs(&w.timeout, &h.timeout).is_some()
            || differs(&w.health_num, &h.health_num).is_some()
            || differs(&w.unhealth_num, &h.unhealth_num).is_some()
            || differs(&w.http_code, &h.http_code).is_some()
            || differs(&w.http_check_path, &h.http_check_path).is_some()
            || differs(&w.http_check_domain, &h.http_check_domain).is_some()
            || differs(&w.http_check_method, &h.http_check_method).is_some()
            || differs(&w.source_ip_type, &h.source_ip_type).is_some();
        RuleAttributes {
            scheduler: differs(&self.scheduler, &current.scheduler),
            session_expire_time: differs(&self.session_expire_time, &current.session_expire_time),
            forward_type: differs(&self.forward_type, &current.forward_type),
            health_check: if hc_differs {
                w.clone()
            } else {
                HealthCheckSettings::default()
            },
        }
    }
}

impl fmt::Display for RuleAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let mut put = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        };
        put("scheduler", self.scheduler.clone());
        put("session", self.session_expire_time.map(|t| t.to_string()));
        put("forward", self.forward_type.clone());
        let h = &self.health_check;
        put("health", h.enable.map(|e| u8::from(e).to_string()));
        put("interval", h.interval_time.map(|t| t.to_string()));
        put("timeout", h.timeout.map(|t| t.to_string()));
        put("healthy", h.health_num.map(|t| t.to_string()));
        put("unhealthy", h.unhealth_num.map(|t| t.to_string()));
        put("http_code", h.http_code.map(|t| t.to_string()));
        put("check_path", h.http_check_path.clone());
        put("check_domain", h.http_check_domain.clone());
        put("check_method", h.http_check_method.clone());
        put("source_ip_type", h.source_ip_type.map(|t| t.to_string()));
        f.write_str(&parts.join(" "))
    }
}

/// One `l7Listeners[]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerSection {
    /// `defaultServer`: the listener's default domain.
    pub default_server: Option<Domain>,
    /// `keepaliveEnable`.
    pub keepalive: Option<bool>,
    /// (domain, url) → attributes. `domains[].domain: ""` is the default domain.
    pub rules: BTreeMap<(Domain, String), RuleAttributes>,
}

/// The parsed `spec.loadBalancer.l7Listeners`, by listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `namespace/name` of the object, for messages.
    pub name: String,
    pub listeners: BTreeMap<ListenerKey, ListenerSection>,
}

/// The TkeServiceConfig the Ingress of `view` asks for, parsed, with the problems found.
/// `None` when it names none or the named one cannot be used; each such case is a Warning
/// that leaves the CLB's attributes alone and the rest of the Ingress unaffected.
pub fn from_view(view: &ClusterView) -> (Option<ServiceConfig>, Vec<Problem>) {
    let mut problems = Vec::new();
    let meta = &view.ingress.metadata;
    let annotation = |k: &str| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let auto = annotation(ANNOTATION_TKE_SERVICE_CONFIG_AUTO);
    if let Some(v) = auto.filter(|v| parse_bool(v).is_none()) {
        problems.push(Problem::warning(
            codes::BAD_TKE_SERVICE_CONFIG_AUTO,
            format!("{ANNOTATION_TKE_SERVICE_CONFIG_AUTO}: {v:?} is not a bool; ignored"),
        ));
    }
    let Some(name) = annotation(ANNOTATION_TKE_SERVICE_CONFIG) else {
        // The automatic config is applied like a manual one once it exists (so user edits
        // reach the CLB); until the first run writes it, there is nothing to apply.
        let config = view
            .tke_service_config
            .as_ref()
            .filter(|_| auto_config_on(view))
            .map(|obj| parse(obj, &mut problems));
        return (config, problems);
    };
    if name.ends_with(AUTO_TKE_SERVICE_CONFIG_SUFFIX) || name.ends_with(AUTO_SERVICE_CONFIG_SUFFIX)
    {
        problems.push(Problem::warning(
            codes::RESERVED_TKE_SERVICE_CONFIG_NAME,
            format!(
                "{ANNOTATION_TKE_SERVICE_CONFIG}: {name:?} ends in a suffix reserved for automatic configs; ignored"
            ),
        ));
        return (None, problems);
    }
    if auto.is_some_and(|v| parse_bool(v) == Some(true)) {
        problems.push(Problem::warning(
            codes::INVALID_TKE_SERVICE_CONFIG,
            format!("{ANNOTATION_TKE_SERVICE_CONFIG} and {ANNOTATION_TKE_SERVICE_CONFIG_AUTO} exclude each other; {name:?} is used"),
        ));
    }
    match &view.tke_service_config {
        Some(obj) => (Some(parse(obj, &mut problems)), problems),
        None => {
            let ns = meta.namespace.as_deref().unwrap_or("default");
            problems.push(Problem::warning(
                codes::TKE_SERVICE_CONFIG_NOT_FOUND,
                format!("TkeServiceConfig {ns}/{name} not found; listener and rule attributes left as they are"),
            ));
            (None, problems)
        }
    }
}

/// The Ingress of `view` asks for an automatic config (`tke-service-config-auto: "true"`)
/// and names no manual one: the function keeps `<ingress>-auto-ingress-config`.
pub fn auto_config_on(view: &ClusterView) -> bool {
    let annotations = view.ingress.metadata.annotations.as_ref();
    let get = |k: &str| annotations.and_then(|a| a.get(k)).map(|v| v.trim());
    get(ANNOTATION_TKE_SERVICE_CONFIG).is_none_or(str::is_empty)
        && get(ANNOTATION_TKE_SERVICE_CONFIG_AUTO).and_then(parse_bool) == Some(true)
}

/// A field of one section, read with its path for messages.
struct Field<'a> {
    obj: &'a serde_json::Map<String, Value>,
    path: String,
}

impl<'a> Field<'a> {
    fn new(v: &'a Value, path: String) -> Result<Self, String> {
        match v.as_object() {
            Some(obj) => Ok(Field { obj, path }),
            None => Err(format!("{path}: must be an object")),
        }
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn int(&self, key: &str, lo: i64, hi: i64) -> Result<Option<i64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
                _ => Err(format!(
                    "{}: must be an integer from {lo} to {hi}",
                    self.at(key)
                )),
            },
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{}: must be a string", self.at(key))),
        }
    }

    fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, String> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => {
                let up = s.to_ascii_uppercase();
                if allowed.contains(&up.as_str()) {
                    Ok(Some(up))
                } else {
                    Err(format!(
                        "{}: must be one of {}",
                        self.at(key),
                        allowed.join(", ")
                    ))
                }
            }
        }
    }

    /// A bool written as `true`/`false` or `1`/`0`.
    fn flag(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => match v.as_i64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(format!("{}: must be true/false or 1/0", self.at(key))),
            },
        }
    }

    /// `enable`, or `enabled` as an older design doc spells it. ASSUMPTION (tencent-cloud.md
    /// §1.8: current examples use `enable`, one older copy `enabled`): both are accepted.
    fn enable(&self) -> Result<Option<bool>, String> {
        match self.flag("enable")? {
            Some(b) => Ok(Some(b)),
            None => self.flag("enabled"),
        }
    }

    fn list(&self, key: &str) -> Result<&'a [Value], String> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a.as_slice()),
            Some(_) => Err(format!("{}: must be a list", self.at(key))),
        }
    }
}

/// The domain a section names: `""` is the listener's default domain (the VIP).
fn section_domain(d: &str) -> Domain {
    match d.trim() {
        "" => Domain::Default,
        d => Domain::Name(d.to_ascii_lowercase()),
    }
}

fn health_check(f: &Field<'_>) -> Result<HealthCheckSettings, String> {
    let Some(v) = f.get("healthCheck") else {
        return Ok(HealthCheckSettings::default());
    };
    let h = Field::new(v, f.at("healthCheck"))?;
    // Ranges are the CLB API's (tke-annotations.md §1.3).
    let hc = HealthCheckSettings {
        enable: h.enable()?,
        interval_time: h.int("intervalTime", 2, 300)?,
        timeout: h.int("timeout", 2, 60)?,
        health_num: h.int("healthNum", 2, 10)?,
        unhealth_num: h.int("unHealthNum", 2, 10)?,
        // ASSUMPTION (tke-annotations.md §1.1, U: not in the official examples): `httpCode`
        // and `sourceIpType` map 1:1 to the CLB's HttpCode bitmask and SourceIpType.
        http_code: h.int("httpCode", 1, 31)?,
        source_ip_type: h.int("sourceIpType", 0, 1)?,
        http_check_path: match h.string("httpCheckPath")? {
            Some(p) if !p.starts_with('/') || p.len() > 200 => {
                return Err(format!(
                    "{}: must start with / and be at most 200 characters",
                    h.at("httpCheckPath")
                ))
            }
            p => p.map(str::to_string),
        },
        http_check_domain: h.string("httpCheckDomain")?.map(str::to_string),
        http_check_method: h.one_of("httpCheckMethod", &["HEAD", "GET"])?,
    };
    if let (Some(i), Some(t)) = (hc.interval_time, hc.timeout) {
        if i <= t {
            return Err(format!(
                "{}: intervalTime ({i}) must exceed timeout ({t})",
                h.path
            ));
        }
    }
    Ok(hc)
}

fn session(f: &Field<'_>) -> Result<Option<i64>, String> {
    let Some(v) = f.get("session") else {
        return Ok(None);
    };
    let s = Field::new(v, f.at("session"))?;
    let time = s.int("sessionExpireTime", 30, 86400)?;
    Ok(match (s.enable()?, time) {
        (Some(false), _) => Some(0),
        (_, Some(t)) => Some(t),
        (Some(true), None) => Some(DEFAULT_SESSION_EXPIRE_TIME),
        (None, None) => None,
    })
}

fn rule_attributes(f: &Field<'_>) -> Result<RuleAttributes, String> {
    Ok(RuleAttributes {
        scheduler: f.one_of("scheduler", &SCHEDULERS)?,
        session_expire_time: session(f)?,
        forward_type: f.one_of("forwardType", &FORWARD_TYPES)?,
        health_check: health_check(f)?,
    })
}

fn listener_section(
    f: &Field<'_>,
    problems: &mut Vec<Problem>,
    warn: &dyn Fn(String) -> Problem,
) -> Result<(ListenerKey, ListenerSection), String> {
    let protocol = match f.one_of("protocol", &["HTTP", "HTTPS"])? {
        Some(p) => Protocol::from_api(&p).unwrap_or(Protocol::Http),
        None => return Err(format!("{}: needs protocol HTTP or HTTPS", f.path)),
    };
    let port = match f.int("port", 1, 65535)? {
        Some(p) => p as u16,
        None => return Err(format!("{}: needs port", f.path)),
    };
    let mut section = ListenerSection {
        default_server: f.string("defaultServer")?.map(section_domain),
        keepalive: f.flag("keepaliveEnable")?,
        rules: BTreeMap::new(),
    };
    for (i, d) in f.list("domains")?.iter().enumerate() {
        let path = format!("{}.domains[{i}]", f.path);
        let parsed = Field::new(d, path).and_then(|df| {
            let domain = section_domain(df.string("domain")?.unwrap_or(""));
            let mut rules = Vec::new();
            for (j, r) in df.list("rules")?.iter().enumerate() {
                let parsed = Field::new(r, df.at(&format!("rules[{j}]"))).and_then(|rf| {
                    let url = rf
                        .string("url")?
                        .filter(|u| !u.is_empty())
                        .ok_or_else(|| format!("{}: needs url", rf.path))?;
                    Ok((url.to_string(), rule_attributes(&rf)?))
                });
                match parsed {
                    Ok(rule) => rules.push(rule),
                    Err(m) => problems.push(warn(m)),
                }
            }
            Ok((domain, rules))
        });
        match parsed {
            Ok((domain, rules)) => {
                for (url, attrs) in rules {
                    section.rules.insert((domain.clone(), url), attrs);
                }
            }
            Err(m) => problems.push(warn(m)),
        }
    }
    Ok((ListenerKey { protocol, port }, section))
}

/// Parses a TkeServiceConfig object (as the API serves it). Every malformed part is a
/// Warning naming the field, and is skipped; a later section for the same listener,
/// domain and URL replaces an earlier one.
pub fn parse(obj: &Value, problems: &mut Vec<Problem>) -> ServiceConfig {
    let meta = obj.get("metadata");
    let text = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    let name = format!(
        "{}/{}",
        text("namespace").unwrap_or("default"),
        text("name").unwrap_or_default()
    );
    let warn = |m: String| {
        Problem::warning(
            codes::INVALID_TKE_SERVICE_CONFIG,
            format!("TkeServiceConfig {name}: {m}; skipped"),
        )
    };
    let mut config = ServiceConfig {
        name: name.clone(),
        listeners: BTreeMap::new(),
    };
    let sections = obj
        .get("spec")
        .and_then(|s| s.get("loadBalancer"))
        .and_then(|lb| lb.get("l7Listeners"))
        .filter(|v| !v.is_null());
    let sections = match sections {
        None => return config,
        Some(Value::Array(a)) => a,
        Some(_) => {
            problems.push(warn("spec.loadBalancer.l7Listeners: must be a list".into()));
            return config;
        }
    };
    for (i, s) in sections.iter().enumerate() {
        let path = format!("spec.loadBalancer.l7Listeners[{i}]");
        let parsed = Field::new(s, path).and_then(|f| listener_section(&f, problems, &warn));
        match parsed {
            Ok((key, section)) => {
                let entry = config.listeners.entry(key).or_default();
                entry.default_server = section.default_server.or(entry.default_server.take());
                entry.keepalive = section.keepalive.or(entry.keepalive);
                entry.rules.extend(section.rules);
            }
            Err(m) => problems.push(warn(m)),
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;
    use k8s_openapi::api::networking::v1::Ingress;
    use serde_json::json;

    fn tsc(l7: Value) -> Value {
        json!({
            "apiVersion": "cloud.tencent.com/v1alpha1", "kind": "TkeServiceConfig",
            "metadata": {"name": "cfg", "namespace": "web"},
            "spec": {"loadBalancer": {"l7Listeners": l7}},
        })
    }

    fn view(annotations: &[(&str, &str)], config: Option<Value>) -> ClusterView {
        let mut ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "shop", "namespace": "web", "uid": "u1"},
        }))
        .expect("ingress");
        ingress.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        ClusterView {
            ingress,
            tke_service_config: config,
            ..ClusterView::default()
        }
    }

    /// The official example (tke-annotations.md §1.1), both listeners.
    fn example() -> Value {
        tsc(json!([
            {"protocol": "HTTP", "port": 80, "domains": [{"domain": "", "rules": [{
                "url": "/health", "forwardType": "HTTP", "scheduler": "WRR",
                "session": {"enable": true, "sessionExpireTime": 3600},
                "healthCheck": {"enable": true, "intervalTime": 10, "timeout": 5, "healthNum": 2,
                                "unHealthNum": 2, "httpCheckPath": "/checkHealth",
                                "httpCheckDomain": "sample.tencent.com", "httpCheckMethod": "HEAD"}}]}]},
            {"protocol": "HTTPS", "port": 443, "defaultServer": "sample.tencent.com",
             "keepaliveEnable": 1, "domains": [{"domain": "sample.tencent.com", "rules": [{
                "url": "/", "forwardType": "HTTPS", "session": {"enable": false},
                "healthCheck": {"enable": false}}]}]},
        ]))
    }

    #[test]
    fn the_documented_example_parses_into_sections_by_listener_domain_and_url() {
        let mut problems = Vec::new();
        let c = parse(&example(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.name, "web/cfg");
        let http = &c.listeners[&ListenerKey::HTTP_80];
        assert_eq!(http.default_server, None);
        assert_eq!(http.keepalive, None);
        let health = &http.rules[&(Domain::Default, "/health".to_string())];
        assert_eq!(health.scheduler.as_deref(), Some("WRR"));
        assert_eq!(health.session_expire_time, Some(3600));
        assert_eq!(health.health_check.interval_time, Some(10));
        assert_eq!(
            health.health_check.http_check_method.as_deref(),
            Some("HEAD")
        );
        assert_eq!(health.health_check.http_code, None);
        let https = &c.listeners[&ListenerKey::HTTPS_443];
        assert_eq!(
            https.default_server,
            Some(Domain::Name("sample.tencent.com".into()))
        );
        assert_eq!(https.keepalive, Some(true));
        let root = &https.rules[&(Domain::Name("sample.tencent.com".into()), "/".to_string())];
        assert_eq!(root.session_expire_time, Some(0));
        assert_eq!(root.health_check.enable, Some(false));
        assert_eq!(root.forward_type.as_deref(), Some("HTTPS"));
    }

    #[test]
    fn a_bad_rule_or_section_is_skipped_with_a_warning_and_the_rest_applies() {
        let mut problems = Vec::new();
        let c = parse(
            &tsc(json!([
                {"protocol": "HTTP", "port": 80, "domains": [{"domain": "a.com", "rules": [
                    {"url": "/ok", "scheduler": "LEAST_CONN"},
                    {"url": "/bad", "healthCheck": {"intervalTime": 5, "timeout": 5}},
                    {"url": "/worse", "scheduler": "RANDOM"},
                ]}]},
                {"protocol": "TCP", "port": 80},
                {"protocol": "HTTPS"},
                "not an object",
            ])),
            &mut problems,
        );
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems.iter().all(
            |p| p.code == codes::INVALID_TKE_SERVICE_CONFIG && p.severity == Severity::Warning
        ));
        assert!(problems[0]
            .message
            .contains("intervalTime (5) must exceed timeout (5)"));
        let rules = &c.listeners[&ListenerKey::HTTP_80].rules;
        assert_eq!(rules.len(), 1);
        assert!(rules.contains_key(&(Domain::Name("a.com".into()), "/ok".to_string())));
        assert_eq!(c.listeners.len(), 1);
    }

    #[test]
    fn session_enable_alone_uses_the_default_and_enabled_is_accepted_too() {
        let mut problems = Vec::new();
        let c = parse(
            &tsc(
                json!([{"protocol": "http", "port": 8080, "domains": [{"rules": [
                    {"url": "/a", "session": {"enable": true}},
                    {"url": "/b", "session": {"enabled": false}, "healthCheck": {"enabled": 1}},
                    {"url": "/c", "session": {"sessionExpireTime": 90}},
                ]}]}]),
            ),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let rules = &c.listeners[&ListenerKey {
            protocol: Protocol::Http,
            port: 8080,
        }]
            .rules;
        let get = |u: &str| &rules[&(Domain::Default, u.to_string())];
        assert_eq!(
            get("/a").session_expire_time,
            Some(DEFAULT_SESSION_EXPIRE_TIME)
        );
        assert_eq!(get("/b").session_expire_time, Some(0));
        assert_eq!(get("/b").health_check.enable, Some(true));
        assert_eq!(get("/c").session_expire_time, Some(90));
    }

    #[test]
    fn an_object_without_l7_listeners_selects_nothing() {
        let mut problems = Vec::new();
        let c = parse(
            &json!({"metadata": {"name": "x"}, "spec": {}}),
            &mut problems,
        );
        assert!(problems.is_empty() && c.listeners.is_empty());
    }

    #[test]
    fn from_view_reports_tkes_codes_and_uses_nothing_it_cannot() {
        let (c, p) = from_view(&view(&[(ANNOTATION_TKE_SERVICE_CONFIG, "cfg")], None));
        assert!(c.is_none());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, "E4043");
        assert_eq!(p[0].severity, Severity::Warning);

        let (c, p) = from_view(&view(
            &[(ANNOTATION_TKE_SERVICE_CONFIG, "shop-auto-ingress-config")],
            Some(example()),
        ));
        assert!(c.is_none());
        assert_eq!(p[0].code, "E4051");

        let (c, p) = from_view(&view(
            &[(ANNOTATION_TKE_SERVICE_CONFIG, "cfg")],
            Some(example()),
        ));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.map(|c| c.listeners.len()), Some(2));

        let (c, p) = from_view(&view(&[], Some(example())));
        assert!(c.is_none() && p.is_empty());

        let (c, p) = from_view(&view(
            &[(ANNOTATION_TKE_SERVICE_CONFIG_AUTO, "yes")],
            Some(example()),
        ));
        assert!(c.is_none());
        assert_eq!(p[0].code, "E4050");

        let auto = view(
            &[(ANNOTATION_TKE_SERVICE_CONFIG_AUTO, "true")],
            Some(example()),
        );
        assert!(auto_config_on(&auto));
        let (c, p) = from_view(&auto);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.map(|c| c.listeners.len()), Some(2), "user edits apply");
        let (c, p) = from_view(&view(&[(ANNOTATION_TKE_SERVICE_CONFIG_AUTO, "true")], None));
        assert!(
            c.is_none() && p.is_empty(),
            "not written yet: nothing to apply"
        );
    }

    #[test]
    fn changes_are_only_the_differing_fields_and_the_whole_wanted_health_check() {
        let want = RuleAttributes {
            scheduler: Some("WRR".into()),
            session_expire_time: Some(60),
            forward_type: None,
            health_check: HealthCheckSettings {
                interval_time: Some(10),
                http_check_path: Some("/hz".into()),
                ..Default::default()
            },
        };
        let have = RuleAttributes {
            scheduler: Some("WRR".into()),
            session_expire_time: Some(0),
            forward_type: Some("HTTP".into()),
            health_check: HealthCheckSettings {
                enable: Some(true),
                interval_time: Some(5),
                http_check_path: Some("/hz".into()),
                ..Default::default()
            },
        };
        let c = want.changes(&have);
        assert_eq!(c.scheduler, None);
        assert_eq!(c.session_expire_time, Some(60));
        assert_eq!(c.forward_type, None);
        assert_eq!(c.health_check, want.health_check);
        assert!(want.changes(&want).is_empty());
    }
}
