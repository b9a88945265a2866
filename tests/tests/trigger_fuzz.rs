//! Outside input never panics the decoder: arbitrary JSON built from the keys the decoders
//! look at, and arbitrary bytes, decode to a result or an error.

use clb_ingress::trigger::{decode, decode_bytes, Payload};
use proptest::prelude::*;
use serde_json::{Map, Value};

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
    "clslogs",
    "data",
    "records",
    "content",
    "Type",
    "httpMethod",
    "headers",
    "body",
    "isBase64Encoded",
    "objectRef.resource",
    "objectRef.name",
];

const WORDS: &[&str] = &[
    "ResponseComplete",
    "RequestReceived",
    "update",
    "delete",
    "deletecollection",
    "get",
    "ingresses",
    "services",
    "endpointslices",
    "secrets",
    "nodes",
    "ingressclasses",
    "networking.k8s.io",
    "discovery.k8s.io",
    "",
    "shop",
    "web",
    "web-svc-x7k2p",
    "Ingress",
    "Service",
    "Node",
    "Timer",
    "EventList",
    "POST",
    "/x?dryRun=All",
    "clb-ingress/0.1",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_json_decodes_or_errors_without_panicking(v in json()) {
        if let Ok(Payload::Decoded(d)) = decode(&v) {
            let skipped: usize = d.skipped.values().sum();
            prop_assert!(d.changes.len() + skipped <= d.items.max(1));
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_error_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_bytes(&bytes);
    }
}
