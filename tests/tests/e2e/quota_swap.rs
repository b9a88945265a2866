//! A listener swap on a CLB at its listener quota, end to end (issue 12 §3): real `kubectl`
//! against kube-sim, whose audit webhook drives the function, which drives clb-sim (which
//! refuses a 51st listener, `LimitExceeded`); the CLB is read back with the official SDK.
//!
//! A CLB shared through `existLbId`: the Ingress holds one listener, the user has put 49 of
//! their own beside it, so it holds its 50. The Ingress moves its port (`listen-ports`
//! 8080 → 8081): the old listener goes first, then the new one is made, in one run, with no
//! refused call and no Warning; the user's listeners are untouched and a next run writes
//! nothing.

use clb_ingress::model::limits::LISTENERS_PER_LB;
use clb_ingress_tests::clb_sim::client::SimClient;
use serde_json::json;

use crate::support::stack::*;
use crate::tke_rules::{apply_with, sdk_listeners, sdk_read, warnings};

const NS: &str = "shop";
const LISTEN_PORTS: &str = "ingress.cloud.tencent.com/listen-ports";
/// The user's own listeners: HTTP 9000.. (one CreateListener takes up to 50 ports).
const USER_PORTS: u16 = 9000;

fn shared_web(lb_id: &str) -> String {
    shop_ingress_yaml(
        NS,
        "web",
        &format!(
            "    kubernetes.io/ingress.existLbId: {lb_id}\n    {LISTEN_PORTS}: '[{{\"HTTP\":8080}}]'"
        ),
    )
}

/// Ports of the listeners we made on `lb_id` that carry their rules (clb-sim state).
fn our_ports(stack: &Stack, lb_id: &str) -> Vec<i64> {
    let Some(lb) = stack.clb.load_balancer(lb_id) else {
        return Vec::new();
    };
    let mut ports: Vec<i64> = lb
        .listeners
        .iter()
        .filter(|l| l.name == clb_ingress::model::ownership::OUR_LISTENER_NAME)
        .filter(|l| !l.rules.is_empty() && l.rules.iter().all(|r| !r.targets.is_empty()))
        .map(|l| l.port)
        .collect();
    ports.sort();
    ports
}

async fn our_listeners_become(stack: &Stack, lb_id: &str, want: &[i64]) {
    eventually(&format!("our listeners on {lb_id} are {want:?}"), || {
        let got = our_ports(stack, lb_id);
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_moved_on_a_clb_at_its_listener_quota_swaps_in_one_run_without_a_refused_call() {
    let stack = Stack::start().await;
    let lb_id = stack
        .clb
        .insert_load_balancer("OPEN", "shared", &[("team", "web")]);
    apply_with(&stack, &shared_web(&lb_id)).await;
    our_listeners_become(&stack, &lb_id, &[8080]).await;
    stack.quiet(0).await;

    // The user fills the shared CLB to its quota with listeners of their own.
    let user = USER_PORTS..USER_PORTS + LISTENERS_PER_LB as u16 - 1;
    let made = SimClient::new(&stack.clb)
        .clb(
            "CreateListener",
            json!({"LoadBalancerId": lb_id, "Protocol": "HTTP",
                   "Ports": user.clone().collect::<Vec<_>>(),
                   "ListenerNames": user.clone().map(|_| "user-listener").collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(made.error_code(), None, "{:?}", made.response());
    stack.clb.finish_tasks();
    let before = sdk_read(&stack, &lb_id, false).await;
    assert_eq!(
        sdk_listeners(&before).len(),
        LISTENERS_PER_LB,
        "at the quota"
    );
    stack.clb.clear_calls();

    stack
        .kubectl
        .annotate_ingress(NS, "web", &format!(r#"{LISTEN_PORTS}=[{{"HTTP":8081}}]"#))
        .await;
    our_listeners_become(&stack, &lb_id, &[8081]).await;
    stack.quiet(0).await;

    let writes: Vec<String> = stack.cloud_writes().into_iter().map(|c| c.action).collect();
    let count = |a: &str| writes.iter().filter(|w| *w == a).count();
    assert_eq!(count("DeleteLoadBalancerListeners"), 1, "{writes:?}");
    assert_eq!(count("CreateListener"), 1, "{writes:?}");
    assert_eq!(
        writes.first().map(String::as_str),
        Some("DeleteLoadBalancerListeners"),
        "the old listener makes room first: {writes:?}"
    );
    let refused: Vec<_> = stack
        .clb
        .calls()
        .into_iter()
        .filter(|c| c.code != "Ok")
        .map(|c| format!("{} {}", c.action, c.code))
        .collect();
    assert!(refused.is_empty(), "no refused call: {refused:?}");
    assert_eq!(
        warnings(&stack, "web"),
        Vec::<String>::new(),
        "no Warning (E4004)"
    );

    // Read back: the user's 49 are untouched, ours moved to 8081, still 50 in all.
    let after = sdk_read(&stack, &lb_id, false).await;
    let mut want: Vec<String> = user.map(|p| format!("HTTP:{p}")).collect();
    want.push("HTTP:8081".into());
    let mut got = sdk_listeners(&after);
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // Converged: the next run writes nothing.
    let writes = stack.cloud_writes().len();
    stack.fire_timer().await;
    assert_eq!(stack.cloud_writes().len(), writes, "steady: no write");
}
