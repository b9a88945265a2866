//! TKE's listener and rule annotations end to end, as a user meets them: `kubectl` writes to
//! kube-sim, its audit webhook wakes the function, which drives clb-sim; the CLB is read
//! back with the official Python SDK (tests/py/read_clb.py). Covers `listen-ports`,
//! `pathType: Prefix` (Kubernetes semantics) and `spec.defaultBackend` as the listener's
//! default server: the CLB holds what the Ingress says, a change changes it, removing the
//! annotation restores the default, a malformed value is a Warning Event with its code and
//! changes nothing, and the steady state writes nothing. The same for redirects
//! (`auto-rewrite`, manual `rewrite` entries), `rule-mix-both` and the `certificate` annotation.

use crate::support::stack::*;
use serde_json::Value;

const NS: &str = "shop";
const LISTEN_PORTS: &str = "ingress.cloud.tencent.com/listen-ports";

/// The CLB `lb_id` as the official SDK describes it (tests/py/read_clb.py).
pub async fn sdk_read(stack: &Stack, lb_id: &str, rewrites: bool) -> Value {
    let flags: &[&str] = if rewrites { &["--rewrites"] } else { &[] };
    sdk_read_clb(stack, lb_id, flags).await
}

/// `["HTTP:80", ...]` of an SDK read.
pub fn sdk_listeners(read: &Value) -> Vec<String> {
    read["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| format!("{}:{}", l["protocol"].as_str().unwrap_or(""), l["port"]))
        .collect()
}

/// `["domain url", ...]` of one listener of an SDK read; default-server rules end in ` *`.
pub fn sdk_rules(read: &Value, listener: &str) -> Vec<String> {
    read["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| format!("{}:{}", l["protocol"].as_str().unwrap_or(""), l["port"]) == listener)
        .flat_map(|l| l["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let star = if r["default_server"] == true {
                " *"
            } else {
                ""
            };
            format!(
                "{} {}{star}",
                r["domain"].as_str().unwrap_or(""),
                r["url"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Warning Events about `shop/name`: their reasons.
pub fn warnings(stack: &Stack, name: &str) -> Vec<String> {
    stack
        .kube
        .list_objects("events.k8s.io/v1", "Event", Some(NS))
        .iter()
        .filter(|e| e["regarding"]["name"] == name && e["type"] == "Warning")
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Nodes and Services from samples/, then the Ingress `web` of `yaml`.
pub async fn apply_with(stack: &Stack, yaml: &str) {
    for file in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(file).await;
    }
    stack.kubectl.apply_yaml(yaml).await;
}

/// Waits until the CLB of `shop/name` has exactly `want` listeners (clb-sim state), returns
/// its id.
pub async fn listeners_become(stack: &Stack, name: &str, want: &[(&str, i64)]) -> String {
    let want: Vec<(String, i64)> = want.iter().map(|(p, n)| (p.to_string(), *n)).collect();
    eventually(&format!("{NS}/{name} has listeners {want:?}"), || {
        let ing = stack.ingress(NS, name).ok_or("no Ingress")?;
        let uid = ing["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        let got = listeners(&lb);
        // Every listener carries its rules before we call it converged.
        let with_rules = lb["Listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|l| l["Rules"].as_array().is_some_and(|r| !r.is_empty()));
        if got == want && with_rules {
            Ok(lb["LoadBalancerId"].as_str().unwrap_or("").to_string())
        } else {
            Err(format!("listeners {got:?}"))
        }
    })
    .await
}

const WEB: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    kubernetes.io/ingress.class: qcloud
    ingress.cloud.tencent.com/listen-ports: '[{"HTTP":80},{"HTTP":8080}]'
spec:
  defaultBackend:
    service:
      name: api
      port:
        number: 8080
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /api
        pathType: Prefix
        backend:
          service:
            name: api
            port:
              number: 8080
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_ports_prefix_paths_and_default_backend_follow_the_ingress() {
    let stack = Stack::start().await;
    apply_with(&stack, WEB).await;
    let lb_id = listeners_become(&stack, "web", &[("HTTP", 80), ("HTTP", 8080)]).await;
    stack.quiet(0).await;

    let read = sdk_read(&stack, &lb_id, false).await;
    assert_eq!(sdk_listeners(&read), vec!["HTTP:80", "HTTP:8080"]);
    let vip = stack.lb_of(&stack.ingress_uid(NS, "web")).unwrap()["LoadBalancerVips"][0]
        .as_str()
        .unwrap()
        .to_string();
    // Prefix /api is two CLB rules (=/api exact, /api/ prefix): /apix does not reach api.
    // defaultBackend is `/` on the VIP, the listener's default server.
    let want = vec![
        format!("{vip} / *"),
        "shop.example.com /".to_string(),
        "shop.example.com /api/".to_string(),
        "shop.example.com =/api".to_string(),
    ];
    for listener in ["HTTP:80", "HTTP:8080"] {
        assert_eq!(sdk_rules(&read, listener), want, "{listener}");
    }

    // Steady state: a sweep over it writes nothing.
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    assert_eq!(stack.cloud_writes().len(), writes, "steady state writes");

    // Changing the annotation moves the rules to the new listener set.
    stack
        .kubectl
        .annotate_ingress(NS, "web", &format!(r#"{LISTEN_PORTS}=[{{"HTTP":9090}}]"#))
        .await;
    listeners_become(&stack, "web", &[("HTTP", 9090)]).await;
    let read = sdk_read(&stack, &lb_id, false).await;
    assert_eq!(sdk_rules(&read, "HTTP:9090"), want);

    // A malformed value: a Warning Event with its code, and the CLB stays as it was.
    refused(
        &stack,
        "web",
        &[&format!(r#"{LISTEN_PORTS}=[{{"HTTP":"eighty"}}]"#)],
        "InvalidListenPorts",
    )
    .await;

    // Removing the annotation restores TKE's default listener, HTTP:80.
    unannotate(&stack, "web", &[LISTEN_PORTS]).await;
    listeners_become(&stack, "web", &[("HTTP", 80)]).await;
    let read = sdk_read(&stack, &lb_id, false).await;
    assert_eq!(sdk_rules(&read, "HTTP:80"), want);
}

const AUTO_REWRITE: &str = "ingress.cloud.tencent.com/auto-rewrite";
const AUTO_REWRITE_CODE: &str = "ingress.cloud.tencent.com/auto-rewrite-code";

const SECURE: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: secure-cert
  namespace: shop
type: Opaque
stringData:
  qcloud_cert_id: Xy8zAbCd
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
  namespace: shop
  annotations:
    kubernetes.io/ingress.class: qcloud
    ingress.cloud.tencent.com/auto-rewrite: "true"
spec:
  tls:
  - secretName: secure-cert
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /api
        pathType: ImplementationSpecific
        backend:
          service:
            name: api
            port:
              number: 8080
      - path: /
        pathType: ImplementationSpecific
        backend:
          service:
            name: web
            port:
              number: 80
"#;

/// `"from -> to code type"` of each redirect, as the official SDK's DescribeRewrite shows it.
fn sdk_redirects(read: &Value) -> Vec<String> {
    read["rewrites"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "{} -> {} {} {}",
                r["from"].as_str().unwrap_or(""),
                r["to"].as_str().unwrap_or(""),
                r["code"],
                r["type"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn describe_rewrite_calls(stack: &Stack) -> usize {
    stack
        .clb
        .calls()
        .iter()
        .filter(|c| c.action == "DescribeRewrite")
        .count()
}

/// The redirects the official SDK reads, once they are `want` (a run may still be busy).
async fn redirects_become(stack: &Stack, lb_id: &str, want: &[String]) -> Value {
    for _ in 0..50 {
        stack.quiet(0).await;
        let read = sdk_read(stack, lb_id, true).await;
        if sdk_redirects(&read) == want {
            return read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let read = sdk_read(stack, lb_id, true).await;
    assert_eq!(sdk_redirects(&read), want);
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rewrite_redirects_follow_the_annotations_and_removing_them_restores() {
    let stack = Stack::start().await;
    apply_with(&stack, SECURE).await;
    let lb_id = listeners_become(&stack, "secure", &[("HTTP", 80), ("HTTPS", 443)]).await;
    let redirects = |code: u16| -> Vec<String> {
        ["/", "/api"]
            .iter()
            .map(|p| {
                format!(
                    "HTTP:80 shop.example.com{p} -> HTTPS:443 shop.example.com{p} {code} Manual"
                )
            })
            .collect()
    };
    // Every HTTP rule redirects to its HTTPS twin, with TKE's default code.
    let read = redirects_become(&stack, &lb_id, &redirects(302)).await;
    // DefaultServer belongs to the domain: both rules of it carry the flag.
    let rules = vec![
        "shop.example.com / *".to_string(),
        "shop.example.com /api *".to_string(),
    ];
    assert_eq!(sdk_rules(&read, "HTTP:80"), rules);
    assert_eq!(sdk_rules(&read, "HTTPS:443"), rules);

    // Steady state: a sweep writes nothing and reads no redirect (DescribeListeners shows them).
    let (writes, reads) = (stack.cloud_writes().len(), describe_rewrite_calls(&stack));
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(stack.cloud_writes().len(), writes, "steady state writes");
    assert_eq!(
        describe_rewrite_calls(&stack),
        reads,
        "steady state DescribeRewrite"
    );

    // A code per host changes that redirect: one DeleteRewrite and one ManualRewrite.
    let writes = stack.cloud_writes().len();
    stack
        .kubectl
        .annotate_ingress(
            NS,
            "secure",
            &format!(r#"{AUTO_REWRITE_CODE}={{"defaultRewriteCode":307}}"#),
        )
        .await;
    redirects_become(&stack, &lb_id, &redirects(307)).await;
    assert_eq!(
        crate::tke_config::writes_since(&stack, writes),
        vec!["DeleteRewrite", "ManualRewrite"]
    );

    // A malformed value: a Warning Event with its code, nothing written, the CLB as it was.
    refused(
        &stack,
        "secure",
        &[&format!("{AUTO_REWRITE}=maybe")],
        "InvalidAnnotationValue",
    )
    .await;
    let read = sdk_read(&stack, &lb_id, true).await;
    assert_eq!(sdk_redirects(&read), redirects(307));

    // Removing the annotations removes the redirects and the HTTP twins: HTTPS only, as TKE
    // puts a TLS Ingress without rule-mix.
    unannotate(&stack, "secure", &[AUTO_REWRITE, AUTO_REWRITE_CODE]).await;
    listeners_become(&stack, "secure", &[("HTTPS", 443)]).await;
    let read = redirects_become(&stack, &lb_id, &[]).await;
    assert_eq!(sdk_rules(&read, "HTTPS:443"), rules);
}

/// A sweep over the converged CLB writes nothing; returns the writes so far.
async fn sweep_writes_nothing(stack: &Stack) -> usize {
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(stack.cloud_writes().len(), writes, "steady state writes");
    writes
}

/// Removes the annotations `keys` from `shop/name` with kubectl.
async fn unannotate(stack: &Stack, name: &str, keys: &[&str]) {
    let removed: Vec<String> = keys.iter().map(|k| format!("{k}-")).collect();
    let mut args = vec!["-n", NS, "annotate", "ingress", name];
    args.extend(removed.iter().map(String::as_str));
    stack.kubectl.run(&args).await;
}

/// Warning Events `reason` about `shop/name`: how many (each distinct note is its own Event).
fn warning_count(stack: &Stack, name: &str, reason: &str) -> usize {
    warnings(stack, name)
        .iter()
        .filter(|r| *r == reason)
        .count()
}

/// Waits for more than `seen` Warnings `reason` about `shop/name`, then for quiet.
async fn warned(stack: &Stack, name: &str, reason: &str, seen: usize) {
    eventually(&format!("a new Warning {reason}"), || {
        let w = warnings(stack, name);
        if w.iter().filter(|r| *r == reason).count() > seen {
            Ok(())
        } else {
            Err(format!("warnings {w:?}"))
        }
    })
    .await;
    stack.quiet(0).await;
}

/// Applies `annotation` (kubectl's `key=value` or `key-`) and proves it is refused: a Warning
/// `reason`, no cloud write, the CLB as it was.
async fn refused(stack: &Stack, name: &str, annotation: &[&str], reason: &str) {
    stack.quiet(0).await;
    let before = stack.clb.state();
    let writes = stack.cloud_writes().len();
    let seen = warning_count(stack, name, reason);
    let mut args = vec!["-n", NS, "annotate", "--overwrite", "ingress", name];
    args.extend_from_slice(annotation);
    stack.kubectl.run(&args).await;
    warned(stack, name, reason, seen).await;
    assert_eq!(
        stack.cloud_writes().len(),
        writes,
        "a refused value writes nothing"
    );
    assert_eq!(
        lbs(&stack.clb.state()),
        lbs(&before),
        "a refused value changes nothing"
    );
}

const HTTP_RULES: &str = "kubernetes.io/ingress.http-rules";

/// An `http-rules` entry: shop.example.com/old redirects to shop.example.com`to` on 443.
fn rewrite_entry(to: &str) -> String {
    format!(
        r#"{HTTP_RULES}=[{{"host":"shop.example.com","path":"/old","rewrite":{{"port":443,"host":"shop.example.com","path":"{to}"}}}}]"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_rewrite_entries_redirect_follow_the_target_and_removing_them_restores() {
    let stack = Stack::start().await;
    apply_with(&stack, SECURE).await;
    listeners_become(&stack, "secure", &[("HTTP", 80), ("HTTPS", 443)]).await;
    // From auto redirects to manual ones: rule-mix keeps every Ingress rule on HTTPS:443.
    stack
        .kubectl
        .run(&[
            "-n",
            NS,
            "annotate",
            "--overwrite",
            "ingress",
            "secure",
            &format!("{AUTO_REWRITE}-"),
            &format!("{}=true", "ingress.cloud.tencent.com/rewrite-support"),
            "kubernetes.io/ingress.rule-mix=true",
            &rewrite_entry("/"),
        ])
        .await;
    let lb_id = listeners_become(&stack, "secure", &[("HTTP", 80), ("HTTPS", 443)]).await;
    let redirect = |to: &str| {
        vec![format!(
            "HTTP:80 shop.example.com/old -> HTTPS:443 shop.example.com{to} 301 Manual"
        )]
    };
    let read = redirects_become(&stack, &lb_id, &redirect("/")).await;
    // The entry's rule exists only to redirect; the Ingress rules stay on HTTPS:443.
    assert_eq!(sdk_rules(&read, "HTTP:80"), vec!["shop.example.com /old *"]);

    let writes = sweep_writes_nothing(&stack).await;

    // A new target path moves the redirect: one DeleteRewrite and one ManualRewrite.
    stack
        .kubectl
        .annotate_ingress(NS, "secure", &rewrite_entry("/api"))
        .await;
    redirects_become(&stack, &lb_id, &redirect("/api")).await;
    assert_eq!(
        crate::tke_config::writes_since(&stack, writes),
        vec!["DeleteRewrite", "ManualRewrite"]
    );

    // A malformed entry (no port): a Warning with http-rules' code, the CLB as it was.
    refused(
        &stack,
        "secure",
        &[&format!(
            r#"{HTTP_RULES}=[{{"host":"shop.example.com","path":"/old","rewrite":{{"path":"/"}}}}]"#
        )],
        "E4022",
    )
    .await;
    let read = sdk_read(&stack, &lb_id, true).await;
    assert_eq!(sdk_redirects(&read), redirect("/api"));

    // Removing the entry removes the redirect and its redirect-only rule.
    unannotate(&stack, "secure", &[HTTP_RULES]).await;
    let read = redirects_become(&stack, &lb_id, &[]).await;
    assert!(
        !sdk_rules(&read, "HTTP:80")
            .iter()
            .any(|r| r.contains("/old")),
        "{read}"
    );
}

const RULE_MIX_BOTH: &str = "kubernetes.io/ingress.rule-mix-both";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_mix_both_puts_every_rule_on_both_listeners_and_removing_it_restores() {
    let stack = Stack::start().await;
    let yaml = SECURE.replace(
        &format!(r#"{AUTO_REWRITE}: "true""#),
        &format!(r#"{RULE_MIX_BOTH}: "true""#),
    );
    apply_with(&stack, &yaml).await;
    let lb_id = listeners_become(&stack, "secure", &[("HTTP", 80), ("HTTPS", 443)]).await;
    stack.quiet(0).await;
    let read = sdk_read(&stack, &lb_id, true).await;
    let urls = |listener: &str| -> Vec<String> {
        sdk_rules(&read, listener)
            .iter()
            .map(|r| r.trim_end_matches(" *").to_string())
            .collect()
    };
    let want = vec!["shop.example.com /", "shop.example.com /api"];
    assert_eq!(urls("HTTP:80"), want);
    assert_eq!(urls("HTTPS:443"), want);
    assert_eq!(sdk_redirects(&read), Vec::<String>::new(), "no redirects");

    sweep_writes_nothing(&stack).await;

    // Combined with rule-mix: refused, nothing changes.
    refused(
        &stack,
        "secure",
        &["kubernetes.io/ingress.rule-mix=true"],
        "InvalidAnnotationValue",
    )
    .await;

    // Removing both restores TKE's TLS default: HTTPS:443 only.
    unannotate(
        &stack,
        "secure",
        &[RULE_MIX_BOTH, "kubernetes.io/ingress.rule-mix"],
    )
    .await;
    listeners_become(&stack, "secure", &[("HTTPS", 443)]).await;
    let read = sdk_read(&stack, &lb_id, false).await;
    let urls: Vec<String> = sdk_rules(&read, "HTTPS:443")
        .iter()
        .map(|r| r.trim_end_matches(" *").to_string())
        .collect();
    assert_eq!(urls, want);
}

const CERTIFICATE: &str = "ingress.cloud.tencent.com/certificate";

/// The certificate ids bound on HTTPS:443 (listener and rules), as the official SDK reads them.
async fn sdk_https_certs(stack: &Stack, lb_id: &str) -> Vec<String> {
    let read = crate::tke_config::sdk_listeners(stack, lb_id).await;
    let mut ids: Vec<String> = read["Listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["Port"] == 443)
        .flat_map(|l| {
            let rules = l["Rules"].as_array().cloned().unwrap_or_default();
            std::iter::once(l["Certificate"].clone())
                .chain(rules.into_iter().map(|r| r["Certificate"].clone()))
        })
        .filter_map(|c| c["CertId"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The certificates the official SDK reads on HTTPS:443, once they are `want`.
async fn https_certs_become(stack: &Stack, lb_id: &str, want: &[&str]) {
    let mut got = Vec::new();
    for _ in 0..50 {
        stack.quiet(0).await;
        got = sdk_https_certs(stack, lb_id).await;
        if got == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got, want);
}

fn cert_annotation(id: &str) -> String {
    format!(r#"{CERTIFICATE}=[{{"hosts":["shop.example.com"],"qcloud_cert_id":["{id}"]}}]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_annotation_binds_rebinds_and_refuses_bad_values() {
    let stack = Stack::start().await;
    // SECURE without spec.tls and auto-rewrite: the annotation alone makes it HTTPS.
    let yaml = SECURE
        .replace("spec:\n  tls:\n  - secretName: secure-cert\n", "spec:\n")
        .replace(&format!("    {AUTO_REWRITE}: \"true\"\n"), "");
    assert!(!yaml.contains("tls:") && !yaml.contains(AUTO_REWRITE));
    apply_with(&stack, &yaml).await;
    let lb_id = listeners_become(&stack, "secure", &[("HTTP", 80)]).await;
    stack
        .kubectl
        .annotate_ingress(NS, "secure", &cert_annotation("certA1"))
        .await;
    listeners_become(&stack, "secure", &[("HTTPS", 443)]).await;
    https_certs_become(&stack, &lb_id, &["certA1"]).await;

    sweep_writes_nothing(&stack).await;

    // Another id rebinds the HTTPS rules to it.
    stack
        .kubectl
        .annotate_ingress(NS, "secure", &cert_annotation("certB2"))
        .await;
    https_certs_become(&stack, &lb_id, &["certB2"]).await;

    // Malformed, or beside spec.tls: refused, nothing changes.
    refused(
        &stack,
        "secure",
        &[&format!(r#"{CERTIFICATE}=["certC3"]"#)],
        "InvalidCertificateAnnotation",
    )
    .await;
    stack
        .kubectl
        .annotate_ingress(NS, "secure", &cert_annotation("certB2"))
        .await;
    https_certs_become(&stack, &lb_id, &["certB2"]).await;
    let before = stack.clb.state();
    let writes = stack.cloud_writes().len();
    let seen = warning_count(&stack, "secure", "InvalidCertificateAnnotation");
    stack
        .kubectl
        .run(&[
            "-n",
            NS,
            "patch",
            "ingress",
            "secure",
            "--type=merge",
            "-p",
            r#"{"spec":{"tls":[{"secretName":"secure-cert"}]}}"#,
        ])
        .await;
    warned(&stack, "secure", "InvalidCertificateAnnotation", seen).await;
    assert_eq!(stack.cloud_writes().len(), writes, "spec.tls beside it");
    assert_eq!(lbs(&stack.clb.state()), lbs(&before), "spec.tls beside it");
    https_certs_become(&stack, &lb_id, &["certB2"]).await;

    // Removing the annotation hands the HTTPS rules back to spec.tls's certificate.
    unannotate(&stack, "secure", &[CERTIFICATE]).await;
    https_certs_become(&stack, &lb_id, &["Xy8zAbCd"]).await;
}
