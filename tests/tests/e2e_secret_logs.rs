//! No secret in any log: an end-to-end run (kubectl → kube-sim → audit webhook → function →
//! clb-sim, a timer sweep, a delete) and a run of the real binary, everything logging at
//! TRACE, and the captured output searched for every secret those runs handled: the cloud
//! secret key and session token, the webhook token, every Kubernetes bearer token, the TC3
//! `Authorization` header, and the data of a TLS Secret.
//!
//! A target of its own, not a module of `e2e`: it installs a process-wide TRACE subscriber,
//! which would capture (and slow) every other test sharing its process.

#[path = "e2e/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use clb_ingress_tests::function_rbac;
use serde_json::Value;
use support::stack::*;

/// A private key that only the Secret carries (the function reads only qcloud_cert_id).
const PRIVATE_KEY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7e2e-secret";
const SESSION_TOKEN: &str = "e2e-session-token-5f3a9c1d";
const NS: &str = "shop";

/// Everything logged in this test process: the function's, kube-sim's and clb-sim's
/// tracing output, kube-rs, hyper and reqwest included.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

fn tls_secret_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: secure-cert
  namespace: {NS}
type: Opaque
stringData:
  qcloud_cert_id: Xy8zAbCd
  tls.key: {PRIVATE_KEY}
"#
    )
}

/// Runs `clb-ingress reconcile NS/NAME` as the function's service account, logging at
/// TRACE with temporary credentials; its stdout and stderr.
async fn run_binary(stack: &Stack, ingress: &str) -> String {
    let bin = clb_ingress_tests::function::binary();
    assert!(bin.exists(), "{} is missing: cargo build", bin.display());
    let out = tokio::process::Command::new(&bin)
        .args(["reconcile", &format!("{NS}/{ingress}")])
        .env_clear()
        .envs(clb_ingress_tests::function::env(
            &stack.clb,
            &function_rbac::kubeconfig(&stack.kube).unwrap(),
            CLUSTER_ID,
        ))
        .env("TENCENTCLOUD_SESSIONTOKEN", SESSION_TOKEN)
        .env("RUST_LOG", "trace")
        .env("LOG_FORMAT", "json")
        .output()
        .await
        .expect("clb-ingress runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// A `kubernetes.io/tls` Secret made by `kubectl create secret tls` from a fresh openssl
/// key pair, and an Ingress naming it: the function uploads the certificate itself, so the
/// private key passes through it. The key's PEM body lines (each searched for).
async fn uploaded_tls(stack: &Stack) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("clb-ingress-secret-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=upload.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl failed");
    let (crt, key_path) = (
        crt.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    stack
        .kubectl
        .run(&[
            "create",
            "secret",
            "tls",
            "upload-tls",
            "-n",
            NS,
            "--cert",
            &crt,
            "--key",
            &key_path,
        ])
        .await;
    stack
        .kubectl
        .apply_yaml(&format!(
            r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: upload
  namespace: {NS}
spec:
  tls:
  - hosts: [upload.example.com]
    secretName: upload-tls
  rules:
  - host: upload.example.com
    http:
      paths:
      - path: /
        pathType: ImplementationSpecific
        backend:
          service:
            name: web
            port:
              number: 80
"#
        ))
        .await;
    std::fs::read_to_string(&key)
        .expect("key")
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_the_logs_of_an_end_to_end_run() {
    let logs = captured();
    let stack = Stack::start().await;
    for sample in [
        "00-namespace.yaml",
        "01-nodes.yaml",
        "02-services.yaml",
        "04-ingress-tls.yaml",
    ] {
        stack.kubectl.apply_sample(sample).await;
    }
    stack.kubectl.apply_yaml(&tls_secret_yaml()).await;
    let key_lines = uploaded_tls(&stack).await;
    assert!(key_lines.len() > 10, "a 2048-bit key has many PEM lines");
    let upload_uid = stack.ingress_uid(NS, "upload");
    eventually("the uploaded certificate is bound", || {
        let lb = stack.lb_of(&upload_uid).ok_or("no CLB")?;
        let bound = lb["Listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["Rules"].as_array().into_iter().flatten())
            .any(|r| r["Certificate"]["CertId"].is_string());
        bound.then_some(()).ok_or("not bound".to_string())
    })
    .await;
    assert_eq!(stack.clb.call_count("UploadCertificate"), 1);
    let uid = stack.ingress_uid(NS, "secure");
    eventually("the TLS Ingress has its CLB", || {
        stack.lb_of(&uid).map(|_| ()).ok_or("no CLB".to_string())
    })
    .await;
    stack.quiet(0).await;
    stack.fire_timer().await;
    let binary = run_binary(&stack, "secure").await;
    stack
        .kubectl
        .run(&["delete", "ingress", "secure", "-n", NS])
        .await;
    eventually("the CLB is released", || match stack.lb_of(&uid) {
        None => Ok(()),
        Some(_) => Err("still there".to_string()),
    })
    .await;
    stack.quiet(0).await;

    // The whole run, as the function's service account, needed nothing rbac.yaml lacks.
    let refused: Vec<String> = stack
        .kube
        .request_log()
        .into_iter()
        .filter(|r| r.status == 403)
        .map(|r| format!("{} {} ({})", r.method, r.path, r.username))
        .collect();
    assert_eq!(refused, Vec::<String>::new());

    let in_process = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    // The search is not vacuous: the function, its web server and the HTTP clients logged,
    // and the binary logged its calls.
    for seen in ["clb_ingress", "cloud call", "hyper"] {
        assert!(in_process.contains(seen), "nothing logged by {seen}");
    }
    assert!(binary.contains("DescribeLoadBalancers"), "{binary}");
    let stored_secret = stack
        .kube
        .get_object("v1", "Secret", Some(NS), "secure-cert")
        .expect("the Secret");
    assert_eq!(
        stored_secret["data"]["tls.key"],
        Value::from(base64::engine::general_purpose::STANDARD.encode(PRIVATE_KEY))
    );

    let sim = stack.clb.config();
    let mut secrets = vec![
        ("cloud secret key", sim.secret_key.clone()),
        ("session token", SESSION_TOKEN.to_string()),
        ("webhook token", WEBHOOK_TOKEN.to_string()),
        ("Secret data", PRIVATE_KEY.to_string()),
        (
            "Secret data (base64)",
            base64::engine::general_purpose::STANDARD.encode(PRIVATE_KEY),
        ),
        // The TC3 Authorization header value (its signature follows this prefix).
        (
            "TC3 Authorization",
            "TC3-HMAC-SHA256 Credential".to_string(),
        ),
    ];
    let tokens = stack.kube.bearer_tokens();
    assert!(tokens.len() >= 3, "admin, the function's, the binary's");
    secrets.extend(tokens.into_iter().map(|t| ("Kubernetes bearer token", t)));
    secrets.extend(key_lines.into_iter().map(|l| ("TLS private key (PEM)", l)));
    for (what, secret) in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !in_process.contains(secret.as_str()),
            "{what} in the test's logs"
        );
        assert!(
            !binary.contains(secret.as_str()),
            "{what} in the binary's output"
        );
    }
}
