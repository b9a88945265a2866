use serde_json::json;

use super::*;
use crate::model::desired::tests::{base_view, ingress, manage, path, secret};
use crate::model::{desire, Decision, Desired, Severity};

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tls_ingress(ann: serde_json::Value) -> crate::model::ClusterView {
    let mut v = base_view(ingress(
        ann,
        json!({"tls": [{"secretName": "cert"}], "rules": [
            {"host": "a.com", "http": {"paths": [path("/", "ImplementationSpecific", "web", json!({"number": 80}))]}},
            {"host": "b.com", "http": {"paths": [path("/api", "ImplementationSpecific", "api", json!({"number": 8080}))]}},
        ]}),
    ));
    v.secrets = [secret("cert", json!({"qcloud_cert_id": "cert-1"}))].into();
    v
}

fn key(host: &str, url: &str) -> RuleKey {
    RuleKey {
        domain: Domain::Name(host.into()),
        url: url.into(),
    }
}

fn invalid_codes(v: &crate::model::ClusterView) -> Vec<&'static str> {
    match desire(v, "cls-1") {
        Decision::Invalid(p) => p.iter().map(|p| p.code).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn auto_rewrite_code_reads_the_default_and_per_host_codes() {
    let c = parse_auto_rewrite_code(
        r#"{"defaultRewriteCode":307,"rewriteCodeInfos":[{"host":"a.com","rewriteCode":301}]}"#,
    )
    .unwrap();
    assert_eq!(c.default, 307);
    assert_eq!(c.code(&Domain::Name("a.com".into())), 301);
    assert_eq!(c.code(&Domain::Name("b.com".into())), 307);
    assert_eq!(c.code(&Domain::Default), 307);
    assert_eq!(
        parse_auto_rewrite_code("{}").unwrap(),
        RewriteCodes::default()
    );
    for bad in [
        "302",
        "{not json",
        r#"{"defaultRewriteCode":308}"#,
        r#"{"defaultRewriteCode":"302"}"#,
        r#"{"rewriteCodeInfos":[{"rewriteCode":301}]}"#,
        r#"{"rewriteCodeInfos":[{"host":"a.com"}]}"#,
        r#"{"rewriteCode":301}"#,
    ] {
        assert!(parse_auto_rewrite_code(bad).is_err(), "{bad}");
    }
}

#[test]
fn malformed_redirect_annotations_refuse_the_ingress_with_invalid_annotation_value() {
    for (k, v) in [
        (AUTO_REWRITE, "yes"),
        (REWRITE_SUPPORT, "on"),
        (RULE_MIX_BOTH, "both"),
        (AUTO_REWRITE_CODE, r#"{"defaultRewriteCode":200}"#),
    ] {
        let (_, problems) = parse(&annotations(&[(k, v)]), false);
        assert_eq!(problems.len(), 1, "{k}={v}");
        assert_eq!(problems[0].code, codes::INVALID_ANNOTATION, "{k}={v}");
        assert_eq!(problems[0].severity, Severity::Error, "{k}={v}");
        let v = tls_ingress(json!({ k: v }));
        assert_eq!(invalid_codes(&v), vec![codes::INVALID_ANNOTATION]);
    }
}

#[test]
fn rule_mix_both_refuses_rule_mix_rewrite_support_and_auto_rewrite() {
    for other in [
        "kubernetes.io/ingress.rule-mix",
        REWRITE_SUPPORT,
        AUTO_REWRITE,
    ] {
        let v = tls_ingress(json!({RULE_MIX_BOTH: "true", other: "true"}));
        assert_eq!(
            invalid_codes(&v),
            vec![codes::INVALID_ANNOTATION],
            "{other}"
        );
    }
    // "false" of the others is no combination.
    let d = manage(&tls_ingress(
        json!({RULE_MIX_BOTH: "true", AUTO_REWRITE: "false"}),
    ));
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

#[test]
fn rule_mix_both_puts_every_rule_on_http_and_https() {
    let d = manage(&tls_ingress(json!({RULE_MIX_BOTH: "true"})));
    let keys = |l: ListenerKey| -> Vec<RuleKey> { d.listeners[&l].rules.keys().cloned().collect() };
    let both = vec![key("a.com", "/"), key("b.com", "/api")];
    assert_eq!(keys(ListenerKey::HTTP_80), both);
    assert_eq!(keys(ListenerKey::HTTPS_443), both);
    assert!(
        !d.listeners[&ListenerKey::HTTP_80].rules[&key("a.com", "/")]
            .targets
            .is_empty()
    );
    assert!(d.redirects.redirects.is_empty());
}

fn redirects_of(d: &Desired) -> Vec<(ListenerKey, RuleKey, ListenerKey, RuleKey, u16, bool)> {
    d.redirects
        .redirects
        .iter()
        .map(|((l, k), to)| {
            (
                *l,
                k.clone(),
                to.listener,
                to.rule.clone(),
                to.code,
                to.take_url,
            )
        })
        .collect()
}

#[test]
fn auto_rewrite_gives_every_https_rule_an_http_twin_that_redirects_to_it() {
    let d = manage(&tls_ingress(json!({
        AUTO_REWRITE: "true",
        AUTO_REWRITE_CODE: r#"{"defaultRewriteCode":301,"rewriteCodeInfos":[{"host":"b.com","rewriteCode":307}]}"#,
    })));
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let (http, https) = (ListenerKey::HTTP_80, ListenerKey::HTTPS_443);
    assert_eq!(
        redirects_of(&d),
        vec![
            (
                http,
                key("a.com", "/"),
                https,
                key("a.com", "/"),
                301,
                AUTO_TAKE_URL
            ),
            (
                http,
                key("b.com", "/api"),
                https,
                key("b.com", "/api"),
                307,
                AUTO_TAKE_URL
            ),
        ]
    );
    // The twins only redirect: no targets.
    assert!(d.listeners[&http]
        .rules
        .values()
        .all(|r| r.targets.is_empty()));
    assert!(d.redirects.claims_all);
}

#[test]
fn auto_rewrite_without_http_80_in_listen_ports_warns_and_redirects_nothing() {
    let d = manage(&tls_ingress(json!({
        AUTO_REWRITE: "true",
        "ingress.cloud.tencent.com/listen-ports": r#"[{"HTTPS":443}]"#,
    })));
    assert_eq!(
        d.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
        vec![codes::INVALID_ANNOTATION]
    );
    assert!(d.redirects.redirects.is_empty());
    assert!(!d.listeners.contains_key(&ListenerKey::HTTP_80));
}

#[test]
fn rewrite_entries_need_rewrite_support_and_name_rules_of_the_ingress() {
    let entries = r#"[{"host":"a.com","path":"/old","rewrite":{"port":443,"host":"a.com","path":"/"}},
                      {"host":"a.com","path":"/gone","rewrite":{"port":443,"host":"a.com","path":"/nowhere"}}]"#;
    let off = manage(&tls_ingress(
        json!({"kubernetes.io/ingress.http-rules": entries}),
    ));
    assert!(off.redirects.redirects.is_empty());
    assert_eq!(off.problems[0].code, codes::INVALID_ANNOTATION);

    let on = manage(&tls_ingress(json!({
        REWRITE_SUPPORT: "true",
        "kubernetes.io/ingress.http-rules": entries,
    })));
    assert_eq!(
        redirects_of(&on),
        vec![(
            ListenerKey::HTTP_80,
            key("a.com", "/old"),
            ListenerKey::HTTPS_443,
            key("a.com", "/"),
            MANUAL_REWRITE_CODE,
            MANUAL_TAKE_URL
        )]
    );
    // The redirect-only source rule exists, without targets; the bad target is reported.
    assert!(
        on.listeners[&ListenerKey::HTTP_80].rules[&key("a.com", "/old")]
            .targets
            .is_empty()
    );
    assert_eq!(on.problems.len(), 1, "{:?}", on.problems);
    assert!(on.problems[0].message.contains("/nowhere"));
}

#[test]
fn a_malformed_rewrite_entry_refuses_with_the_lists_code() {
    for (list, code) in [
        ("kubernetes.io/ingress.http-rules", "E4022"),
        ("kubernetes.io/ingress.https-rules", "E4023"),
    ] {
        for entry in [
            r#"[{"path":"/a","rewrite":{"path":"/b"}}]"#,
            r#"[{"path":"/a","rewrite":{"port":"80"}}]"#,
            r#"[{"path":"a","rewrite":{"port":80}}]"#,
            r#"[{"path":"/a","rewrite":{"port":80,"host":7}}]"#,
        ] {
            let v = tls_ingress(json!({REWRITE_SUPPORT: "true", list: entry}));
            assert_eq!(invalid_codes(&v), vec![code], "{list} {entry}");
        }
    }
}
