//! The official Tencent Cloud Python SDK drives clb-sim and cannot tell it from the real API:
//! it creates, describes, tags and deletes through SDK models and asserts on model fields.

use std::path::PathBuf;

use clb_ingress_tests::clb_sim::{spawn, SimConfig};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_runs_a_full_lifecycle_against_clb_sim() {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup to create the venv with the official Tencent Cloud SDK",
        python.display()
    );
    let cfg = SimConfig {
        task_ms: 20,
        ..SimConfig::default()
    };
    let sim = spawn(cfg.clone()).await.expect("spawn clb-sim");
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/py/sdk_conformance.py"))
        .args(["--endpoint", &sim.addr().to_string()])
        .args(["--secret-id", &cfg.secret_id])
        .args(["--secret-key", &cfg.secret_key])
        .args(["--region", &cfg.region])
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .await
        .expect("run the Python SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK conformance failed:\n{stdout}\n{stderr}\n(if tencentcloud cannot be imported, run scripts/setup)"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    // The script's calls all reached the emulator, and its two deliberate auth failures were logged.
    let calls = sim.calls();
    assert!(calls
        .iter()
        .any(|c| c.action == "CreateLoadBalancer" && c.ok()));
    assert!(calls
        .iter()
        .any(|c| c.service == "tag" && c.action == "TagResources" && c.ok()));
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.code == "AuthFailure.SignatureFailure")
            .count(),
        1
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.code == "AuthFailure.SecretIdNotFound")
            .count(),
        1
    );
    for code in [
        "RequestLimitExceeded",
        "InternalError",
        "Dropped",
        "NoSuchVersion",
        "InvalidAction",
    ] {
        assert_eq!(
            calls.iter().filter(|c| c.code == code).count(),
            1,
            "{code}: {calls:?}"
        );
    }
    assert!(
        sim.load_balancers().is_empty(),
        "the script deletes what it made"
    );
}

/// The official SDK's `ssl` package (and CLB's DescribeLoadBalancerListByCertId) against
/// clb-sim: upload with tags, filter by tag, bindings read back, checked and plain deletes;
/// the private key never reaches the call log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_ssl_package_uploads_lists_and_deletes_certificates_on_clb_sim() {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "run scripts/setup (official SDK venv)");
    let cfg = SimConfig {
        task_ms: 20,
        ..SimConfig::default()
    };
    let sim = spawn(cfg.clone()).await.expect("spawn clb-sim");
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/py/sdk_conformance_ssl.py"))
        .args(["--endpoint", &sim.addr().to_string()])
        .args(["--secret-id", &cfg.secret_id])
        .args(["--secret-key", &cfg.secret_key])
        .args(["--region", &cfg.region])
        .env("NO_PROXY", "127.0.0.1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .await
        .expect("run the Python SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SSL SDK conformance failed:\n{stdout}\n{stderr}\n(run scripts/setup if tencentcloud.ssl cannot be imported)"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    let calls = sim.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.service == "ssl" && c.action == "UploadCertificate" && c.ok())
            .count(),
        2
    );
    let logged = serde_json::to_string(&calls.iter().map(|c| &c.params).collect::<Vec<_>>())
        .expect("calls as JSON");
    assert!(
        !logged.contains("KEYBYTESNEVERECHOED"),
        "a private key reached the call log"
    );
    assert!(logged.contains("<redacted>"));
    assert!(sim.load_balancers().is_empty());
}
