//! Hostile and broken input for every decoder (issue 10 §2): the trigger payloads (audit
//! EventList, CLS records, core and events.k8s.io Events, timer, function-URL envelope, shard
//! events), the annotation parsers, and the request parsing of clb-sim and kube-sim.
//!
//! Inputs are proptest strategies: near-valid payloads whose every field may turn into a wrong
//! type, random bytes, truncated and deeply nested JSON, huge strings and arbitrary unicode.
//! [`run_target`] drives one target in process, counting inputs, panics and slow inputs;
//! `tests/tests/trigger/fuzz.rs` runs a small share of every target on each test run and
//! `scripts/fuzz` (the `fuzz` binary) runs at least a million inputs and writes `bench/FUZZ.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use base64::Engine as _;
use clb_ingress::handler::{
    self, Engine, HandleOptions, IngressKey, IngressLookup, IngressOutcome, IngressSummary,
    LookupError, OutcomeStatus, SweepOutcome, WebhookToken,
};
use clb_ingress::model::annotations;
use clb_ingress::shard::SHARD_EVENT_KEY;
use clb_ingress::trigger;
use futures::future::BoxFuture;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::clb_sim::client::{RawRequest, Signer};
use crate::clb_sim::{self, SimConfig, CLB_ACTIONS};
use crate::kube_sim::{self, patch, protobuf, selector, KubeSimConfig};

/// Keys the decoders look at, so random objects often take the paths real payloads take.
const KEYS: &[&str] = &[
    "kind",
    "apiVersion",
    "items",
    "auditID",
    "stage",
    "verb",
    "requestURI",
    "userAgent",
    "objectRef",
    "resource",
    "apiGroup",
    "namespace",
    "name",
    "subresource",
    "responseStatus",
    "code",
    "requestObject",
    "responseObject",
    "metadata",
    "labels",
    "kubernetes.io/service-name",
    "involvedObject",
    "regarding",
    "source",
    "component",
    "reportingController",
    "reportingComponent",
    "clslogs",
    "data",
    "records",
    "content",
    "Type",
    "httpMethod",
    "path",
    "headers",
    "body",
    "isBase64Encoded",
    "objectRef.resource",
    "objectRef.name",
    SHARD_EVENT_KEY,
    "index",
    "count",
    "generation",
];

/// Values the decoders compare against.
const WORDS: &[&str] = &[
    "ResponseComplete",
    "RequestReceived",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "get",
    "ingresses",
    "services",
    "endpoints",
    "endpointslices",
    "secrets",
    "nodes",
    "status",
    "ingressclasses",
    "networking.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "",
    "shop",
    "web",
    "web-svc-x7k2p",
    "Ingress",
    "Service",
    "Node",
    "Secret",
    "Event",
    "EventList",
    "Timer",
    "POST",
    "GET",
    "/x?dryRun=All",
    "clb-ingress/0.1",
    "kubernetes.io/service-name",
    "true",
    "false",
    "0",
    "-1",
    "18446744073709551616",
    "lb-1a2b3c4d",
    "é",
    "日本語",
    "\u{0}",
    "\u{202e}",
];

/// Text: known words, short arbitrary unicode, or printable text.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => proptest::sample::select(WORDS).prop_map(str::to_string),
        3 => chars_from(&any::<char>().boxed(), 16),
        2 => chars_from(&ascii(b"abcdefghijklmnopqrstuvwxyz0123456789.-"), 70),
        1 => chars_from(&any::<char>().boxed(), 64),
    ]
    .boxed()
}

/// Up to `max` characters drawn from `chars` (cheaper than a regex strategy, which matters
/// at a million inputs).
fn chars_from(chars: &BoxedStrategy<char>, max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(chars.clone(), 0..=max)
        .prop_map(String::from_iter)
        .boxed()
}

fn ascii(alphabet: &'static [u8]) -> BoxedStrategy<char> {
    proptest::sample::select(alphabet)
        .prop_map(char::from)
        .boxed()
}

/// Usually [`text`], now and then a string of up to a megabyte (a repeated word or a long
/// run of dotted `objectRef.` keys).
pub fn maybe_huge() -> BoxedStrategy<String> {
    prop_oneof![
        1000 => text(),
        1 => (proptest::sample::select(&["a", "é", "objectRef.", "\\\"", "{"][..]), 1usize..200_000)
            .prop_map(|(unit, n)| unit.repeat(n)),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0i64..1000).prop_map(Value::from),
    ]
    .boxed()
}

/// Any JSON value, objects keyed mostly by [`KEYS`].
pub fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let key = prop_oneof![
            4 => proptest::sample::select(KEYS).prop_map(str::to_string),
            1 => text(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
    .boxed()
}

/// A field of a near-valid payload: mostly the right shape, sometimes any other JSON, and
/// sometimes absent.
fn field(right: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        8 => right.prop_map(Some),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
    .boxed()
}

fn word_of(options: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => proptest::sample::select(options).prop_map(Value::from),
        1 => maybe_huge().prop_map(Value::from),
    ]
    .boxed()
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

/// An audit.k8s.io/v1 Event, near-valid.
pub fn audit_event() -> BoxedStrategy<Value> {
    let object_ref = (
        field(word_of(&[
            "ingresses",
            "services",
            "endpoints",
            "endpointslices",
            "secrets",
            "nodes",
            "ingressclasses",
            "pods",
        ])),
        field(word_of(&[
            "",
            "networking.k8s.io",
            "extensions",
            "discovery.k8s.io",
            "cloud.tencent.com",
        ])),
        field(word_of(&["shop", "", "kube-system"])),
        field(word_of(&[
            "web",
            "web-svc-x7k2p",
            "",
            "ab-日本語",
            "web-svc-éééé",
        ])),
        field(word_of(&["", "status", "scale"])),
    )
        .prop_map(|(r, g, ns, n, sub)| {
            object(vec![
                ("resource", r),
                ("apiGroup", g),
                ("namespace", ns),
                ("name", n),
                ("subresource", sub),
            ])
        });
    let body = field(
        (
            field(word_of(&["web", ""])),
            field(word_of(&["web-svc", ""])),
        )
            .prop_map(|(name, svc)| {
                json!({"metadata": object(vec![
                    ("name", name),
                    ("labels", svc.map(|s| json!({"kubernetes.io/service-name": s}))),
                ])})
            })
            .boxed(),
    );
    (
        field(word_of(&["ResponseComplete", "RequestReceived", "Panic"])),
        field(word_of(&[
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
            "get",
            "watch",
        ])),
        field(word_of(&[
            "kubectl/v1.30",
            "clb-ingress/0.1",
            "kube-controller-manager",
        ])),
        field(word_of(&["a1", "clb-ingress-1"])),
        field(word_of(&[
            "/apis/x",
            "/x?dryRun=All",
            "/x?dryRun=",
            "/x?a&b=c",
        ])),
        field(object_ref.boxed()),
        field(
            field(number())
                .prop_map(|c| object(vec![("code", c)]))
                .boxed(),
        ),
        (body.clone(), body),
    )
        .prop_map(|(stage, verb, ua, id, uri, obj, status, (req, resp))| {
            let mut ev = object(vec![
                ("stage", stage),
                ("verb", verb),
                ("userAgent", ua),
                ("auditID", id),
                ("requestURI", uri),
                ("objectRef", obj),
                ("responseStatus", status),
                ("requestObject", req),
                ("responseObject", resp),
            ]);
            ev["kind"] = json!("Event");
            ev["apiVersion"] = json!("audit.k8s.io/v1");
            ev
        })
        .boxed()
}

/// A core/v1 or events.k8s.io/v1 Event, near-valid.
pub fn kube_event() -> BoxedStrategy<Value> {
    let involved = (
        field(word_of(&[
            "Ingress",
            "Service",
            "Node",
            "Secret",
            "Pod",
            "EndpointSlice",
        ])),
        field(word_of(&["shop", ""])),
        field(word_of(&["web", "", "web-svc-x7k2p"])),
    )
        .prop_map(|(k, ns, n)| object(vec![("kind", k), ("namespace", ns), ("name", n)]));
    (
        any::<bool>(),
        field(involved.boxed()),
        field(word_of(&["clb-ingress", "kubelet", "some-controller"])),
        field(word_of(&["Ready", "Sync", ""])),
    )
        .prop_map(|(v1, involved, controller, reason)| {
            if v1 {
                object(vec![
                    ("apiVersion", Some(json!("events.k8s.io/v1"))),
                    ("kind", Some(json!("Event"))),
                    ("regarding", involved),
                    ("reportingController", controller),
                    ("reason", reason),
                ])
            } else {
                object(vec![
                    ("apiVersion", Some(json!("v1"))),
                    ("kind", Some(json!("Event"))),
                    ("involvedObject", involved),
                    ("source", controller.map(|c| json!({"component": c}))),
                    ("reason", reason),
                ])
            }
        })
        .boxed()
}

/// Keys of a JSON object flattened with dots, as CLS may deliver them.
fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, inner) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, inner, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The content of one CLS record: an audit event as an object, as text, with dotted keys,
/// with stringified nested fields, with a very deep dotted key, truncated, or anything.
fn cls_content() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => audit_event(),
        4 => audit_event().prop_map(|e| Value::String(e.to_string())),
        4 => audit_event().prop_map(|e| {
            let mut flat = Map::new();
            flatten("", &e, &mut flat);
            Value::Object(flat)
        }),
        4 => audit_event().prop_map(|mut e| {
            if let Some(map) = e.as_object_mut() {
                for v in map.values_mut() {
                    if v.is_object() {
                        *v = Value::String(v.to_string());
                    }
                }
            }
            e
        }),
        1 => (1usize..50_000).prop_map(|n| {
            json!({ format!("{}name", "objectRef.".repeat(n)): "web", "stage": "ResponseComplete" })
        }),
        4 => (audit_event(), any::<prop::sample::Index>()).prop_map(|(e, at)| {
            let text = e.to_string();
            Value::String(text.chars().take(at.index(text.len().max(1))).collect())
        }),
        4 => json_value(),
    ]
    .boxed()
}

fn gzip_base64(bytes: &[u8]) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(bytes);
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap_or_default())
}

/// An SCF CLS trigger event, near-valid, or with broken base64 / gzip / JSON inside.
pub fn cls_event() -> BoxedStrategy<Value> {
    let records = prop::collection::vec(
        (field(cls_content()), field(number()))
            .prop_map(|(content, ts)| object(vec![("content", content), ("timestamp", ts)])),
        0..6,
    );
    prop_oneof![
        6 => records.prop_map(|r| {
            json!({"clslogs": {"data": gzip_base64(json!({"records": r}).to_string().as_bytes())}})
        }),
        1 => json_value().prop_map(|v| json!({"clslogs": {"data": gzip_base64(v.to_string().as_bytes())}})),
        1 => json_text().prop_map(|t| json!({"clslogs": {"data": gzip_base64(&t)}})),
        1 => (json_text(), any::<prop::sample::Index>()).prop_map(|(t, at)| {
            let data = gzip_base64(&t);
            let cut = at.index(data.len().max(1));
            json!({"clslogs": {"data": data.get(..cut).unwrap_or_default()}})
        }),
        1 => json_value().prop_map(|v| json!({"clslogs": v})),
    ]
    .boxed()
}

const FIXTURES: &[&[u8]] = &[
    include_bytes!("../fixtures/triggers/audit-deletecollection.json"),
    include_bytes!("../fixtures/triggers/audit-eventlist-mixed.json"),
    include_bytes!("../fixtures/triggers/event-core-v1-exporter.json"),
    include_bytes!("../fixtures/triggers/event-events-v1-node.json"),
    include_bytes!("../fixtures/triggers/event-exporter-layout.json"),
    include_bytes!("../fixtures/triggers/event-own.json"),
    include_bytes!("../fixtures/triggers/timer.json"),
];

/// Bytes meant as JSON: valid text, truncated text, fixtures with a byte changed, inserted or
/// cut, nesting far beyond any parser's recursion limit, or random bytes.
pub fn json_text() -> BoxedStrategy<Vec<u8>> {
    let fixture = proptest::sample::select(FIXTURES);
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let mut t = v.to_string().into_bytes();
            t.truncate(at.index(t.len().max(1)));
            t
        }),
        (fixture.clone(), any::<prop::sample::Index>())
            .prop_map(|(f, at)| { f[..at.index(f.len())].to_vec() }),
        (fixture, any::<prop::sample::Index>(), any::<u8>(), 0u8..3).prop_map(
            |(f, at, byte, how)| {
                let mut t = f.to_vec();
                let i = at.index(t.len());
                match how {
                    0 => t[i] = byte,
                    1 => t.insert(i, byte),
                    _ => {
                        t.remove(i);
                    }
                }
                t
            }
        ),
        (
            1usize..200_000,
            proptest::sample::select(&["[", "{\"a\":", "{\"items\":["][..])
        )
            .prop_map(|(depth, open)| open.repeat(depth).into_bytes()),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
    .boxed()
}

/// The whole-batch shapes the decoders recognise.
pub fn trigger_event() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::collection::vec(audit_event(), 0..4).prop_map(
            |items| json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
        ),
        prop::collection::vec(prop_oneof![audit_event(), kube_event()], 0..4)
            .prop_map(Value::Array),
        audit_event(),
        kube_event(),
        prop::collection::vec(kube_event(), 0..4)
            .prop_map(|items| json!({"kind": "EventList", "items": items})),
    ]
    .boxed()
}

pub fn timer_event() -> BoxedStrategy<Value> {
    (
        field(word_of(&["Timer", "timer", "Cron"])),
        field(text().prop_map(Value::from).boxed()),
        field(text().prop_map(Value::from).boxed()),
        field(json_value()),
    )
        .prop_map(|(t, name, time, msg)| {
            object(vec![
                ("Type", t),
                ("TriggerName", name),
                ("Time", time),
                ("Message", msg),
            ])
        })
        .boxed()
}

pub fn shard_event() -> BoxedStrategy<Value> {
    let spec = (
        field(number()),
        field(number()),
        field(maybe_huge().prop_map(Value::from).boxed()),
    )
        .prop_map(|(i, c, g)| object(vec![("index", i), ("count", c), ("generation", g)]));
    field(spec.boxed())
        .prop_map(|spec| json!({ SHARD_EVENT_KEY: spec.unwrap_or(Value::Null) }))
        .boxed()
}

/// The bearer token the fuzzed front door accepts.
const TOKEN: &str = "fuzz-token";

/// A function-URL (or API gateway) event: method, path, headers and body each near-valid or
/// wrong, the body a payload, its text, or base64 of it.
pub fn envelope_event() -> BoxedStrategy<Value> {
    let auth = field(word_of(&[
        "Bearer fuzz-token",
        "bearer fuzz-token ",
        "Bearer fuzz",
        "Basic fuzz-token",
        "",
    ]));
    let headers = (
        auth,
        field(word_of(&["application/json", "text/plain"])),
        field(number()),
    )
        .prop_map(|(a, ct, len)| {
            object(vec![
                ("authorization", a),
                ("content-type", ct),
                ("content-length", len.map(|l| Value::String(l.to_string()))),
            ])
        });
    let body = prop_oneof![
        trigger_event().prop_map(|v| Value::String(v.to_string())),
        timer_event().prop_map(|v| Value::String(v.to_string())),
        json_text().prop_map(|t| Value::String(String::from_utf8_lossy(&t).into_owned())),
        json_value(),
    ];
    (
        field(word_of(&["POST", "GET", "post", "PUT"])),
        field(word_of(&[
            "/v1/audit",
            "/v1/events",
            "/v1/timer",
            "/v1/invoke",
            "/healthz",
            "/",
            "/v1/../x",
        ])),
        field(headers.boxed()),
        field(body.boxed()),
        field(any::<bool>().prop_map(Value::Bool).boxed()),
    )
        .prop_map(|(method, path, headers, body, b64)| {
            let encode = b64 == Some(Value::Bool(true));
            let body = match body {
                Some(Value::String(s)) if encode => Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(s),
                )),
                other => other,
            };
            object(vec![
                ("httpMethod", method),
                ("path", path),
                ("headers", headers),
                ("body", body),
                ("isBase64Encoded", b64),
                ("queryString", Some(json!({}))),
            ])
        })
        .boxed()
}

/// Annotation maps: every supported and unsupported key, with values of the right kind,
/// wrong kinds, JSON rule lists (valid or broken) and hostile text.
pub fn annotation_map() -> BoxedStrategy<BTreeMap<String, String>> {
    let mut keys: Vec<&'static str> = vec![
        annotations::EXIST_LB_ID,
        annotations::SUBNET_ID,
        annotations::INTERNET_CHARGE_TYPE,
        annotations::INTERNET_MAX_BANDWIDTH_OUT,
        annotations::EXTENSIVE_PARAMETERS,
        annotations::DIRECT_ACCESS,
        annotations::CROSS_VPC_ID,
        annotations::RULE_MIX,
        annotations::HTTP_RULES,
        annotations::HTTPS_RULES,
        "kubernetes.io/ingress.class",
    ];
    keys.extend(annotations::UNSUPPORTED);
    let rule = (
        field(text().prop_map(Value::from).boxed()),
        field(word_of(&["/", "/api", "", "/a/../b", "/*"])),
        field(
            (field(text().prop_map(Value::from).boxed()), field(number()))
                .prop_map(|(n, p)| object(vec![("serviceName", n), ("servicePort", p)]))
                .boxed(),
        ),
        field(json_value()),
    )
        .prop_map(|(host, path, backend, rewrite)| {
            object(vec![
                ("host", host),
                ("path", path),
                ("backend", backend),
                ("rewrite", rewrite),
            ])
        });
    let value = prop_oneof![
        4 => text(),
        2 => prop::collection::vec(rule, 0..5).prop_map(|r| Value::Array(r).to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        2 => proptest::sample::select(&[
            "lb-1a2b3c4d", "subnet-1a2b3c4d", "vpc-1a2b3c4d", "lb-", "TRAFFIC_POSTPAID_BY_HOUR",
            "BANDWIDTH_POSTPAID_BY_HOUR", "1", "2048", "2049", "0", "-5", "1e3", "true", "True",
            "qcloud", "nginx",
        ][..]).prop_map(str::to_string),
        1 => maybe_huge(),
    ];
    let key = prop_oneof![
        6 => proptest::sample::select(keys).prop_map(str::to_string),
        1 => text(),
    ];
    prop::collection::btree_map(key, value, 0..8).boxed()
}

/// Parameter names of the CLB, Tag and SCF actions, so random bodies reach the handlers.
const CLB_PARAMS: &[&str] = &[
    "LoadBalancerId",
    "LoadBalancerIds",
    "LoadBalancerType",
    "LoadBalancerName",
    "ListenerId",
    "ListenerIds",
    "ListenerNames",
    "Ports",
    "Port",
    "Protocol",
    "Certificate",
    "SslMode",
    "CertId",
    "CertCaId",
    "SniSwitch",
    "Rules",
    "Domain",
    "NewDomain",
    "Url",
    "LocationId",
    "LocationIds",
    "Targets",
    "InstanceId",
    "EniIp",
    "Weight",
    "Tags",
    "TagKey",
    "TagValue",
    "Filters",
    "Name",
    "Values",
    "Offset",
    "Limit",
    "ClientToken",
    "VpcId",
    "SubnetId",
    "ResourceList",
    "TagFilters",
    "ResourcePrefix",
    "ServiceType",
    "TagKeys",
    "FunctionName",
    "InvocationType",
    "ClientContext",
    "Namespace",
    "HealthCheck",
    "DefaultServer",
];

/// Ids the target replaces with ids the emulator handed out earlier (so calls reach objects
/// that exist).
const ID_SLOTS: &[&str] = &["$ID0", "$ID1", "$ID2", "$ID3"];

fn clb_params() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        3 => json_value(),
        3 => proptest::sample::select(ID_SLOTS).prop_map(Value::from),
        2 => prop::collection::vec(proptest::sample::select(ID_SLOTS).prop_map(Value::from), 0..3)
            .prop_map(Value::Array),
        2 => proptest::sample::select(&["HTTP", "HTTPS", "TCP", "OPEN", "INTERNAL", "UNIDIRECTIONAL"][..])
            .prop_map(Value::from),
        2 => (0i64..70000).prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(CLB_PARAMS), inner), 0..5).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    });
    prop::collection::vec(
        (
            prop_oneof![
                8 => proptest::sample::select(CLB_PARAMS).prop_map(str::to_string),
                1 => text(),
            ],
            value,
        ),
        0..7,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    .boxed()
}

/// One signed call to clb-sim: service, action and parameters.
pub fn clb_call() -> BoxedStrategy<(String, String, Value)> {
    let mut actions: Vec<&'static str> = CLB_ACTIONS.to_vec();
    actions.extend([
        "TagResources",
        "UnTagResources",
        "GetResources",
        "DescribeResourcesByTags",
        "Invoke",
    ]);
    (
        proptest::sample::select(&["clb", "clb", "clb", "tag", "scf", "cvm"][..]),
        prop_oneof![
            9 => proptest::sample::select(actions).prop_map(str::to_string),
            1 => text(),
        ],
        clb_params(),
    )
        .prop_map(|(svc, action, params)| (svc.to_string(), action, params))
        .boxed()
}

/// Replaces `$IDn` strings with ids seen in earlier responses.
fn fill_ids(v: &mut Value, ids: &[String]) {
    match v {
        Value::String(s) => {
            if let Some(n) = ID_SLOTS.iter().position(|slot| slot == s) {
                if let Some(id) = ids.get(n % ids.len().max(1)) {
                    *s = id.clone();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| fill_ids(i, ids)),
        Value::Object(map) => map.values_mut().for_each(|i| fill_ids(i, ids)),
        _ => {}
    }
}

/// Ids of CLB objects in a response (`lb-…`, `lbl-…`, `loc-…`), newest last.
fn collect_ids(v: &Value, ids: &mut Vec<String>) {
    match v {
        Value::String(s)
            if ["lb-", "lbl-", "loc-"].iter().any(|p| s.starts_with(p))
                && s.len() < 40
                && !ids.contains(s) =>
        {
            ids.push(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|i| collect_ids(i, ids)),
        Value::Object(map) => map.values().for_each(|i| collect_ids(i, ids)),
        _ => {}
    }
}

/// A raw request: any method, any header values, any body.
/// Method, headers, body.
pub type RawHttp = (String, Vec<(String, String)>, Vec<u8>);

pub fn raw_request() -> BoxedStrategy<RawHttp> {
    let header_name = proptest::sample::select(
        &[
            "authorization",
            "x-tc-action",
            "x-tc-version",
            "x-tc-timestamp",
            "x-tc-region",
            "content-type",
            "host",
            "x-tc-token",
        ][..],
    )
    .prop_map(str::to_string);
    (
        proptest::sample::select(&["POST", "GET", "PUT", "DELETE", "OPTIONS"][..]),
        prop::collection::vec(
            (
                header_name,
                prop_oneof![
                    text(),
                    Just("TC3-HMAC-SHA256 Credential=AKIDTEST/2020-01-01/clb/tc3_request, SignedHeaders=content-type;host, Signature=00".to_string()),
                    chars_from(&(0x20u8..0x7f).prop_map(char::from).boxed(), 120)
                        .prop_map(|s| format!("TC3-HMAC-SHA256 {s}")),
                ],
            ),
            0..7,
        ),
        json_text(),
    )
        .prop_map(|(m, h, b)| (m.to_string(), h, b))
        .boxed()
}

/// One kube-sim request: method, path, query, content type and body.
pub fn kube_request() -> BoxedStrategy<(String, String, String, Vec<u8>)> {
    let group = proptest::sample::select(
        &[
            "/api/v1",
            "/apis/networking.k8s.io/v1",
            "/apis/discovery.k8s.io/v1",
            "/apis/coordination.k8s.io/v1",
            "/apis/events.k8s.io/v1",
            "/apis/rbac.authorization.k8s.io/v1",
            "/apis",
            "/api",
            "/openapi/v2",
            "/version",
        ][..],
    );
    let resource = proptest::sample::select(
        &[
            "ingresses",
            "services",
            "nodes",
            "secrets",
            "endpointslices",
            "leases",
            "events",
            "ingressclasses",
            "namespaces",
            "pods",
            "",
        ][..],
    );
    let segment = prop_oneof![
        4 => proptest::sample::select(&["web", "shop", "default", "status", "x"][..]).prop_map(str::to_string),
        1 => chars_from(&ascii(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~%-"), 40),
    ];
    let path = (
        group,
        any::<bool>(),
        segment.clone(),
        resource,
        prop::option::of(segment.clone()),
        prop::option::of(segment),
    )
        .prop_map(|(g, namespaced, ns, r, name, sub)| {
            let mut p = g.to_string();
            if namespaced {
                p.push_str(&format!("/namespaces/{ns}"));
            }
            if !r.is_empty() {
                p.push('/');
                p.push_str(r);
            }
            for s in [name, sub].into_iter().flatten() {
                p.push('/');
                p.push_str(&s);
            }
            p
        });
    let query_value = prop_oneof![
        text(),
        proptest::sample::select(
            &[
                "app=web",
                "app in (a,b)",
                "!app",
                "a!=b,c",
                "metadata.name=web",
                "spec.nodeName!=x",
                "All",
                "0",
                "-1",
                "abc",
                "a==b",
                "x notin ()",
            ][..]
        )
        .prop_map(str::to_string),
    ];
    let query = prop::collection::vec(
        (
            proptest::sample::select(
                &[
                    "labelSelector",
                    "fieldSelector",
                    "resourceVersion",
                    "resourceVersionMatch",
                    "limit",
                    "continue",
                    "dryRun",
                    "fieldManager",
                    "force",
                    "propagationPolicy",
                    "gracePeriodSeconds",
                ][..],
            ),
            query_value,
        ),
        0..4,
    )
    .prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(&v)))
            .collect::<Vec<_>>()
            .join("&")
    });
    let content_type = proptest::sample::select(
        &[
            "application/json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json-patch+json",
            "application/apply-patch+yaml",
            "application/vnd.kubernetes.protobuf",
            "text/plain",
            "",
        ][..],
    );
    let object = (
        field(word_of(&[
            "v1",
            "networking.k8s.io/v1",
            "coordination.k8s.io/v1",
        ])),
        field(word_of(&[
            "Ingress", "Service", "Lease", "Event", "Secret", "Node",
        ])),
        field(
            (
                field(word_of(&["web", "", "a.b", "UPPER"])),
                field(word_of(&["shop", ""])),
                field(json_value()),
                field(json_value()),
                field(json_value()),
            )
                .prop_map(|(n, ns, labels, annotations, rv)| {
                    object(vec![
                        ("name", n),
                        ("namespace", ns),
                        ("labels", labels),
                        ("annotations", annotations),
                        ("resourceVersion", rv),
                    ])
                })
                .boxed(),
        ),
        field(json_value()),
        field(json_value()),
    )
        .prop_map(|(v, k, m, spec, status)| {
            object(vec![
                ("apiVersion", v),
                ("kind", k),
                ("metadata", m),
                ("spec", spec),
                ("status", status),
            ])
            .to_string()
            .into_bytes()
        });
    let body = prop_oneof![
        3 => object,
        1 => json_text(),
        1 => prop::collection::vec(json_value(), 0..4).prop_map(|ops| Value::Array(ops).to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(|mut b| {
            let mut framed = b"k8s\0".to_vec();
            framed.append(&mut b);
            framed
        }),
    ];
    (
        proptest::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"][..]),
        path,
        query,
        content_type,
        body,
    )
        .prop_map(|(m, p, q, ct, b)| {
            let uri = if q.is_empty() { p } else { format!("{p}?{q}") };
            (m.to_string(), uri, ct.to_string(), b)
        })
        .boxed()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An engine that reconciles nothing: the envelope target exercises the front door and
/// decoders, not the cloud.
struct NullEngine;

impl IngressLookup for NullEngine {
    fn ingresses(
        &self,
        _namespace: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<IngressSummary>, LookupError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

impl Engine for NullEngine {
    fn reconcile(
        &self,
        _key: IngressKey,
        _deadline: tokio::time::Instant,
    ) -> BoxFuture<'_, IngressOutcome> {
        Box::pin(async { IngressOutcome::new(OutcomeStatus::Converged) })
    }

    fn sweep(&self, _deadline: tokio::time::Instant) -> BoxFuture<'_, SweepOutcome> {
        Box::pin(async { SweepOutcome::default() })
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("a fuzz target needs a tokio runtime: {e}"),
    }
}

/// Inputs a simulator serves before it is replaced by a fresh one (its state stays small).
const SIM_LIFETIME: u64 = 2_000;

type Step = Box<dyn FnMut(&mut TestRunner, bool)>;

/// One fuzz target: a generator and what is done with each input.
pub struct Target {
    pub name: &'static str,
    /// Share of the total inputs (per mille).
    pub share: u32,
    /// Generates one input from the runner and feeds it; a panic is a finding. `fresh` asks
    /// for new state (after a panic, or periodically for the simulators).
    step: Step,
}

fn target<S>(
    name: &'static str,
    share: u32,
    strategy: S,
    mut check: impl FnMut(S::Value, bool) + 'static,
) -> Target
where
    S: Strategy + 'static,
{
    Target {
        name,
        share,
        step: Box::new(move |runner, fresh| {
            // A strategy that rejects too often gives no input; nothing to feed then.
            if let Ok(tree) = strategy.new_tree(runner) {
                check(tree.current(), fresh);
            }
        }),
    }
}

/// Every target, with its share of a run (the shares add up to 1000).
pub fn targets() -> Vec<Target> {
    vec![
        target("trigger: any JSON value", 200, json_value(), |v, _| {
            let _ = trigger::decode(&v);
        }),
        target(
            "trigger: bytes (truncated, mutated, nested, random)",
            250,
            json_text(),
            |b, _| {
                let _ = trigger::decode_bytes(&b);
            },
        ),
        target(
            "trigger: audit EventList and Event lists",
            60,
            trigger_event(),
            |v, _| {
                let _ = trigger::decode(&v);
            },
        ),
        target("trigger: CLS records", 40, cls_event(), |v, _| {
            let _ = trigger::decode(&v);
        }),
        target(
            "trigger: core and events.k8s.io Events",
            100,
            kube_event(),
            |v, _| {
                let _ = trigger::decode(&v);
            },
        ),
        target("trigger: timer", 60, timer_event(), |v, _| {
            let _ = trigger::decode(&v);
        }),
        target("trigger: shard", 60, shard_event(), |v, _| {
            let _ = trigger::decode(&v);
        }),
        envelope_target(),
        target("annotations: parse", 50, annotation_map(), |m, _| {
            let _ = annotations::parse(&m);
        }),
        clb_sim_signed_target(),
        clb_sim_raw_target(),
        kube_sim_target(),
        target(
            "kube-sim: selectors, patches, protobuf",
            20,
            (text(), json_value(), json_value(), json_text()),
            |(sel, doc, p, bytes), _| {
                let _ = selector::LabelSelector::parse(&sel);
                let _ = selector::FieldSelector::parse(&sel, "pods");
                let _ = patch::PatchKind::from_content_type(&sel);
                let _ = protobuf::decode(&bytes);
                let _ = patch::parse_apply_body(&bytes);
                let mut d = doc.clone();
                let _ = patch::apply_merge_patch(&mut d, &p);
                let mut d = doc.clone();
                let _ = patch::apply_json_patch(&mut d, &p);
                let mut d = doc;
                let _ = patch::apply_strategic_patch(&mut d, &p, "ingresses");
            },
        ),
    ]
}

fn envelope_target() -> Target {
    let rt = current_thread();
    let engine: Arc<dyn Engine> = Arc::new(NullEngine);
    target(
        "trigger: function-URL envelope through the handler",
        40,
        envelope_event(),
        move |v, _| {
            let opts = HandleOptions::new(
                tokio::time::Instant::now() + Duration::from_secs(30),
                WebhookToken::new(TOKEN),
            );
            let _ = rt.block_on(handler::handle(Arc::clone(&engine), &v, &opts));
        },
    )
}

fn sim_config() -> SimConfig {
    SimConfig::default()
}

fn clb_sim_signed_target() -> Target {
    let rt = current_thread();
    let cfg = sim_config();
    let mut router = clb_sim::router_in_process(cfg.clone());
    let mut ids: Vec<String> = Vec::new();
    let mut served = 0u64;
    target(
        "clb-sim: signed calls with random parameters",
        40,
        clb_call(),
        move |(service, action, mut params), fresh| {
            if fresh || served >= SIM_LIFETIME {
                router = clb_sim::router_in_process(cfg.clone());
                ids.clear();
                served = 0;
            }
            served += 1;
            fill_ids(&mut params, &ids);
            let mut req = RawRequest::clb(&action, &params);
            req.service = service;
            let signer = Signer {
                host: "127.0.0.1:1",
                secret_id: &cfg.secret_id,
                secret_key: &cfg.secret_key,
                region: &cfg.region,
            };
            let mut builder = http::Request::builder().method("POST").uri("/");
            for (name, value) in signer.headers(&req) {
                builder = builder.header(name, value);
            }
            let Ok(request) = builder.body(Body::from(req.body.clone())) else {
                return;
            };
            let body = rt.block_on(async {
                let resp = router.clone().oneshot(request).await.ok()?;
                axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .ok()
            });
            if let Some(v) = body.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                collect_ids(&v, &mut ids);
            }
        },
    )
}

fn clb_sim_raw_target() -> Target {
    let rt = current_thread();
    let router = clb_sim::router_in_process(sim_config());
    target(
        "clb-sim: raw requests (any method, headers, body)",
        50,
        raw_request(),
        move |(method, headers, body), _| {
            let mut builder = http::Request::builder().method(method.as_str()).uri("/");
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            let Ok(request) = builder.body(Body::from(body)) else {
                return;
            };
            rt.block_on(async {
                let Ok(resp) = router.clone().oneshot(request).await;
                let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
            });
        },
    )
}

fn kube_sim_target() -> Target {
    let rt = current_thread();
    let addr = SocketAddr::from(([127, 0, 0, 1], 6443));
    let cfg = KubeSimConfig::default();
    let (mut router, mut token) = kube_sim::router_in_process(&cfg, addr);
    let mut served = 0u64;
    target(
        "kube-sim: requests (paths, selectors, patch types, bodies)",
        30,
        (kube_request(), 0u8..10),
        move |((method, uri, ct, body), auth), fresh| {
            if fresh || served >= SIM_LIFETIME {
                (router, token) = kube_sim::router_in_process(&cfg, addr);
                served = 0;
            }
            served += 1;
            let mut builder = http::Request::builder()
                .method(method.as_str())
                .uri(uri.as_str());
            if auth > 0 {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            if !ct.is_empty() {
                builder = builder.header("content-type", ct);
            }
            let Ok(mut request) = builder.body(Body::from(body)) else {
                return;
            };
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(addr));
            rt.block_on(async {
                // A watch answers with a stream that never ends: only its head is awaited.
                let is_watch = uri.contains("watch");
                let Ok(resp) = router.clone().oneshot(request).await;
                if !is_watch {
                    let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                }
            });
        },
    )
}

/// What one target's run found.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    pub name: &'static str,
    pub inputs: u64,
    pub panics: u64,
    /// Inputs that took longer than the hang threshold.
    pub hangs: u64,
    pub slowest: Duration,
    pub elapsed: Duration,
    /// The first panic's message, to reproduce from.
    pub first_panic: Option<String>,
}

/// Runs `inputs` inputs of `target` from `seed`. Panics are caught and counted (the panic
/// hook is the caller's: [`quiet_panics`] keeps a million of them off the terminal).
pub fn run_target(target: &mut Target, inputs: u64, seed: u64, hang: Duration) -> Findings {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let mut found = Findings {
        name: target.name,
        ..Findings::default()
    };
    let started = Instant::now();
    let mut fresh = false;
    for _ in 0..inputs {
        let t0 = Instant::now();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| (target.step)(&mut runner, fresh)));
        let took = t0.elapsed();
        found.inputs += 1;
        found.slowest = found.slowest.max(took);
        if took > hang {
            found.hangs += 1;
        }
        fresh = outcome.is_err();
        if let Err(payload) = outcome {
            found.panics += 1;
            if found.first_panic.is_none() {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                found.first_panic = Some(msg);
            }
        }
    }
    found.elapsed = started.elapsed();
    found
}

/// Replaces the panic hook with one that prints only where the first few panics happened.
pub fn quiet_panics() {
    let printed = std::sync::atomic::AtomicUsize::new(0);
    std::panic::set_hook(Box::new(move |info| {
        if printed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
            eprintln!("fuzz: panic at {:?}", info.location());
        }
    }));
}
