//! End to end: the sweep of a cluster too big for one invocation shards itself. kube-sim and
//! clb-sim in-process; the SCF path goes through the real signed client to clb-sim's
//! `Invoke`, the local path through the function's own web server.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::*;
use clb_ingress::cloud::scf::ScfFunction;
use clb_ingress::handler::{self, Engine, HandleOptions, WebhookToken};
use clb_ingress::runtime::shards::ShardDispatcher;
use clb_ingress::runtime::web;
use clb_ingress::shard::{ShardSpec, SHARD_EVENT_KEY};
use clb_ingress_tests::clb_sim::{Faults, ScriptedFault};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Ingresses per shard in these tests, and Ingresses in the cluster: 4 shards.
const SIZE: usize = 3;
const INGRESSES: usize = 10;
const SHARDS: u64 = 4;
const FUNCTION: &str = "clb-ingress";
const TOKEN: &str = "shard-test-token";
/// Polls of the local mode (the shards run in the server's background).
const POLL_TRIES: usize = 400;
const POLL_PAUSE: Duration = Duration::from_millis(25);

/// Ten Ingresses of our class; returns their names.
fn cluster(env: &Env) -> Vec<String> {
    env.node("node-1", "ins-sh01");
    env.service("web", 80, 30080);
    (0..INGRESSES)
        .map(|i| {
            let name = format!("ing-{i:02}");
            let host = format!("{name}.example.com");
            env.ingress(&name, json!({}), rules(&[(&host, "/", "web", 80)]));
            name
        })
        .collect()
}

fn all_keys(names: &[String]) -> BTreeSet<String> {
    names.iter().map(|n| format!("{NS}/{n}")).collect()
}

fn scf_engine(env: &Env, size: usize) -> Arc<dyn Engine> {
    let function = ScfFunction {
        name: FUNCTION.into(),
        namespace: "default".into(),
        qualifier: None,
    };
    Arc::new(
        env.engine()
            .with_shards(ShardDispatcher::scf(env.cloud.clone(), function, size)),
    )
}

fn opts() -> HandleOptions {
    HandleOptions::new(Instant::now() + Duration::from_secs(60), None)
}

fn timer_event() -> Value {
    json!({"Type": "Timer", "TriggerName": "sweep", "Time": "2026-11-26T19:00:00Z", "Message": ""})
}

async fn tick(engine: &Arc<dyn Engine>) -> Value {
    handler::handle(Arc::clone(engine), &timer_event(), &opts())
        .await
        .expect("timer event decodes")
}

/// The events clb-sim recorded for SCF to deliver, checked for shape.
fn recorded_events(env: &Env) -> Vec<Value> {
    env.clb
        .invocations()
        .into_iter()
        .map(|inv| {
            assert_eq!(inv.function_name, FUNCTION);
            assert_eq!(inv.namespace, "default");
            serde_json::from_str(&inv.client_context).expect("ClientContext is a JSON string")
        })
        .collect()
}

fn spec_of(event: &Value) -> ShardSpec {
    ShardSpec::from_event_body(&event[SHARD_EVENT_KEY]).expect("a well-formed shard event")
}

fn converged(env: &Env, name: &str) -> bool {
    env.ingress_ip(name).is_some()
}

#[tokio::test]
async fn a_big_sweep_invokes_one_scf_shard_per_slice_and_the_shards_converge_every_ingress() {
    let env = env().await;
    let names = cluster(&env);
    // Another controller's Ingress: neither the coordinator nor any shard spends a call on it.
    env.ingress(
        "other-class",
        json!({"kubernetes.io/ingress.class": "nginx"}),
        rules(&[("other.example.com", "/", "web", 80)]),
    );
    let engine = scf_engine(&env, SIZE);

    let report = tick(&engine).await;
    let shards = &report["sweep"]["shards"];
    assert_eq!(shards["count"], SHARDS, "{report}");
    assert_eq!(shards["invoked"], SHARDS, "{report}");
    assert_eq!(shards["ingresses"], INGRESSES as u64);
    assert!(shards.get("failed").is_none(), "{report}");
    // The coordinator reconciled nothing itself.
    assert_eq!(report["sweep"]["ingresses"], json!({}), "{report}");
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), 0);
    assert_eq!(count(&env.clb.calls(), "Invoke"), SHARDS as usize);

    let events = recorded_events(&env);
    assert_eq!(events.len(), SHARDS as usize);
    let specs: Vec<ShardSpec> = events.iter().map(spec_of).collect();
    let indices: BTreeSet<u32> = specs.iter().map(|s| s.index).collect();
    assert_eq!(indices, (0..SHARDS as u32).collect());
    assert!(specs
        .iter()
        .all(|s| s.count == SHARDS as u32 && s.generation == shards["generation"]));

    // SCF delivers each ClientContext as the event of a new invocation.
    let mut covered = Vec::new();
    for event in &events {
        let shard_report = handler::handle(Arc::clone(&engine), event, &opts())
            .await
            .expect("shard event decodes");
        assert_eq!(shard_report["shard"], event[SHARD_EVENT_KEY]);
        assert!(shard_report["sweep"].is_null(), "{shard_report}");
        for r in shard_report["results"].as_array().expect("results") {
            assert_eq!(r["status"], "converged", "{shard_report}");
            covered.push(r["ingress"].as_str().expect("key").to_string());
        }
    }
    covered.sort();
    let want: Vec<String> = all_keys(&names).into_iter().collect();
    assert_eq!(covered, want, "every Ingress in exactly one shard");
    for name in &names {
        assert!(converged(&env, name), "{name} has no address");
    }
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), INGRESSES);
}

#[tokio::test]
async fn a_sweep_within_the_shard_size_runs_itself_and_invokes_nothing() {
    let env = env().await;
    let names = cluster(&env);
    let engine = scf_engine(&env, INGRESSES);

    let report = tick(&engine).await;
    assert!(report["sweep"].get("shards").is_none(), "{report}");
    assert_eq!(report["sweep"]["ingresses"]["converged"], INGRESSES as u64);
    assert_eq!(count(&env.clb.calls(), "Invoke"), 0);
    assert!(names.iter().all(|n| converged(&env, n)));
}

#[tokio::test]
async fn a_failed_shard_invocation_is_reported_and_the_other_shards_still_run() {
    let env = env().await;
    let names = cluster(&env);
    let engine = scf_engine(&env, SIZE);
    env.clb.set_faults(Faults {
        scripted: vec![ScriptedFault {
            action: "Invoke".into(),
            code: "ResourceNotFound.Function".into(),
            count: 1,
        }],
        ..Faults::default()
    });

    let report = tick(&engine).await;
    let shards = &report["sweep"]["shards"];
    assert_eq!(shards["invoked"], SHARDS - 1, "{report}");
    let failed = shards["failed"].as_array().expect("failed shards listed");
    assert_eq!(failed.len(), 1, "{report}");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ResourceNotFound.Function")),
        "{report}"
    );
    let lost = failed[0]["index"].as_u64().expect("index") as u32;

    let events = recorded_events(&env);
    assert_eq!(events.len(), SHARDS as usize - 1);
    assert!(events.iter().all(|e| spec_of(e).index != lost));
    for event in &events {
        handler::handle(Arc::clone(&engine), event, &opts())
            .await
            .expect("shard event decodes");
    }
    let lost_spec = ShardSpec::new(lost, SHARDS as u32, "any").expect("spec");
    let in_lost_shard = names
        .iter()
        .filter(|n| lost_spec.contains(&clb_ingress::handler::IngressKey::new(NS, n.as_str())))
        .count();
    assert!(in_lost_shard > 0, "the lost shard has Ingresses to miss");
    for name in &names {
        let in_lost = lost_spec.contains(&clb_ingress::handler::IngressKey::new(NS, name.as_str()));
        assert_eq!(converged(&env, name), !in_lost, "{name}");
    }

    // The next tick invokes every shard again, the lost one included.
    let again = tick(&engine).await;
    assert_eq!(again["sweep"]["shards"]["invoked"], SHARDS, "{again}");
    let later: Vec<u32> = recorded_events(&env)[SHARDS as usize - 1..]
        .iter()
        .map(|e| spec_of(e).index)
        .collect();
    assert!(later.contains(&lost), "{later:?}");
}

#[tokio::test]
async fn orphans_are_released_once_by_the_coordinator_and_never_by_shards() {
    let env = env().await;
    cluster(&env);
    let engine = scf_engine(&env, SIZE);
    let orphan_tags = |uid: &'static str| {
        [
            (TAG_CREATED_BY, "yes"),
            (TAG_CLUSTER, CLUSTER),
            (TAG_UID, uid),
        ]
    };
    let first = env
        .clb
        .insert_load_balancer("OPEN", "orphan-1", &orphan_tags("uid-gone-1"));

    let report = tick(&engine).await;
    assert_eq!(report["sweep"]["orphans_released"], 1, "{report}");
    assert!(env.clb.load_balancer(&first).is_none());
    assert_eq!(count(&env.clb.calls(), "DeleteLoadBalancer"), 1);

    // An orphan appearing now is the next coordinator's; the shards leave it alone.
    let second = env
        .clb
        .insert_load_balancer("OPEN", "orphan-2", &orphan_tags("uid-gone-2"));
    env.clb.clear_calls();
    for event in recorded_events(&env) {
        handler::handle(Arc::clone(&engine), &event, &opts())
            .await
            .expect("shard event decodes");
    }
    assert!(env.clb.load_balancer(&second).is_some());
    assert_eq!(count(&env.clb.calls(), "DeleteLoadBalancer"), 0);
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), INGRESSES);
}

#[tokio::test]
async fn locally_the_sweep_posts_its_shards_to_its_own_server_and_every_ingress_converges() {
    let env = env().await;
    let names = cluster(&env);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let token = WebhookToken::new(TOKEN).expect("token");
    let dispatcher =
        ShardDispatcher::http(&format!("http://{addr}"), token.clone(), SIZE).expect("url");
    let engine: Arc<dyn Engine> = Arc::new(env.engine().with_shards(dispatcher));
    let server = tokio::spawn(web::serve(
        listener,
        engine,
        web::ServeOptions::new(token),
        std::future::pending(),
    ));

    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/timer");
    let report: Value = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&timer_event())
        .send()
        .await
        .expect("timer POST")
        .json()
        .await
        .expect("JSON report");
    assert_eq!(report["sweep"]["shards"]["invoked"], SHARDS, "{report}");
    assert_eq!(count(&env.clb.calls(), "Invoke"), 0, "no SCF call locally");

    let mut tries = 0;
    while !names.iter().all(|n| converged(&env, n)) {
        tries += 1;
        assert!(tries < POLL_TRIES, "shards never converged every Ingress");
        tokio::time::sleep(POLL_PAUSE).await;
    }
    assert_eq!(count(&env.clb.calls(), "CreateLoadBalancer"), INGRESSES);

    // The shard route is bearer-checked like every other.
    let refused = http
        .post(format!("http://{addr}/v1/invoke"))
        .json(&ShardSpec::new(0, 1, "g").expect("spec").event())
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), 401);
    server.abort();
}

#[tokio::test]
async fn clb_sim_invoke_refuses_what_the_real_api_would_and_lists_accepted_calls() {
    let env = env().await;
    let call = |params: Value| {
        let cloud = env.cloud.clone();
        async move { cloud.call("scf", "2018-04-16", "Invoke", &params).await }
    };
    let code = |r: Result<Value, clb_ingress::cloud::CloudError>| {
        r.expect_err("refused")
            .code()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        code(call(json!({"InvocationType": "Event", "ClientContext": "{}"})).await),
        "MissingParameter"
    );
    assert_eq!(
        code(call(json!({"FunctionName": "f", "InvocationType": "RequestResponse"})).await),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(
            call(json!({"FunctionName": "f", "InvocationType": "Event", "ClientContext": "{"}))
                .await
        ),
        "InvalidParameterValue"
    );
    let big = json!({"x": "y".repeat(128 * 1024)}).to_string();
    assert_eq!(
        code(
            call(json!({"FunctionName": "f", "InvocationType": "Event", "ClientContext": big}))
                .await
        ),
        "InvalidParameterValue"
    );
    assert!(env.clb.invocations().is_empty());

    let ok = call(json!({"FunctionName": "f", "InvocationType": "Event",
                         "Namespace": "prod", "ClientContext": "{\"a\":1}"}))
    .await
    .expect("accepted");
    assert!(ok["Result"]["FunctionRequestId"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let listed: Value = reqwest::get(format!("{}/_sim/invocations", env.clb.url()))
        .await
        .expect("admin GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed[0]["namespace"], "prod");
    assert_eq!(listed[0]["qualifier"], "$LATEST");
    assert_eq!(listed[0]["client_context"], "{\"a\":1}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}
