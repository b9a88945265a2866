//! The sweep's batch read of every CLB of the cluster (clb-batch-reads.md, "Minimum reads for
//! a steady sweep"): DescribeLoadBalancers by our cluster tag, 100 a page; DescribeTargetHealth,
//! 30 CLBs a call, for listeners, rules and targets with weights; DescribeListeners (the only
//! read with certificates and the SNI switch) only for the CLBs the caller names.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::clb::{nullable, LoadBalancer};
use super::client::CloudClient;
use super::error::CloudError;
use super::observe::{cloud_lb, read_listeners};
use crate::model::lb::{Backend, Protocol, TargetKey, DEFAULT_WEIGHT};
use crate::model::service_config::RuleAttributes;
use crate::plan::{CloudLb, CloudListener, CloudRule, CloudTarget, LB_STATUS_CREATING};

/// `DescribeTargetHealth.LoadBalancerIds` per call (clb-batch-reads.md: up to 30, written into
/// the SDK docs in 2026; earlier docs gave no limit).
pub const TARGET_HEALTH_BATCH: usize = 30;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTargetHealthRequest {
    pub load_balancer_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DescribeTargetHealthResponse {
    #[serde(deserialize_with = "nullable")]
    pub load_balancers: Vec<LoadBalancerHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LoadBalancerHealth {
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_id: String,
    #[serde(deserialize_with = "nullable")]
    pub listeners: Vec<ListenerHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ListenerHealth {
    #[serde(deserialize_with = "nullable")]
    pub listener_id: String,
    #[serde(deserialize_with = "nullable")]
    pub listener_name: String,
    #[serde(deserialize_with = "nullable")]
    pub protocol: String,
    #[serde(deserialize_with = "nullable")]
    pub port: i64,
    #[serde(deserialize_with = "nullable")]
    pub rules: Vec<RuleHealth>,
}

/// Layer-4 listeners show one rule with null `Domain`/`Url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RuleHealth {
    #[serde(deserialize_with = "nullable")]
    pub location_id: String,
    #[serde(deserialize_with = "nullable")]
    pub domain: String,
    #[serde(deserialize_with = "nullable")]
    pub url: String,
    #[serde(deserialize_with = "nullable")]
    pub targets: Vec<TargetHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TargetHealth {
    #[serde(rename = "IP", deserialize_with = "nullable")]
    pub ip: String,
    #[serde(deserialize_with = "nullable")]
    pub port: i64,
    #[serde(deserialize_with = "nullable")]
    pub target_id: String,
    /// Added to the SDK in April 2025 (clb-batch-reads.md).
    pub weight: Option<i64>,
}

impl CloudClient {
    /// Listeners, rules and targets of up to [`TARGET_HEALTH_BATCH`] CLBs in one call.
    pub async fn describe_target_health(
        &self,
        req: &DescribeTargetHealthRequest,
    ) -> Result<DescribeTargetHealthResponse, CloudError> {
        self.clb("DescribeTargetHealth", req).await
    }
}

/// Every CLB of the cluster as the sweep sees it.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Every CLB carrying our cluster tag, by id, as DescribeLoadBalancers shows it.
    pub load_balancers: BTreeMap<String, LoadBalancer>,
    /// The CLBs read in full, by id: listeners, rules and targets; certificates and the SNI
    /// switch only for those in `full`.
    pub views: BTreeMap<String, CloudLb>,
    /// CLBs read by DescribeListeners too (their attributes are real, not unknown).
    pub full: BTreeSet<String>,
    /// DescribeTargetHealth and DescribeListeners calls made.
    pub calls: u32,
}

/// Reads the listeners, rules and targets of `load_balancers` (every CLB of the cluster, as
/// [`cluster_load_balancers`](super::observe::cluster_load_balancers) listed them).
/// `full_read` names the CLBs whose listener attributes must be read too (one
/// DescribeListeners each). A CLB still being created, or missing from the
/// DescribeTargetHealth answer (deleted meanwhile), gets no view: the caller looks at it the
/// slow way.
pub async fn observe_fleet(
    client: &CloudClient,
    load_balancers: BTreeMap<String, LoadBalancer>,
    full_read: impl Fn(&str) -> bool,
) -> Result<Fleet, CloudError> {
    let mut calls = 0;
    let mut views = BTreeMap::new();
    // A CLB of another region (`cross-region-id`) gets no view either: the batch reads are
    // made in `client`'s region, and the one-Ingress path reads it in its own.
    let ready: Vec<&LoadBalancer> = load_balancers
        .values()
        .filter(|lb| lb.status.unwrap_or(0).max(0) as u64 != LB_STATUS_CREATING)
        .filter(|lb| lb.region.is_empty() || lb.region == client.region())
        .collect();
    for batch in ready.chunks(TARGET_HEALTH_BATCH) {
        let answer = client
            .describe_target_health(&DescribeTargetHealthRequest {
                load_balancer_ids: batch.iter().map(|lb| lb.load_balancer_id.clone()).collect(),
            })
            .await?;
        calls += 1;
        let mut by_id: HashMap<String, LoadBalancerHealth> = answer
            .load_balancers
            .into_iter()
            .map(|h| (h.load_balancer_id.clone(), h))
            .collect();
        for lb in batch {
            let Some(health) = by_id.remove(&lb.load_balancer_id) else {
                continue;
            };
            let mut view = cloud_lb(lb)?;
            view.listeners = health.listeners.iter().filter_map(listener).collect();
            views.insert(view.id.clone(), view);
        }
    }
    let mut full = BTreeSet::new();
    for (id, view) in views.iter_mut() {
        if !full_read(id) {
            continue;
        }
        calls += read_attributes(client, view).await?;
        full.insert(id.clone());
    }
    Ok(Fleet {
        load_balancers,
        views,
        full,
        calls,
    })
}

/// Fills the listener and rule attributes DescribeTargetHealth does not show (certificates,
/// SNI, default server) from one DescribeListeners, keeping the targets already read.
async fn read_attributes(client: &CloudClient, view: &mut CloudLb) -> Result<u32, CloudError> {
    let mut attributes = view.clone();
    let calls = read_listeners(client, &mut attributes, false).await?;
    let rules: HashMap<&str, &CloudRule> = attributes
        .listeners
        .iter()
        .flat_map(|l| l.rules.iter().map(|r| (r.location_id.as_str(), r)))
        .collect();
    let listeners: HashMap<&str, &CloudListener> = attributes
        .listeners
        .iter()
        .map(|l| (l.id.as_str(), l))
        .collect();
    for l in view.listeners.iter_mut() {
        if let Some(a) = listeners.get(l.id.as_str()) {
            l.certificate = a.certificate.clone();
            l.sni = a.sni;
            l.keepalive = a.keepalive;
        }
        for r in l.rules.iter_mut() {
            if let Some(a) = rules.get(r.location_id.as_str()) {
                r.certificate = a.certificate.clone();
                r.default_server = a.default_server;
                r.attributes = a.attributes.clone();
                r.redirect = a.redirect.clone();
            }
        }
    }
    // A listener created between the two reads shows up only in DescribeListeners: its
    // targets are unknown, so take it without targets (the plan then binds them again, which
    // the batch register treats as done).
    for a in &attributes.listeners {
        if !view.listeners.iter().any(|l| l.id == a.id) {
            view.listeners.push(a.clone());
        }
    }
    Ok(calls)
}

fn listener(l: &ListenerHealth) -> Option<CloudListener> {
    let protocol = Protocol::from_api(&l.protocol)?;
    let port = u16::try_from(l.port).ok()?;
    Some(CloudListener {
        id: l.listener_id.clone(),
        protocol,
        port,
        name: l.listener_name.clone(),
        certificate: None,
        sni: false,
        keepalive: None,
        rules: l
            .rules
            .iter()
            .filter(|r| !r.location_id.is_empty())
            .map(|r| CloudRule {
                location_id: r.location_id.clone(),
                domain: r.domain.clone(),
                url: r.url.clone(),
                certificate: None,
                default_server: false,
                attributes: RuleAttributes::default(),
                targets: r.targets.iter().filter_map(target).collect(),
                // DescribeTargetHealth does not show redirects; the full read fills them in.
                redirect: None,
            })
            .collect(),
    })
}

/// ASSUMPTION (clb-batch-reads.md names the fields, not their content for ENI targets):
/// `TargetId` carries the CVM instance id (`ins-…`) of an instance target; any other target is
/// known by its `IP` (an ENI IP).
fn target_backend(t: &TargetHealth) -> Option<Backend> {
    if t.target_id.starts_with("ins-") {
        Some(Backend::Instance(t.target_id.clone()))
    } else if !t.ip.is_empty() {
        Some(Backend::EniIp(t.ip.clone()))
    } else {
        None
    }
}

fn target(t: &TargetHealth) -> Option<CloudTarget> {
    Some(CloudTarget {
        key: TargetKey {
            backend: target_backend(t)?,
            port: u16::try_from(t.port).ok()?,
        },
        weight: t.weight.unwrap_or(i64::from(DEFAULT_WEIGHT)).clamp(0, 100) as u16,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn target_health_decodes_listeners_rules_and_weighted_targets() {
        let answer: DescribeTargetHealthResponse = serde_json::from_value(json!({
            "LoadBalancers": [{"LoadBalancerId": "lb-1", "LoadBalancerName": "n", "Listeners": [
                {"ListenerId": "lbl-1", "ListenerName": "TKE-DEDICATED-LISTENER", "Protocol": "HTTP",
                 "Port": 80, "Rules": [{"LocationId": "loc-1", "Domain": "a.example", "Url": "/",
                    "Targets": [{"IP": "10.0.0.1", "Port": 30080, "TargetId": "ins-1", "HealthStatus": true,
                                 "Weight": 7, "TargetGroupId": null},
                                {"IP": "10.0.0.9", "Port": 8080, "TargetId": "", "Weight": null}]}]},
                {"ListenerId": "lbl-2", "ListenerName": "x", "Protocol": "TCP", "Port": 9000,
                 "Rules": [{"LocationId": null, "Domain": null, "Url": null, "Targets": null}]}]}],
            "RequestId": "r"
        }))
        .unwrap();
        let listeners: Vec<CloudListener> = answer.load_balancers[0]
            .listeners
            .iter()
            .filter_map(listener)
            .collect();
        assert_eq!(listeners.len(), 2);
        assert!(
            listeners[1].rules.is_empty(),
            "a layer-4 listener's null rule is not a rule"
        );
        let targets = &listeners[0].rules[0].targets;
        assert_eq!(targets[0].key.backend, Backend::Instance("ins-1".into()));
        assert_eq!(targets[0].weight, 7);
        assert_eq!(targets[1].key.backend, Backend::EniIp("10.0.0.9".into()));
        assert_eq!(targets[1].weight, DEFAULT_WEIGHT);
    }
}
