//! Decoders on payloads of the real formats: what each item means, what is skipped, and why.

use std::collections::BTreeMap;

use crate::support::{cls_event, fixture, fixture_bytes, function_url_event};
use clb_ingress::trigger::{
    decode, decode_bytes, Change, DecodeError, Decoded, IngressKey, Payload, SkipReason, Source,
};
use serde_json::{json, Value};

fn decoded(v: &Value) -> Decoded {
    match decode(v).unwrap() {
        Payload::Decoded(d) => d,
        Payload::Http(h) => panic!("unexpected envelope {h:?}"),
    }
}

fn ingress(ns: &str, name: &str) -> Change {
    Change::Ingress(IngressKey::new(ns, name))
}

fn service(ns: &str, name: &str) -> Change {
    Change::Service {
        namespace: ns.into(),
        name: name.into(),
    }
}

fn skipped(pairs: &[(SkipReason, usize)]) -> BTreeMap<SkipReason, usize> {
    pairs.iter().copied().collect()
}

#[test]
fn audit_batch_mixing_resources_yields_one_change_per_affected_object() {
    let d = decoded(&fixture("audit-eventlist-mixed.json"));
    assert_eq!(d.source, Source::Audit);
    assert_eq!(d.items, 14);
    let changes: Vec<Change> = d.changes.into_iter().collect();
    assert_eq!(
        changes,
        vec![
            ingress("blog", "site"),
            ingress("shop", "web"),
            service("shop", "api-svc"),
            Change::Secret {
                namespace: "shop".into(),
                name: "web-tls".into()
            },
            Change::Nodes,
        ]
    );
    assert_eq!(
        d.skipped,
        skipped(&[
            (SkipReason::Incomplete, 1),
            (SkipReason::Failed, 1),
            (SkipReason::DryRun, 1),
            (SkipReason::Read, 2),
            (SkipReason::Own, 1),
            (SkipReason::Unrelated, 2),
        ])
    );
}

#[test]
fn audit_batch_in_any_order_decodes_to_the_same_changes() {
    let original = fixture("audit-eventlist-mixed.json");
    let mut reversed = original.clone();
    reversed["items"].as_array_mut().unwrap().reverse();
    let mut rotated = original.clone();
    rotated["items"].as_array_mut().unwrap().rotate_left(5);
    let a = decoded(&original);
    assert_eq!(a, decoded(&reversed));
    assert_eq!(a, decoded(&rotated));
}

#[test]
fn audit_batch_resent_twice_in_one_list_deduplicates() {
    let one = fixture("audit-eventlist-mixed.json");
    let mut twice = one.clone();
    let items = one["items"].as_array().unwrap().clone();
    twice["items"].as_array_mut().unwrap().extend(items);
    let (a, b) = (decoded(&one), decoded(&twice));
    assert_eq!(b.items, 2 * a.items);
    assert_eq!(a.changes, b.changes);
}

#[test]
fn audit_items_without_kind_and_a_bare_array_are_both_accepted() {
    let list = fixture("audit-eventlist-mixed.json");
    let array = list["items"].clone();
    let d = decoded(&array);
    assert_eq!(d.source, Source::Audit);
    assert_eq!(d.changes, decoded(&list).changes);
}

#[test]
fn a_single_audit_event_decodes_like_a_one_item_list() {
    let item = fixture("audit-eventlist-mixed.json")["items"][12].clone();
    let d = decoded(&item);
    assert_eq!(d.items, 1);
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![ingress("blog", "site")]
    );
}

#[test]
fn deletecollection_without_a_name_means_the_whole_namespace_and_ingressclass_means_sweep() {
    let d = decoded(&fixture("audit-deletecollection.json"));
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![
            Change::Namespace {
                namespace: "staging".into()
            },
            Change::Sweep
        ]
    );
}

#[test]
fn our_own_writes_are_skipped_by_user_agent_and_by_audit_id() {
    let base = json!({
        "auditID": "0000", "stage": "ResponseComplete", "verb": "patch",
        "requestURI": "/apis/networking.k8s.io/v1/namespaces/a/ingresses/b",
        "userAgent": "kubectl/v1.30",
        "objectRef": {"resource": "ingresses", "apiGroup": "networking.k8s.io", "namespace": "a", "name": "b"},
        "responseStatus": {"code": 200}
    });
    let mut by_agent = base.clone();
    by_agent["userAgent"] = json!(clb_ingress::identity::user_agent());
    let mut by_id = base.clone();
    by_id["auditID"] = json!(format!("{}42", clb_ingress::identity::AUDIT_ID_PREFIX));
    for own in [by_agent, by_id] {
        let d = decoded(&own);
        assert!(d.changes.is_empty());
        assert_eq!(d.skipped, skipped(&[(SkipReason::Own, 1)]));
    }
    assert_eq!(decoded(&base).changes.len(), 1);
}

#[test]
fn truncated_and_garbage_items_are_counted_without_failing_the_batch() {
    let good = fixture("audit-eventlist-mixed.json")["items"][12].clone();
    let list = json!({"kind": "EventList", "items": [
        42,
        {"auditID": "x", "stage": "ResponseComplete"},
        {"auditID": "y", "stage": "ResponseComplete", "verb": "update", "objectRef": "not-an-object"},
        {"hello": "world"},
        good
    ]});
    let d = decoded(&list);
    assert_eq!(d.items, 5);
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![ingress("blog", "site")]
    );
    assert_eq!(d.skipped, skipped(&[(SkipReason::Malformed, 4)]));
}

#[test]
fn cluster_scoped_objects_map_without_a_namespace() {
    let node = json!({
        "auditID": "n", "stage": "ResponseComplete", "verb": "update",
        "requestURI": "/api/v1/nodes/10.0.1.7/status",
        "objectRef": {"resource": "nodes", "name": "10.0.1.7", "subresource": "status", "apiVersion": "v1"},
        "responseStatus": {"code": 200}
    });
    assert_eq!(
        decoded(&node).changes.into_iter().collect::<Vec<_>>(),
        vec![Change::Nodes]
    );
    let class = json!({
        "auditID": "c", "stage": "ResponseComplete", "verb": "delete",
        "requestURI": "/apis/networking.k8s.io/v1/ingressclasses/qcloud",
        "objectRef": {"resource": "ingressclasses", "name": "qcloud", "apiGroup": "networking.k8s.io"},
        "responseStatus": {"code": 200}
    });
    assert_eq!(
        decoded(&class).changes.into_iter().collect::<Vec<_>>(),
        vec![Change::Sweep]
    );
}

#[test]
fn legacy_extensions_group_ingress_is_still_an_ingress() {
    let ev = json!({
        "auditID": "l", "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/extensions/v1beta1/namespaces/old/ingresses",
        "objectRef": {"resource": "ingresses", "apiGroup": "extensions", "apiVersion": "v1beta1", "namespace": "old", "name": "legacy"},
        "responseStatus": {"code": 201}
    });
    assert_eq!(
        decoded(&ev).changes.into_iter().collect::<Vec<_>>(),
        vec![ingress("old", "legacy")]
    );
}

#[test]
fn core_v1_event_from_the_exporter_maps_to_its_ingress() {
    let d = decoded(&fixture("event-core-v1-exporter.json"));
    assert_eq!(d.source, Source::Event);
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![ingress("shop", "web")]
    );
}

#[test]
fn events_v1_node_event_in_default_namespace_maps_to_all_node_port_ingresses() {
    let d = decoded(&fixture("event-events-v1-node.json"));
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![Change::Nodes]
    );
}

#[test]
fn exporter_layout_event_maps_by_its_flat_fields() {
    let d = decoded(&fixture("event-exporter-layout.json"));
    assert_eq!(d.source, Source::Event);
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![service("shop", "web-svc")]
    );
}

#[test]
fn events_we_emitted_are_skipped() {
    let d = decoded(&fixture("event-own.json"));
    assert!(d.changes.is_empty());
    assert_eq!(d.skipped, skipped(&[(SkipReason::Own, 1)]));
    let mut legacy = fixture("event-core-v1-exporter.json");
    legacy["source"]["component"] = json!(clb_ingress::identity::REPORTING_CONTROLLER);
    assert_eq!(decoded(&legacy).skipped, skipped(&[(SkipReason::Own, 1)]));
}

#[test]
fn events_about_unrelated_kinds_are_skipped() {
    let mut pod = fixture("event-core-v1-exporter.json");
    pod["involvedObject"]["kind"] = json!("Pod");
    let d = decoded(&pod);
    assert!(d.changes.is_empty());
    assert_eq!(d.skipped, skipped(&[(SkipReason::Unrelated, 1)]));
}

#[test]
fn timer_event_is_a_sweep() {
    let d = decoded(&fixture("timer.json"));
    assert_eq!(d.source, Source::Timer);
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![Change::Sweep]
    );
}

#[test]
fn cls_records_holding_audit_events_decode_per_record() {
    let items = fixture("audit-eventlist-mixed.json")["items"].clone();
    let contents: Vec<Value> = items.as_array().unwrap().clone();
    let d = decoded(&cls_event(&contents));
    assert_eq!(d.source, Source::Cls);
    assert_eq!(d.items, 14);
    assert_eq!(
        d.changes,
        decoded(&fixture("audit-eventlist-mixed.json")).changes
    );
}

#[test]
fn cls_records_with_stringified_or_dotted_nested_fields_are_normalised() {
    let stringified = json!({
        "auditID": "s1", "stage": "ResponseComplete", "verb": "update",
        "requestURI": "/api/v1/namespaces/shop/services/web-svc",
        "objectRef": "{\"resource\":\"services\",\"namespace\":\"shop\",\"name\":\"web-svc\",\"apiVersion\":\"v1\"}",
        "responseStatus": "{\"code\":200}"
    });
    let dotted = json!({
        "auditID": "s2", "stage": "ResponseComplete", "verb": "delete",
        "requestURI": "/apis/networking.k8s.io/v1/namespaces/blog/ingresses/site",
        "objectRef.resource": "ingresses", "objectRef.apiGroup": "networking.k8s.io",
        "objectRef.namespace": "blog", "objectRef.name": "site",
        "responseStatus.code": 200
    });
    let failed_dotted = json!({
        "auditID": "s3", "stage": "ResponseComplete", "verb": "delete",
        "requestURI": "/apis/networking.k8s.io/v1/namespaces/blog/ingresses/gone",
        "objectRef.resource": "ingresses", "objectRef.apiGroup": "networking.k8s.io",
        "objectRef.namespace": "blog", "objectRef.name": "gone",
        "responseStatus.code": 404
    });
    let d = decoded(&cls_event(&[
        stringified,
        dotted,
        failed_dotted,
        json!("not json at all"),
    ]));
    assert_eq!(
        d.changes.into_iter().collect::<Vec<_>>(),
        vec![ingress("blog", "site"), service("shop", "web-svc")]
    );
    assert_eq!(
        d.skipped,
        skipped(&[(SkipReason::Failed, 1), (SkipReason::Malformed, 1)])
    );
}

#[test]
fn cls_payload_that_is_not_base64_gzip_is_an_error() {
    for bad in [
        json!({"clslogs": {"data": "%%%"}}),
        json!({"clslogs": {"data": "aGVsbG8="}}),
        json!({"clslogs": {}}),
    ] {
        assert!(matches!(decode(&bad), Err(DecodeError::Cls(_))), "{bad}");
    }
}

#[test]
fn function_url_envelope_is_recognised_and_keeps_its_body() {
    let body = fixture("timer.json").to_string();
    let ev = function_url_event("post", "/v1/timer", Some("Bearer t"), &body);
    match decode(&ev).unwrap() {
        Payload::Http(h) => {
            assert_eq!(h.method, "POST");
            assert_eq!(h.header("Authorization"), Some("Bearer t"));
            assert_eq!(h.body, body.as_bytes());
            assert!(!format!("{h:?}").contains("Bearer t"));
        }
        Payload::Decoded(d) => panic!("decoded as {d:?}"),
    }
}

#[test]
fn unrecognised_and_non_json_payloads_are_errors() {
    assert!(matches!(
        decode_bytes(b"{not json"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        decode(&json!({"foo": 1})),
        Err(DecodeError::Unrecognised(_))
    ));
    assert!(matches!(
        decode(&json!("text")),
        Err(DecodeError::Unrecognised(_))
    ));
    assert!(matches!(
        decode(&json!({"items": 3})),
        Err(DecodeError::Unrecognised(_))
    ));
    assert!(decode_bytes(&fixture_bytes("timer.json")).is_ok());
}

#[test]
fn ingress_key_parses_only_namespace_slash_name() {
    assert_eq!(
        "a/b".parse::<IngressKey>().unwrap(),
        IngressKey::new("a", "b")
    );
    assert_eq!(IngressKey::new("a", "b").to_string(), "a/b");
    for bad in ["a", "/b", "a/", "a/b/c", ""] {
        assert!(bad.parse::<IngressKey>().is_err(), "{bad}");
    }
}
