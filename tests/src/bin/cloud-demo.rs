//! Interim demo for issue 2: the cloud client driving clb-sim in-process.
//!
//! Starts the emulator on 127.0.0.1:0, then through `clb_ingress::cloud::CloudClient`
//! creates a tagged CLB, an HTTP listener, two rules and their targets, prints what the
//! API reports, deletes it all, and prints the calls made per action.

use std::time::Duration;

use clb_ingress::cloud::clb::*;
use clb_ingress::cloud::{CloudClient, CloudConfig, Credentials, RetryPolicy};
use clb_ingress_tests::clb_sim::{self, SimConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = clb_sim::spawn(SimConfig {
        task_ms: 100,
        ..SimConfig::default()
    })
    .await?;
    let sc = sim.config().clone();
    println!(
        "clb-sim listening on {} (region {}, tasks take {} ms)\n",
        sim.url(),
        sc.region,
        sc.task_ms
    );

    let config = CloudConfig::builder(Credentials::new(sc.secret_id, sc.secret_key), sc.region)
        .endpoint(sim.url())
        .task_poll_interval(Duration::from_millis(60))
        .retry(RetryPolicy {
            base: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
        .build()?;
    let client = CloudClient::new(config)?;

    step("CreateLoadBalancer (tags set in the create call; returns once Status is 1)");
    let lb = client
        .create_load_balancer(&CreateLoadBalancerRequest {
            load_balancer_type: "OPEN".into(),
            forward: Some(1),
            load_balancer_name: Some("demo-ingress".into()),
            tags: vec![
                TagInfo::new("tke-createdBy-flag", "yes"),
                TagInfo::new("tke-clusterId", "cls-demo"),
                TagInfo::new("tke-lb-ingress-uuid", "7d3c6c1e-demo-uid"),
            ],
            client_token: Some("cls-demo/7d3c6c1e-demo-uid".into()),
            ..Default::default()
        })
        .await?
        .remove(0);
    let lb_id = lb.load_balancer_id.clone();
    println!("  created {lb_id}");

    step("CreateListener HTTP:80");
    let listener_id = client
        .create_listener(&CreateListenerRequest {
            load_balancer_id: lb_id.clone(),
            ports: vec![80],
            protocol: "HTTP".into(),
            listener_names: vec!["TKE-DEDICATED-LISTENER".into()],
            ..Default::default()
        })
        .await?
        .listener_ids
        .remove(0);
    println!("  listener {listener_id}");

    step("CreateRule demo.example.com / and /api (one call)");
    let locations = client
        .create_rule(&CreateRuleRequest {
            load_balancer_id: lb_id.clone(),
            listener_id: listener_id.clone(),
            rules: ["/", "/api"]
                .iter()
                .map(|url| RuleInput {
                    domain: Some("demo.example.com".into()),
                    url: url.to_string(),
                    ..Default::default()
                })
                .collect(),
        })
        .await?
        .location_ids;
    println!("  rules {}", locations.join(", "));

    step("BatchRegisterTargets (two pods per rule)");
    let mut targets = Vec::new();
    for (i, loc) in locations.iter().enumerate() {
        for n in 1..=2 {
            targets.push(BatchTarget {
                listener_id: listener_id.clone(),
                location_id: Some(loc.clone()),
                eni_ip: Some(format!("10.0.{i}.{n}")),
                port: Some(8080),
                weight: Some(10),
                ..Default::default()
            });
        }
    }
    client
        .batch_register_targets(&BatchTargetsRequest {
            load_balancer_id: lb_id.clone(),
            targets,
        })
        .await?;

    step("Describe everything");
    let lbs = client
        .describe_load_balancers(&DescribeLoadBalancersRequest {
            filters: vec![Filter::new(
                "tag:tke-lb-ingress-uuid",
                ["7d3c6c1e-demo-uid"],
            )],
            ..Default::default()
        })
        .await?;
    for lb in &lbs.load_balancer_set {
        println!(
            "  CLB {} \"{}\" {} status={} vips={:?} domain={}",
            lb.load_balancer_id,
            lb.load_balancer_name,
            lb.load_balancer_type,
            lb.status.unwrap_or(-1),
            lb.load_balancer_vips,
            lb.load_balancer_domain
        );
        for t in &lb.tags {
            println!("    tag {}={}", t.tag_key, t.tag_value);
        }
    }
    let listeners = client
        .describe_listeners(&DescribeListenersRequest {
            load_balancer_id: lb_id.clone(),
            ..Default::default()
        })
        .await?;
    let bound = client
        .describe_targets(&DescribeTargetsRequest {
            load_balancer_id: lb_id.clone(),
            ..Default::default()
        })
        .await?;
    for l in &listeners.listeners {
        println!(
            "  listener {} {}:{} \"{}\"",
            l.listener_id, l.protocol, l.port, l.listener_name
        );
        for r in &l.rules {
            println!(
                "    rule {} {}{} (scheduler {})",
                r.location_id, r.domain, r.url, r.scheduler
            );
            let rule_targets = bound
                .listeners
                .iter()
                .filter(|b| b.listener_id == l.listener_id)
                .flat_map(|b| b.rules.iter())
                .filter(|rt| rt.location_id == r.location_id)
                .flat_map(|rt| rt.targets.iter());
            for t in rule_targets {
                println!(
                    "      target {} {}:{} weight {}",
                    t.kind,
                    t.private_ip_addresses.join(","),
                    t.port,
                    t.weight.unwrap_or_default()
                );
            }
        }
    }

    step("DeleteLoadBalancer");
    client
        .delete_load_balancer(&DeleteLoadBalancerRequest {
            load_balancer_ids: vec![lb_id.clone()],
            force_delete: None,
        })
        .await?;
    let left = client
        .describe_load_balancers(&DescribeLoadBalancersRequest::default())
        .await?;
    println!("  CLBs left: {}", left.load_balancer_set.len());

    step("Calls made (client count; the emulator logged the same)");
    for (action, c) in client.stats().snapshot() {
        println!(
            "  {action:<30} attempts {:>3}  ok {:>3}  (emulator saw {})",
            c.attempts,
            c.successes,
            sim.call_count(&action)
        );
    }
    println!("  total {}", client.stats().total_attempts());
    Ok(())
}

fn step(title: &str) {
    println!("== {title}");
}
