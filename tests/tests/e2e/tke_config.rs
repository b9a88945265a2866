//! TkeServiceConfig end to end: `kubectl` writes the CRD object and the Ingress annotation to
//! kube-sim, the audit webhook wakes the function, which sets the attributes on clb-sim; the
//! CLB is read back with the official Python SDK. Counts writes, never time.

use crate::support::stack::*;
use serde_json::Value;

const NS: &str = "shop";
const ANNOTATION: &str = "ingress.cloud.tencent.com/tke-service-config";

/// The TkeServiceConfig `web-config` with `shop_scheduler` on shop.example.com/ (and a
/// section for a host the Ingress does not have, and one for a listener it does not have).
fn config(shop_scheduler: &str) -> String {
    format!(
        r#"apiVersion: cloud.tencent.com/v1alpha1
kind: TkeServiceConfig
metadata:
  name: web-config
  namespace: shop
spec:
  loadBalancer:
    l7Listeners:
    - protocol: HTTP
      port: 80
      keepaliveEnable: 1
      defaultServer: shop.example.com
      domains:
      - domain: shop.example.com
        rules:
        - url: /
          scheduler: {shop_scheduler}
          session:
            enable: true
            sessionExpireTime: 600
          healthCheck:
            enable: true
            intervalTime: 10
            timeout: 4
            healthNum: 2
            unHealthNum: 5
            httpCheckPath: /healthz
            httpCheckMethod: GET
      - domain: nowhere.example.com
        rules:
        - url: /
          scheduler: IP_HASH
    - protocol: HTTPS
      port: 443
      keepaliveEnable: 1
"#
    )
}

/// DescribeListeners of `lb_id` as the official Python SDK serialises it.
pub async fn sdk_listeners(stack: &Stack, lb_id: &str) -> Value {
    sdk_read_clb(stack, lb_id, &["--raw"]).await
}

/// The HTTP:80 rule `domain` `/` as the SDK shows it.
fn sdk_rule<'a>(listeners: &'a Value, domain: &str) -> &'a Value {
    listeners["Listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["Port"] == 80)
        .flat_map(|l| l["Rules"].as_array().into_iter().flatten())
        .find(|r| r["Domain"] == domain && r["Url"] == "/")
        .unwrap_or_else(|| panic!("no rule {domain}/ in {listeners}"))
}

/// Scheduler of shop.example.com/ on the CLB, from clb-sim's state.
fn shop_scheduler(lb: &Value) -> Option<String> {
    lb["Listeners"]
        .as_array()?
        .iter()
        .flat_map(|l| l["Rules"].as_array().into_iter().flatten())
        .find(|r| r["Domain"] == "shop.example.com" && r["Url"] == "/")?["Scheduler"]
        .as_str()
        .map(str::to_string)
}

/// Waits until shop.example.com/ has `want` as its scheduler on the CLB.
async fn scheduler_becomes(stack: &Stack, uid: &str, want: &str) {
    eventually(&format!("the shop rule takes {want}"), || {
        let lb = stack.lb_of(uid).ok_or("no CLB")?;
        match shop_scheduler(&lb) {
            Some(s) if s == want => Ok(()),
            other => Err(format!("scheduler {other:?}")),
        }
    })
    .await;
}

/// `kubectl annotate --overwrite ingress web <ANNOTATION><suffix>` (`=value` or `-`).
async fn annotate(stack: &Stack, suffix: &str) {
    annotate_with(stack, &format!("{ANNOTATION}{suffix}")).await;
}

/// `kubectl annotate --overwrite ingress web <arg>`.
async fn annotate_with(stack: &Stack, arg: &str) {
    stack
        .kubectl
        .run(&["annotate", "--overwrite", "ingress", "web", "-n", NS, arg])
        .await;
}

/// Write calls since the first `from` writes, by action name.
pub fn writes_since(stack: &Stack, from: usize) -> Vec<String> {
    let mut w: Vec<String> = stack
        .cloud_writes()
        .into_iter()
        .skip(from)
        .map(|c| c.action)
        .collect();
    w.sort();
    w
}

/// Warning reasons the function reported on the Ingress `web`.
fn warnings(stack: &Stack) -> Vec<String> {
    stack
        .kube
        .list_objects("events.k8s.io/v1", "Event", Some(NS))
        .iter()
        .filter(|e| e["regarding"]["name"] == "web" && e["type"] == "Warning")
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect()
}

/// Applies the samples' `web` Ingress and waits for its four CLB rules (shop/ and admin/,
/// and Prefix /api as two: =/api and /api/); its UID.
async fn web_converged(stack: &Stack) -> String {
    apply_web(stack).await;
    let uid = stack.ingress_uid(NS, "web");
    eventually("the web Ingress has its four rules", || {
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        match rules(&lb).len() {
            4 => Ok(()),
            n => Err(format!("{n} rules")),
        }
    })
    .await;
    uid
}

/// Waits for a Warning `reason` on the Ingress `web`.
async fn warned(stack: &Stack, reason: &str) {
    eventually(&format!("a Warning {reason}"), || {
        let w = warnings(stack);
        if w.iter().any(|r| r == reason) {
            Ok(())
        } else {
            Err(format!("warnings {w:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tke_service_config_sets_only_what_it_selects_follows_edits_and_reports_bad_ones() {
    let stack = Stack::start().await;
    let uid = web_converged(&stack).await;
    // The config exists before anything names it: nothing changes.
    stack.kubectl.apply_yaml(&config("LEAST_CONN")).await;
    stack.quiet(0).await;
    let before = stack.cloud_writes().len();
    let lb = stack.lb_of(&uid).expect("CLB");
    assert_eq!(shop_scheduler(&lb).as_deref(), Some("WRR"));
    let lb_id = lb["LoadBalancerId"].as_str().expect("id").to_string();

    // Named: exactly the three attribute calls, nothing else.
    annotate(&stack, "=web-config").await;
    scheduler_becomes(&stack, &uid, "LEAST_CONN").await;
    stack.quiet(0).await;
    assert_eq!(
        writes_since(&stack, before),
        ["ModifyDomainAttributes", "ModifyListener", "ModifyRule"]
    );
    let sdk = sdk_listeners(&stack, &lb_id).await;
    let http = sdk["Listeners"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["Port"] == 80))
        .expect("HTTP:80");
    assert_eq!(http["KeepaliveEnable"], 1);
    let shop = sdk_rule(&sdk, "shop.example.com");
    assert_eq!(shop["Scheduler"], "LEAST_CONN");
    assert_eq!(shop["SessionExpireTime"], 600);
    assert_eq!(shop["DefaultServer"], true);
    let hc = &shop["HealthCheck"];
    assert_eq!(
        (
            &hc["HealthSwitch"],
            &hc["IntervalTime"],
            &hc["TimeOut"],
            &hc["HealthNum"],
            &hc["UnHealthNum"],
            &hc["HttpCheckPath"],
            &hc["HttpCheckMethod"]
        ),
        (
            &Value::from(1),
            &Value::from(10),
            &Value::from(4),
            &Value::from(2),
            &Value::from(5),
            &Value::from("/healthz"),
            &Value::from("GET")
        )
    );
    let admin = sdk_rule(&sdk, "admin.example.com");
    assert_eq!(admin["DefaultServer"], false, "one default per listener");
    assert_eq!(
        admin["Scheduler"], "WRR",
        "a rule no section selects is left alone"
    );
    assert_eq!(admin["SessionExpireTime"], 0);
    assert_eq!(admin["HealthCheck"]["IntervalTime"], 5);

    // Edited: the audit event of the TkeServiceConfig reconciles the Ingress; one ModifyRule.
    let before = stack.cloud_writes().len();
    stack.kubectl.apply_yaml(&config("IP_HASH")).await;
    scheduler_becomes(&stack, &uid, "IP_HASH").await;
    stack.quiet(0).await;
    assert_eq!(writes_since(&stack, before), ["ModifyRule"]);

    // Steady state: a sweep writes nothing.
    let before = stack.cloud_writes().len();
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert!(writes_since(&stack, before).is_empty());

    // Malformed: a Warning naming the config; the rest of it still holds, nothing written.
    stack.kubectl.apply_yaml(&config("RANDOM")).await;
    warned(&stack, "InvalidTkeServiceConfig").await;
    stack.quiet(0).await;
    assert!(writes_since(&stack, before).is_empty());
    assert_eq!(
        shop_scheduler(&stack.lb_of(&uid).expect("CLB")).as_deref(),
        Some("IP_HASH")
    );

    // Missing: TKE's E4043, nothing written.
    annotate(&stack, "=absent").await;
    warned(&stack, "E4043").await;
    stack.quiet(0).await;
    assert!(writes_since(&stack, before).is_empty());

    // Removed: as TKE documents, the CLB keeps what the config set; nothing written.
    annotate(&stack, "-").await;
    stack.quiet(0).await;
    assert!(writes_since(&stack, before).is_empty());
    let sdk = sdk_listeners(&stack, &lb_id).await;
    assert_eq!(sdk_rule(&sdk, "shop.example.com")["Scheduler"], "IP_HASH");
    assert!(
        !warnings(&stack)
            .iter()
            .any(|r| r == "UnsupportedAnnotation"),
        "the annotation is supported"
    );
}

/// The automatic config of `web`, as stored.
fn auto_config(stack: &Stack) -> Option<Value> {
    stack.kube.get_object(
        "cloud.tencent.com/v1alpha1",
        "TkeServiceConfig",
        Some(NS),
        "web-auto-ingress-config",
    )
}

/// The rule entry `domain` `/` of HTTP:80 in a TkeServiceConfig.
fn config_rule<'a>(config: &'a Value, domain: &str) -> Option<&'a Value> {
    config["spec"]["loadBalancer"]["l7Listeners"]
        .as_array()?
        .iter()
        .filter(|l| l["port"] == 80)
        .flat_map(|l| l["domains"].as_array().into_iter().flatten())
        .filter(|d| d["domain"] == domain)
        .flat_map(|d| d["rules"].as_array().into_iter().flatten())
        .find(|r| r["url"] == "/")
}

/// Writes to TkeServiceConfigs the function made since the first `from` requests.
fn config_writes(stack: &Stack, from: usize) -> usize {
    stack
        .kube
        .request_log()
        .into_iter()
        .skip(from)
        .filter(|r| r.username == FUNCTION_USER && r.method != "GET")
        .filter(|r| r.path.contains("/tkeserviceconfigs"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auto_config_shows_the_clb_takes_user_edits_and_goes_with_the_ingress() {
    let stack = Stack::start().await;
    let uid = web_converged(&stack).await;
    stack.quiet(0).await;
    let before = stack.cloud_writes().len();
    annotate_with(
        &stack,
        "ingress.cloud.tencent.com/tke-service-config-auto=true",
    )
    .await;
    let config = eventually("web-auto-ingress-config shows the CLB", || {
        let c = auto_config(&stack).ok_or("no auto config")?;
        match config_rule(&c, "shop.example.com") {
            Some(r) if r["scheduler"] == "WRR" => Ok(c),
            other => Err(format!("shop rule {other:?}")),
        }
    })
    .await;
    stack.quiet(0).await;
    assert!(
        writes_since(&stack, before).is_empty(),
        "reflecting writes no CLB"
    );
    let admin = config_rule(&config, "admin.example.com").expect("admin rule");
    assert_eq!(admin["healthCheck"]["intervalTime"], 5);
    assert_eq!(admin["session"]["enable"], false);
    assert_eq!(
        config["metadata"]["ownerReferences"][0]["uid"].as_str(),
        Some(uid.as_str())
    );

    // A user edit (kubectl replace, as kubectl edit sends it) reaches the CLB.
    let mut edited = config.clone();
    let sections = edited["spec"]["loadBalancer"]["l7Listeners"]
        .as_array_mut()
        .expect("sections");
    for d in sections[0]["domains"].as_array_mut().expect("domains") {
        if d["domain"] == "shop.example.com" {
            for r in d["rules"].as_array_mut().expect("rules") {
                if r["url"] == "/" {
                    r["scheduler"] = "IP_HASH".into();
                }
            }
        }
    }
    let path = std::env::temp_dir().join(format!("auto-config-{uid}.json"));
    std::fs::write(&path, edited.to_string()).expect("write the edit");
    stack
        .kubectl
        .run(&["replace", "-f", &path.to_string_lossy()])
        .await;
    scheduler_becomes(&stack, &uid, "IP_HASH").await;
    stack.quiet(0).await;
    assert_eq!(writes_since(&stack, before), ["ModifyRule"]);
    let config = auto_config(&stack).expect("auto config");
    assert_eq!(
        config_rule(&config, "shop.example.com").expect("shop")["scheduler"],
        "IP_HASH"
    );

    // Steady state: a sweep writes neither the CLB nor the config.
    let (cloud, kube) = (stack.cloud_writes().len(), stack.kube.request_log().len());
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert!(writes_since(&stack, cloud).is_empty());
    assert_eq!(config_writes(&stack, kube), 0);

    // Deleted with its Ingress.
    stack
        .kubectl
        .run(&["delete", "ingress", "web", "-n", NS])
        .await;
    eventually(
        "the auto config is gone with the Ingress",
        || match auto_config(&stack) {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        },
    )
    .await;
    let _ = std::fs::remove_file(path);
}

/// A fresh self-signed certificate and key for `host` (PEM files written by openssl in a
/// directory of this test's own); the paths and the key's PEM body.
fn key_pair(tag: &str, host: &str) -> (String, String, String) {
    let dir = std::env::temp_dir().join(format!("clb-ingress-tls-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={host}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl failed");
    let key_body = std::fs::read_to_string(&key)
        .expect("key")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(3)
        .collect::<String>();
    (
        crt.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
        key_body,
    )
}

/// `kubectl create secret tls` as YAML (client side), applied: creates or rotates it.
async fn tls_secret(stack: &Stack, crt: &str, key: &str) {
    let yaml = stack
        .kubectl
        .run(&[
            "create",
            "secret",
            "tls",
            "secure-tls",
            "-n",
            NS,
            "--cert",
            crt,
            "--key",
            key,
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .await;
    stack.kubectl.apply_yaml(&yaml).await;
}

const TLS_INGRESS: &str = r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
  namespace: shop
spec:
  tls:
  - hosts: [secure.example.com]
    secretName: secure-tls
  rules:
  - host: secure.example.com
    http:
      paths:
      - path: /
        pathType: ImplementationSpecific
        backend:
          service:
            name: web
            port:
              number: 80
"#;

/// The certificate of secure.example.com/ on HTTPS:443, as the official SDK reads it.
async fn sdk_bound_cert(stack: &Stack, lb_id: &str) -> Option<String> {
    let listeners = sdk_listeners(stack, lb_id).await;
    listeners["Listeners"]
        .as_array()?
        .iter()
        .filter(|l| l["Port"] == 443)
        .flat_map(|l| l["Rules"].as_array().into_iter().flatten())
        .find(|r| r["Domain"] == "secure.example.com")?["Certificate"]["CertId"]
        .as_str()
        .map(str::to_string)
}

/// The certificates in clb-sim's SSL service: (id, tags).
fn ssl_certs(stack: &Stack) -> Vec<(String, Vec<(String, String)>)> {
    stack.clb.state()["Certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let tags = c["Tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                    (s("TagKey"), s("TagValue"))
                })
                .collect();
            (
                c["CertificateId"].as_str().unwrap_or_default().to_string(),
                tags,
            )
        })
        .collect()
}

/// The HTTPS rule's certificate id from clb-sim's state.
fn bound_cert(lb: &Value) -> Option<String> {
    lb["Listeners"]
        .as_array()?
        .iter()
        .flat_map(|l| l["Rules"].as_array().into_iter().flatten())
        .find(|r| r["Domain"] == "secure.example.com")?["Certificate"]["CertId"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_tls_secret_is_uploaded_once_bound_rotated_and_deleted_when_unused() {
    let stack = Stack::start().await;
    for sample in ["00-namespace.yaml", "01-nodes.yaml", "02-services.yaml"] {
        stack.kubectl.apply_sample(sample).await;
    }
    let (crt, key, key_a) = key_pair("a", "secure.example.com");
    tls_secret(&stack, &crt, &key).await;
    stack.kubectl.apply_yaml(TLS_INGRESS).await;
    let uid = stack.ingress_uid(NS, "secure");
    let first = eventually("the HTTPS rule binds an uploaded certificate", || {
        let lb = stack.lb_of(&uid).ok_or("no CLB")?;
        bound_cert(&lb).ok_or_else(|| "no certificate bound".to_string())
    })
    .await;
    stack.quiet(0).await;
    let lb_id = stack.lb_of(&uid).expect("CLB")["LoadBalancerId"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        sdk_bound_cert(&stack, &lb_id).await.as_deref(),
        Some(first.as_str())
    );
    let certs = ssl_certs(&stack);
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0].0, first);
    let secret_uid = stack
        .kube
        .get_object("v1", "Secret", Some(NS), "secure-tls")
        .expect("Secret")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    for want in [
        ("tke-clusterId".to_string(), CLUSTER_ID.to_string()),
        ("clb-ingress-secret-uid".to_string(), secret_uid),
    ] {
        assert!(certs[0].1.contains(&want), "{want:?} in {:?}", certs[0].1);
    }
    assert_eq!(stack.clb.call_count("UploadCertificate"), 1);

    // Steady state: a sweep writes nothing and uploads nothing.
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(
        stack.cloud_writes().len(),
        writes,
        "{:?}",
        writes_since(&stack, writes)
    );

    // Rotation: a new upload, bound, and the old certificate deleted once unbound.
    let (crt_b, key_b_path, key_b) = key_pair("b", "secure.example.com");
    tls_secret(&stack, &crt_b, &key_b_path).await;
    let second = eventually(
        "the rotated certificate is bound and the old one gone",
        || {
            let lb = stack.lb_of(&uid).ok_or("no CLB")?;
            let bound = bound_cert(&lb).ok_or("no certificate")?;
            let ids: Vec<String> = ssl_certs(&stack).into_iter().map(|c| c.0).collect();
            if bound != first && ids == vec![bound.clone()] {
                Ok(bound)
            } else {
                Err(format!("bound {bound}, certificates {ids:?}"))
            }
        },
    )
    .await;
    stack.quiet(0).await;
    assert_eq!(
        sdk_bound_cert(&stack, &lb_id).await.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(stack.clb.call_count("UploadCertificate"), 2);
    assert_eq!(stack.clb.call_count("DeleteCertificate"), 1);
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    stack.quiet(0).await;
    assert_eq!(
        stack.cloud_writes().len(),
        writes,
        "{:?}",
        writes_since(&stack, writes)
    );

    // The Ingress goes: its CLB and our certificate go.
    stack
        .kubectl
        .run(&["delete", "ingress", "secure", "-n", NS])
        .await;
    eventually("the CLB and the uploaded certificate are gone", || {
        let ids: Vec<String> = ssl_certs(&stack).into_iter().map(|c| c.0).collect();
        match (stack.lb_of(&uid), ids.is_empty()) {
            (None, true) => Ok(()),
            (lb, _) => Err(format!("CLB {}, certificates {ids:?}", lb.is_some())),
        }
    })
    .await;
    assert_eq!(stack.clb.call_count("DeleteCertificate"), 2);
    // No private key reached the cloud's call log (the emulator redacts it on arrival) or
    // an Event.
    let calls = serde_json::to_string(
        &stack
            .clb
            .calls()
            .iter()
            .map(|c| &c.params)
            .collect::<Vec<_>>(),
    )
    .expect("JSON");
    let events = serde_json::to_string(&stack.kube.list_objects(
        "events.k8s.io/v1",
        "Event",
        Some(NS),
    ))
    .expect("JSON");
    for body in [&key_a, &key_b] {
        assert!(!body.is_empty());
        assert!(!calls.contains(body.as_str()) && !events.contains(body.as_str()));
    }
}
