//! The TKE annotations this reconciler reads (tencent-cloud.md §1.3). A malformed value is a
//! coded problem; those that shape the CLB itself refuse the whole Ingress (better no CLB
//! than a wrong one), unsupported ones are reported and ignored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::problem::{codes, Problem};

pub const EXIST_LB_ID: &str = "kubernetes.io/ingress.existLbId";
pub const SUBNET_ID: &str = "kubernetes.io/ingress.subnetId";
pub const INTERNET_CHARGE_TYPE: &str = "kubernetes.io/ingress.internetChargeType";
pub const INTERNET_MAX_BANDWIDTH_OUT: &str = "kubernetes.io/ingress.internetMaxBandwidthOut";
pub const EXTENSIVE_PARAMETERS: &str = "kubernetes.io/ingress.extensiveParameters";
pub const DIRECT_ACCESS: &str = "ingress.cloud.tencent.com/direct-access";
pub const CROSS_VPC_ID: &str = "ingress.cloud.tencent.com/cross-vpc-id";

/// TKE annotations that change listeners, rules or lifecycle in ways we do not implement:
/// reported as `UnsupportedAnnotation` so nobody believes they took effect.
pub const UNSUPPORTED: [&str; 14] = [
    "kubernetes.io/ingress.rule-mix",
    "kubernetes.io/ingress.http-rules",
    "kubernetes.io/ingress.https-rules",
    "kubernetes.io/ingress.rule-mix-both",
    "ingress.cloud.tencent.com/rewrite-support",
    "ingress.cloud.tencent.com/auto-rewrite",
    "ingress.cloud.tencent.com/auto-rewrite-code",
    "ingress.cloud.tencent.com/listen-ports",
    "ingress.cloud.tencent.com/certificate",
    "ingress.cloud.tencent.com/enable-group",
    "ingress.cloud.tencent.com/mode",
    "ingress.cloud.tencent.com/tke-service-config",
    "ingress.cloud.tencent.com/tke-service-config-auto",
    "ingress.cloud.tencent.com/loadbalance-retain",
];

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
    pub internet_charge_type: Option<String>,
    pub internet_max_bandwidth_out: Option<u32>,
    pub extensive_parameters: Map<String, Value>,
    pub direct_access: bool,
}

/// Go's `strconv.ParseBool`, which TKE (written in Go) is assumed to use.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `<prefix>-` followed by lower-case letters and digits, as Tencent ids are.
fn is_id(v: &str, prefix: &str) -> bool {
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
    for key in UNSUPPORTED {
        if annotations.contains_key(key) {
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
        let (_, problems) = parse_one("kubernetes.io/ingress.rule-mix", "true");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, codes::UNSUPPORTED_ANNOTATION);
        assert_eq!(problems[0].severity, Severity::Warning);
    }
}
