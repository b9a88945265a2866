//! The TKE annotations this reconciler reads (tencent-cloud.md §1.3). A malformed value is a
//! coded problem; those that shape the CLB itself refuse the whole Ingress (better no CLB
//! than a wrong one), unsupported ones are reported and ignored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::lb::Protocol;
use super::listen_ports::{self, ListenPorts, LISTEN_PORTS};
use super::problem::{codes, Problem};
use super::redirects::RewriteEntry;

pub const EXIST_LB_ID: &str = "kubernetes.io/ingress.existLbId";
pub const SUBNET_ID: &str = "kubernetes.io/ingress.subnetId";
pub const INTERNET_CHARGE_TYPE: &str = "kubernetes.io/ingress.internetChargeType";
pub const INTERNET_MAX_BANDWIDTH_OUT: &str = "kubernetes.io/ingress.internetMaxBandwidthOut";
pub const EXTENSIVE_PARAMETERS: &str = "kubernetes.io/ingress.extensiveParameters";
pub const DIRECT_ACCESS: &str = "ingress.cloud.tencent.com/direct-access";
pub const CROSS_VPC_ID: &str = "ingress.cloud.tencent.com/cross-vpc-id";
pub const RULE_MIX: &str = "kubernetes.io/ingress.rule-mix";
pub const HTTP_RULES: &str = "kubernetes.io/ingress.http-rules";
pub const HTTPS_RULES: &str = "kubernetes.io/ingress.https-rules";

/// TKE annotations that change listeners, rules or lifecycle in ways we do not implement:
/// reported as `UnsupportedAnnotation` so nobody believes they took effect.
pub const UNSUPPORTED: [&str; 1] = ["ingress.cloud.tencent.com/enable-group"];

/// `InternetChargeType` values the TKE annotation documents.
pub const CHARGE_TYPES: [&str; 2] = ["TRAFFIC_POSTPAID_BY_HOUR", "BANDWIDTH_POSTPAID_BY_HOUR"];

/// Bandwidth range of a public CLB, Mbps [SDK: 1-2048].
pub const BANDWIDTH_RANGE: std::ops::RangeInclusive<u32> = 1..=2048;

/// The parsed annotations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    pub exist_lb_id: Option<String>,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    /// `cross-region-id`: the region the CLB lives in (`None`: the cluster's).
    pub cross_region: Option<String>,
    pub internet_charge_type: Option<String>,
    pub internet_max_bandwidth_out: Option<u32>,
    pub extensive_parameters: Map<String, Value>,
    pub direct_access: bool,
    /// `rule-mix: "true"`: spec rules are split between HTTP and HTTPS by the entries below.
    pub rule_mix: bool,
    pub http_rules: Vec<MixEntry>,
    pub https_rules: Vec<MixEntry>,
    /// `listen-ports`: the listeners of each protocol (default HTTP:80, HTTPS:443).
    pub listen_ports: ListenPorts,
    /// `ingress.cloud.tencent.com/certificate`, when set and well-formed.
    pub certificates: Option<Vec<super::cert_annotation::CertEntry>>,
    /// `mode`, `loadbalance-retain`, protection, security groups, pass-to-target.
    pub lifecycle: super::lifecycle::Lifecycle,
    /// `auto-rewrite`, `auto-rewrite-code`, `rewrite-support`, `rule-mix-both` and the
    /// `rewrite` entries of `http-rules` / `https-rules`.
    pub redirects: super::redirects::RedirectAnnotations,
    /// `enable-grace-shutdown`, `enable-grace-shutdown-tkex` (direct access).
    pub graceful: super::graceful::Graceful,
}

impl Annotations {
    /// The type of CLB to create: INTERNAL in the subnet the annotation names, else OPEN.
    pub fn lb_type(&self) -> super::lb::LbType {
        match self.subnet_id {
            Some(_) => super::lb::LbType::Internal,
            None => super::lb::LbType::Open,
        }
    }
}

/// One entry of `http-rules` / `https-rules`: which spec rule goes to that protocol,
/// matched on host (absent = no host), path (absent = `/`), service name and port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixEntry {
    pub host: Option<String>,
    pub path: Option<String>,
    pub service_name: String,
    /// As written (TKE's examples use strings); numbers are accepted and kept as text.
    pub service_port: String,
}

impl MixEntry {
    /// Whether this entry names the spec rule (host, path, Service name, port number or name).
    pub fn matches(
        &self,
        host: Option<&str>,
        path: Option<&str>,
        service: &str,
        port: &str,
    ) -> bool {
        let norm = |v: Option<&str>, d: &'static str| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .unwrap_or(d)
                .to_string()
        };
        norm(self.host.as_deref(), "") == norm(host, "")
            && norm(self.path.as_deref(), "/") == norm(path, "/")
            && self.service_name == service
            && self.service_port == port
    }
}

/// Parses an `http-rules` / `https-rules` value: a JSON array (or the literal `null`) of
/// `{"host","path","backend":{"serviceName","servicePort"}}`. An entry's `rewrite` goes to
/// `rewrites`; an entry with a `rewrite` needs no `backend`.
fn parse_mix_rules(
    key: &str,
    value: &str,
    (protocol, code): (Protocol, &'static str),
    rewrites: &mut Vec<RewriteEntry>,
    problems: &mut Vec<Problem>,
) -> Vec<MixEntry> {
    let entries = match serde_json::from_str::<Value>(value) {
        Ok(Value::Null) => return Vec::new(),
        Ok(Value::Array(a)) => a,
        Ok(_) => {
            problems.push(Problem::error(code, format!("{key}: must be a JSON array")));
            return Vec::new();
        }
        Err(e) => {
            problems.push(Problem::error(code, format!("{key}: invalid JSON ({e})")));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let redirect = match super::redirects::parse_entry(key, i, e, protocol, code) {
            Ok(r) => r,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let redirect_only = redirect.is_some() && e.get("backend").is_none();
        rewrites.extend(redirect);
        if redirect_only {
            continue;
        }
        let backend = e.get("backend");
        let (Some(service_name), Some(service_port)) = (
            text(backend.and_then(|b| b.get("serviceName"))),
            text(backend.and_then(|b| b.get("servicePort"))),
        ) else {
            problems.push(Problem::error(
                code,
                format!("{key}[{i}]: needs backend.serviceName and backend.servicePort"),
            ));
            continue;
        };
        out.push(MixEntry {
            host: text(e.get("host")),
            path: text(e.get("path")),
            service_name,
            service_port,
        });
    }
    out
}

/// Go's `strconv.ParseBool`, which TKE (written in Go) is assumed to use.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `<prefix>-` followed by lower-case letters and digits, as Tencent ids are.
pub(crate) fn is_id(v: &str, prefix: &str) -> bool {
    v.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Parses the annotations. Problems of severity Error refuse the Ingress; Warnings don't.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Annotations, Vec<Problem>) {
    let mut out = Annotations::default();
    let mut problems = Vec::new();
    let get = |k: &str| {
        annotations
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };

    if let Some(v) = get(EXIST_LB_ID) {
        if is_id(v, "lb") {
            out.exist_lb_id = Some(v.to_string());
        } else {
            problems.push(Problem::error(
                codes::EXIST_LB_NOT_FOUND,
                format!("{EXIST_LB_ID}: {v:?} is not a CLB id (lb-xxxxxxxx)"),
            ));
        }
    }
    if let Some(v) = get(SUBNET_ID) {
        if is_id(v, "subnet") {
            out.subnet_id = Some(v.to_string());
        } else {
            problems.push(Problem::error(
                codes::BAD_SUBNET,
                format!("{SUBNET_ID}: {v:?} is not a subnet id (subnet-xxxxxxxx)"),
            ));
        }
    }
    if let Some(v) = get(CROSS_VPC_ID) {
        if is_id(v, "vpc") {
            out.vpc_id = Some(v.to_string());
        } else {
            problems.push(Problem::error(
                codes::BAD_CREATE_PARAMS,
                format!("{CROSS_VPC_ID}: {v:?} is not a VPC id (vpc-xxxxxxxx)"),
            ));
        }
    }
    if let Some(v) = get(INTERNET_CHARGE_TYPE) {
        if CHARGE_TYPES.contains(&v) {
            out.internet_charge_type = Some(v.to_string());
        } else {
            problems.push(Problem::error(
                codes::BAD_CHARGE_TYPE,
                format!(
                    "{INTERNET_CHARGE_TYPE}: {v:?} is not one of {}",
                    CHARGE_TYPES.join(", ")
                ),
            ));
        }
    }
    if let Some(v) = get(INTERNET_MAX_BANDWIDTH_OUT) {
        match v.parse::<u32>() {
            Ok(bw) if BANDWIDTH_RANGE.contains(&bw) => out.internet_max_bandwidth_out = Some(bw),
            _ => problems.push(Problem::error(
                codes::BAD_BANDWIDTH,
                format!("{INTERNET_MAX_BANDWIDTH_OUT}: {v:?} is not an integer from 1 to 2048"),
            )),
        }
    }
    if let Some(v) = get(EXTENSIVE_PARAMETERS) {
        match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(map)) => out.extensive_parameters = map,
            Ok(_) => problems.push(Problem::error(
                codes::BAD_EXTENSIVE_PARAMETERS,
                format!("{EXTENSIVE_PARAMETERS}: must be a JSON object"),
            )),
            Err(e) => problems.push(Problem::error(
                codes::BAD_EXTENSIVE_PARAMETERS,
                format!("{EXTENSIVE_PARAMETERS}: invalid JSON ({e})"),
            )),
        }
    }
    if let Some(v) = get(DIRECT_ACCESS) {
        match parse_bool(v) {
            Some(b) => out.direct_access = b,
            None => problems.push(Problem::error(
                codes::BAD_DIRECT_ACCESS,
                format!("{DIRECT_ACCESS}: {v:?} is not a bool"),
            )),
        }
    }
    if let Some(v) = get(RULE_MIX) {
        match parse_bool(v) {
            Some(b) => out.rule_mix = b,
            None => problems.push(Problem::error(
                codes::BAD_RULE_MIX,
                format!("{RULE_MIX}: {v:?} is not a bool"),
            )),
        }
    }
    let (redirects, more) = super::redirects::parse(annotations, out.rule_mix);
    out.redirects = redirects;
    problems.extend(more);
    if let Some(v) = get(HTTP_RULES) {
        let list = (Protocol::Http, codes::BAD_HTTP_RULES);
        let entries = &mut out.redirects.entries;
        out.http_rules = parse_mix_rules(HTTP_RULES, v, list, entries, &mut problems);
    }
    if let Some(v) = get(HTTPS_RULES) {
        let list = (Protocol::Https, codes::BAD_HTTPS_RULES);
        let entries = &mut out.redirects.entries;
        out.https_rules = parse_mix_rules(HTTPS_RULES, v, list, entries, &mut problems);
    }
    problems.extend(super::create_params::refused(
        &out.extensive_parameters,
        out.lb_type(),
    ));
    if let Some(v) = get(LISTEN_PORTS) {
        match listen_ports::parse(v) {
            Ok(p) => out.listen_ports = p,
            Err(p) => problems.push(p),
        }
    }
    if let Some(v) = get(super::cert_annotation::CERTIFICATE) {
        match super::cert_annotation::parse(v) {
            Ok(c) => out.certificates = Some(c),
            Err(p) => problems.push(p),
        }
    }
    match super::cross_region::parse(annotations) {
        Ok(region) => out.cross_region = region,
        Err(p) => problems.push(p),
    }
    let (lifecycle, more) = super::lifecycle::parse(annotations);
    out.lifecycle = lifecycle;
    problems.extend(more);
    let (graceful, more) = super::graceful::parse(annotations);
    out.graceful = graceful;
    problems.extend(more);
    for key in UNSUPPORTED.iter().chain(&super::lifecycle::UNSUPPORTED) {
        if annotations.contains_key(*key) {
            problems.push(Problem::warning(
                codes::UNSUPPORTED_ANNOTATION,
                format!("{key} is not supported by clb-ingress and is ignored"),
            ));
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn parse_one(k: &str, v: &str) -> (Annotations, Vec<Problem>) {
        parse(&[(k.to_string(), v.to_string())].into())
    }

    #[test]
    fn good_annotations_parse() {
        let a: BTreeMap<String, String> = [
            (EXIST_LB_ID, "lb-abc123"),
            (SUBNET_ID, "subnet-9x8y"),
            (CROSS_VPC_ID, "vpc-1"),
            (INTERNET_CHARGE_TYPE, "TRAFFIC_POSTPAID_BY_HOUR"),
            (INTERNET_MAX_BANDWIDTH_OUT, "2048"),
            (EXTENSIVE_PARAMETERS, r#"{"VipIsp":"CTCC"}"#),
            (DIRECT_ACCESS, "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (out, problems) = parse(&a);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(out.exist_lb_id.as_deref(), Some("lb-abc123"));
        assert_eq!(out.subnet_id.as_deref(), Some("subnet-9x8y"));
        assert_eq!(out.vpc_id.as_deref(), Some("vpc-1"));
        assert_eq!(out.internet_max_bandwidth_out, Some(2048));
        assert_eq!(out.extensive_parameters["VipIsp"], "CTCC");
        assert!(out.direct_access);
    }

    #[test]
    fn each_bad_annotation_refuses_with_its_code() {
        let cases = [
            (EXTENSIVE_PARAMETERS, "{not json", "E4026"),
            (EXTENSIVE_PARAMETERS, "[1,2]", "E4026"),
            (DIRECT_ACCESS, "yes", "E4037"),
            (INTERNET_CHARGE_TYPE, "FREE", "E4045"),
            (INTERNET_MAX_BANDWIDTH_OUT, "0", "E4046"),
            (INTERNET_MAX_BANDWIDTH_OUT, "2049", "E4046"),
            (INTERNET_MAX_BANDWIDTH_OUT, "ten", "E4046"),
            (EXIST_LB_ID, "my-lb", "E4018"),
            (SUBNET_ID, "subnet-", "E4091"),
            (CROSS_VPC_ID, "10.0.0.0/16", "E4024"),
            (RULE_MIX, "maybe", "E4044"),
            (HTTP_RULES, "{", "E4022"),
            (HTTP_RULES, r#"{"host":"a"}"#, "E4022"),
            (HTTPS_RULES, r#"[{"host":"a.com"}]"#, "E4023"),
        ];
        for (k, v, code) in cases {
            let (_, problems) = parse_one(k, v);
            assert_eq!(problems.len(), 1, "{k}={v}");
            assert_eq!(problems[0].code, code, "{k}={v}");
            assert_eq!(problems[0].severity, Severity::Error, "{k}={v}");
        }
    }

    #[test]
    fn direct_access_false_and_blank_values_mean_off() {
        assert!(!parse_one(DIRECT_ACCESS, "false").0.direct_access);
        let (a, p) = parse_one(EXIST_LB_ID, "  ");
        assert!(a.exist_lb_id.is_none() && p.is_empty());
    }

    #[test]
    fn unsupported_annotations_are_warned_not_refused() {
        let (_, problems) = parse_one("ingress.cloud.tencent.com/enable-group", "true");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, codes::UNSUPPORTED_ANNOTATION);
        assert_eq!(problems[0].severity, Severity::Warning);
    }
}

#[cfg(test)]
mod mix_tests {
    use super::*;

    #[test]
    fn mix_rules_parse_string_or_number_ports_null_and_keep_redirects_apart() {
        let a: BTreeMap<String, String> = [
            (RULE_MIX, "true"),
            (
                HTTP_RULES,
                r#"[{"host":"a.com","path":"/x","backend":{"serviceName":"web","servicePort":"80"}},
                    {"path":"/old","rewrite":{"port":443,"path":"/new"}}]"#,
            ),
            (HTTPS_RULES, "null"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (out, problems) = parse(&a);
        assert!(out.rule_mix);
        assert_eq!(out.http_rules.len(), 1);
        assert!(out.http_rules[0].matches(Some("a.com"), Some("/x"), "web", "80"));
        assert!(!out.http_rules[0].matches(None, Some("/x"), "web", "80"));
        assert!(out.https_rules.is_empty());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(out.redirects.entries.len(), 1);
        assert_eq!(out.redirects.entries[0].target_port, 443);
        assert_eq!(out.redirects.entries[0].target.url, "/new");

        let (out, _) = parse(
            &[(
                HTTPS_RULES.to_string(),
                r#"[{"backend":{"serviceName":"web","servicePort":8080}}]"#.to_string(),
            )]
            .into(),
        );
        assert!(out.https_rules[0].matches(None, None, "web", "8080"));
        assert!(out.https_rules[0].matches(Some(""), Some("/"), "web", "8080"));
    }
}

#[cfg(test)]
mod extensive_parameter_tests {
    use super::*;

    fn problems_of(pairs: &[(&str, &str)]) -> Vec<&'static str> {
        let a: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&a).1.into_iter().map(|p| p.code).collect()
    }

    #[test]
    fn extensive_parameters_changing_count_ownership_or_identity_are_refused_with_e4026() {
        for v in [
            r#"{"Number":3}"#,
            r#"{"ClientToken":"mine"}"#,
            r#"{"Tags":[{"TagKey":"tke-clusterId","TagValue":"cls-other"}]}"#,
            r#"{"Tags":[{"TagKey":"tke-lb-ingress-uuid","TagValue":"u"}]}"#,
            r#"{"Tags":[{"TagKey":"tke-createdBy-flag","TagValue":"no"}]}"#,
            r#"{"Tags":[{"TagKey":"tke-lifecycle-owner","TagValue":"user"}]}"#,
            r#"{"Tags":"team=web"}"#,
            r#"{"LoadBalancerType":"INTERNAL"}"#,
            r#"{"Forward":0}"#,
        ] {
            assert_eq!(
                problems_of(&[(EXTENSIVE_PARAMETERS, v)]),
                vec!["E4026"],
                "{v}"
            );
        }
        // The type the annotations already chose, one CLB, and tags of the user's own pass.
        for (pairs, what) in [
            (
                vec![(EXTENSIVE_PARAMETERS, r#"{"VipIsp":"CTCC","Number":1}"#)],
                "Number 1",
            ),
            (
                vec![(
                    EXTENSIVE_PARAMETERS,
                    r#"{"Tags":[{"TagKey":"team","TagValue":"web"}]}"#,
                )],
                "user tags",
            ),
            (
                vec![(EXTENSIVE_PARAMETERS, r#"{"LoadBalancerType":"OPEN"}"#)],
                "OPEN without subnet",
            ),
            (
                vec![
                    (SUBNET_ID, "subnet-1"),
                    (EXTENSIVE_PARAMETERS, r#"{"LoadBalancerType":"INTERNAL"}"#),
                ],
                "INTERNAL with subnet",
            ),
        ] {
            assert!(problems_of(&pairs).is_empty(), "{what}");
        }
        assert_eq!(
            problems_of(&[
                (SUBNET_ID, "subnet-1"),
                (EXTENSIVE_PARAMETERS, r#"{"LoadBalancerType":"OPEN"}"#)
            ]),
            vec!["E4026"]
        );
    }
}
