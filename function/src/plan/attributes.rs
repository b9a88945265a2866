//! TkeServiceConfig attributes → ModifyRule / ModifyListener / ModifyDomainAttributes
//! actions. Pure: what a section asks for against what the CLB shows, only for the listeners
//! and rules this Ingress has (a TkeServiceConfig never creates anything), and only the
//! attributes the section spells out that differ (a steady state plans nothing).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{default_domain, resolve_domain, Action, CloudLb, CloudListener, ListenerRef, RuleRef};
use crate::model::desired::DesiredRule;
use crate::model::lb::{Domain, Protocol, RuleKey};
use crate::model::ownership;
use crate::model::problem::codes;
use crate::model::service_config::ServiceConfig;
use crate::model::Problem;

/// One listener the plan keeps or creates, with its rules (default domain resolved when the
/// CLB is known): what a TkeServiceConfig section may select.
pub(super) struct Selected<'a> {
    pub listener: ListenerRef,
    /// The listener as observed; `None` when this plan creates it.
    pub cloud: Option<&'a CloudListener>,
    pub rules: BTreeMap<RuleKey, &'a DesiredRule>,
}

fn warn(config: &ServiceConfig, message: String) -> Problem {
    Problem::warning(
        codes::INVALID_TKE_SERVICE_CONFIG,
        format!("TkeServiceConfig {}: {message}", config.name),
    )
}

/// The attribute actions for `selected` listeners, in section order (listener, then rules).
pub(super) fn plan(
    config: &ServiceConfig,
    default: Option<&str>,
    selected: &[Selected<'_>],
    problems: &mut Vec<Problem>,
) -> Vec<Action> {
    let mut out = Vec::new();
    for s in selected {
        let Some(section) = config.listeners.get(&s.listener.key) else {
            continue;
        };
        let key = s.listener.key;
        if let Some(want) = section.keepalive {
            let have = s.cloud.and_then(|c| c.keepalive);
            if have != Some(want) {
                out.push(Action::SetKeepalive {
                    listener: s.listener.clone(),
                    enable: want,
                });
            }
        }
        if let Some(domain) = &section.default_server {
            let domain = resolve_domain(domain, default);
            if !s.rules.keys().any(|k| k.domain == domain) {
                problems.push(warn(
                    config,
                    format!("defaultServer {domain} has no rule on {key}; not set"),
                ));
            } else if let Domain::Name(name) = &domain {
                // (Unresolved, the default domain of a CLB this plan creates: the next run,
                // which knows its VIP, sets it.)
                let is_default = s.cloud.is_some_and(|c| {
                    c.rules
                        .iter()
                        .any(|r| &r.domain == name && r.default_server)
                });
                if !is_default {
                    out.push(Action::SetDefaultServer {
                        listener: s.listener.clone(),
                        domain: domain.clone(),
                    });
                }
            }
        }
        for ((domain, url), want) in &section.rules {
            let rule_key = RuleKey {
                domain: resolve_domain(domain, default),
                url: url.clone(),
            };
            if !s.rules.contains_key(&rule_key) {
                continue;
            }
            let mut want = want.clone();
            if want.forward_type.is_some() && key.protocol != Protocol::Https {
                // SDK: ForwardType takes effect on HTTPS listeners only (the API refuses it).
                problems.push(warn(
                    config,
                    format!("forwardType of {rule_key} on {key}: only HTTPS listeners take one; ignored"),
                ));
                want.forward_type = None;
            }
            let observed = s.cloud.and_then(|c| c.rule_by_key(&rule_key));
            let have = observed.map(|r| r.attributes.clone()).unwrap_or_default();
            let hc = &want.health_check;
            let interval = hc.interval_time.or(have.health_check.interval_time);
            let timeout = hc.timeout.or(have.health_check.timeout);
            if hc.interval_time.is_some() || hc.timeout.is_some() {
                if let (Some(i), Some(t)) = (interval, timeout) {
                    if i <= t {
                        problems.push(warn(
                            config,
                            format!("healthCheck of {rule_key} on {key}: intervalTime ({i}) must exceed timeout ({t}); health check left as it is"),
                        ));
                        want.health_check = Default::default();
                    }
                }
            }
            let changes = want.changes(&have);
            if changes.is_empty() {
                continue;
            }
            out.push(Action::ModifyRule {
                rule: RuleRef {
                    listener: s.listener.clone(),
                    key: rule_key,
                    location_id: observed.map(|r| r.location_id.clone()),
                },
                attributes: changes,
            });
        }
    }
    out
}

/// The `spec` of the TkeServiceConfig that reflects `lb` as it is (the automatic
/// `<ingress>-auto-ingress-config`): one section per listener of ours, one rule entry per
/// rule with every attribute the CLB shows. Read back by [`plan`], it changes nothing.
pub fn auto_config_spec(lb: &CloudLb) -> Value {
    let vip = default_domain(lb);
    let mut listeners = Vec::new();
    for l in lb
        .listeners
        .iter()
        .filter(|l| ownership::is_our_listener(&l.name))
        .filter(|l| matches!(l.protocol, Protocol::Http | Protocol::Https))
    {
        let domain_of = |d: &str| {
            if Some(d) == vip {
                String::new()
            } else {
                d.to_string()
            }
        };
        let mut section = Map::new();
        section.insert("protocol".into(), l.protocol.as_api().into());
        section.insert("port".into(), l.port.into());
        if let Some(k) = l.keepalive {
            section.insert("keepaliveEnable".into(), u8::from(k).into());
        }
        if let Some(d) = l.rules.iter().find(|r| r.default_server) {
            section.insert("defaultServer".into(), domain_of(&d.domain).into());
        }
        let mut domains: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for r in &l.rules {
            let a = &r.attributes;
            let mut rule = Map::new();
            rule.insert("url".into(), r.url.clone().into());
            if let Some(s) = &a.scheduler {
                rule.insert("scheduler".into(), s.clone().into());
            }
            if let Some(t) = a.session_expire_time {
                let session = match t {
                    0 => json!({"enable": false}),
                    t => json!({"enable": true, "sessionExpireTime": t}),
                };
                rule.insert("session".into(), session);
            }
            if l.protocol == Protocol::Https {
                if let Some(f) = &a.forward_type {
                    rule.insert("forwardType".into(), f.clone().into());
                }
            }
            let h = &a.health_check;
            let mut hc = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    hc.insert(k.into(), v);
                }
            };
            put("enable", h.enable.map(Value::from));
            put("intervalTime", h.interval_time.map(Value::from));
            put("timeout", h.timeout.map(Value::from));
            put("healthNum", h.health_num.map(Value::from));
            put("unHealthNum", h.unhealth_num.map(Value::from));
            put("httpCode", h.http_code.map(Value::from));
            put("httpCheckPath", h.http_check_path.clone().map(Value::from));
            put(
                "httpCheckDomain",
                h.http_check_domain.clone().map(Value::from),
            );
            put(
                "httpCheckMethod",
                h.http_check_method.clone().map(Value::from),
            );
            put("sourceIpType", h.source_ip_type.map(Value::from));
            if !hc.is_empty() {
                rule.insert("healthCheck".into(), Value::Object(hc));
            }
            domains
                .entry(domain_of(&r.domain))
                .or_default()
                .push(Value::Object(rule));
        }
        let domains: Vec<Value> = domains
            .into_iter()
            .map(|(domain, rules)| json!({"domain": domain, "rules": rules}))
            .collect();
        section.insert("domains".into(), domains.into());
        listeners.push(Value::Object(section));
    }
    json!({"loadBalancer": {"l7Listeners": listeners}})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::sim::apply_to_view;
    use super::super::*;
    use super::auto_config_spec;
    use crate::model::desired::{DesiredListener, DesiredRule};
    use crate::model::lb::{Backend, LbType, ListenerKey, TargetKey};
    use crate::model::ownership::tags_for_new_lb;
    use crate::model::service_config::{self, RuleAttributes, ServiceConfig};
    use crate::model::{Desired, LbSource, LbSpec};

    fn config(l7: serde_json::Value) -> ServiceConfig {
        let mut problems = Vec::new();
        let c = service_config::parse(
            &json!({"metadata": {"name": "cfg", "namespace": "default"},
                    "spec": {"loadBalancer": {"l7Listeners": l7}}}),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        c
    }

    fn rule() -> DesiredRule {
        DesiredRule {
            certificate: None,
            targets: [(
                TargetKey {
                    backend: Backend::Instance("ins-1".into()),
                    port: 30080,
                },
                crate::model::graceful::TargetWeight::Serve,
            )]
            .into(),
        }
    }

    /// HTTP:80 with a.com/ and a.com/api, b.com/ and the default domain's /.
    fn desired(service_config: Option<ServiceConfig>) -> Desired {
        let key = |d: Option<&str>, u: &str| RuleKey {
            domain: d.map_or(Domain::Default, |d| Domain::Name(d.into())),
            url: u.into(),
        };
        let rules = [
            key(Some("a.com"), "/"),
            key(Some("a.com"), "/api"),
            key(Some("b.com"), "/"),
            key(None, "/"),
        ]
        .into_iter()
        .map(|k| (k, rule()))
        .collect();
        Desired {
            cluster_id: "cls-test".into(),
            ingress_uid: "uid-1".into(),
            ingress: "default/web".into(),
            load_balancer: LbSource::Create(LbSpec {
                lb_type: LbType::Open,
                name: "web".into(),
                vpc_id: None,
                subnet_id: None,
                internet_charge_type: None,
                internet_max_bandwidth_out: None,
                extensive_parameters: Default::default(),
                tags: tags_for_new_lb("cls-test", "uid-1"),
                client_token: "t".into(),
            }),
            listeners: [(
                ListenerKey::HTTP_80,
                DesiredListener {
                    certificate: None,
                    sni: false,
                    rules,
                    default_server: None,
                },
            )]
            .into(),
            lifecycle: Default::default(),
            problems: Vec::new(),
            service_config,
            quota: Default::default(),
            redirects: Default::default(),
            held: Default::default(),
        }
    }

    /// The CLB as a first run without any TkeServiceConfig leaves it, with the CLB's
    /// defaults on every rule (as DescribeListeners would show them).
    fn converged() -> CloudView {
        let mut view = CloudView::default();
        let p = plan(&desired(None), &view).expect("plan");
        apply_to_view(&p, &mut view).expect("apply");
        for l in &mut view.load_balancer.as_mut().expect("lb").listeners {
            l.keepalive = Some(false);
            for r in &mut l.rules {
                r.attributes = RuleAttributes {
                    scheduler: Some("WRR".into()),
                    session_expire_time: Some(0),
                    forward_type: Some("HTTP".into()),
                    health_check: crate::model::service_config::HealthCheckSettings {
                        enable: Some(true),
                        interval_time: Some(5),
                        timeout: Some(2),
                        health_num: Some(3),
                        unhealth_num: Some(3),
                        http_code: Some(31),
                        http_check_path: Some("/".into()),
                        http_check_domain: Some(String::new()),
                        http_check_method: Some("HEAD".into()),
                        source_ip_type: Some(0),
                    },
                };
            }
        }
        view
    }

    fn sections() -> serde_json::Value {
        json!([
            {"protocol": "HTTP", "port": 80, "keepaliveEnable": 1, "defaultServer": "b.com",
             "domains": [
                {"domain": "a.com", "rules": [
                    {"url": "/api", "scheduler": "LEAST_CONN",
                     "session": {"enable": true, "sessionExpireTime": 600},
                     "healthCheck": {"enable": true, "intervalTime": 10, "timeout": 4,
                                     "httpCheckPath": "/healthz", "httpCheckMethod": "GET"}},
                    {"url": "/missing", "scheduler": "IP_HASH"}]},
                {"domain": "", "rules": [{"url": "/", "healthCheck": {"enable": false}}]},
                {"domain": "nowhere.com", "rules": [{"url": "/", "scheduler": "IP_HASH"}]}]},
            {"protocol": "HTTPS", "port": 443, "keepaliveEnable": 1},
        ])
    }

    #[test]
    fn golden_tke_service_config_changes_only_what_it_selects_and_then_nothing() {
        let mut view = converged();
        let d = desired(Some(config(sections())));
        let p = plan(&d, &view).expect("plan");
        super::super::tests::check_golden("tke_service_config", &p.to_string());
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        apply_to_view(&p, &mut view).expect("apply");
        let again = plan(&d, &view).expect("plan");
        assert!(again.is_empty(), "steady state: {again}");
        super::super::tests::check_golden("tke_service_config_steady", &again.to_string());
    }

    #[test]
    fn the_auto_config_of_a_clb_read_back_plans_nothing_and_names_the_vip_as_empty() {
        let view = converged();
        let lb = view.load_balancer.as_ref().expect("lb");
        let spec = auto_config_spec(lb);
        let sections = &spec["loadBalancer"]["l7Listeners"];
        assert_eq!(sections.as_array().map(Vec::len), Some(1));
        assert_eq!(sections[0]["keepaliveEnable"], 0);
        let domains: Vec<&str> = sections[0]["domains"]
            .as_array()
            .expect("domains")
            .iter()
            .filter_map(|d| d["domain"].as_str())
            .collect();
        assert_eq!(domains, ["", "a.com", "b.com"]);
        let mut problems = Vec::new();
        let c = service_config::parse(&json!({"spec": spec}), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.listeners[&ListenerKey::HTTP_80].rules.len(), 4);
        let p = plan(&desired(Some(c)), &view).expect("plan");
        assert!(p.is_empty() && p.problems.is_empty(), "{p}");
    }

    #[test]
    fn a_config_that_selects_nothing_or_sets_what_is_there_plans_nothing() {
        let view = converged();
        let nothing = config(json!([
            {"protocol": "HTTP", "port": 8080, "keepaliveEnable": 1},
            {"protocol": "HTTP", "port": 80, "keepaliveEnable": 0, "domains": [
                {"domain": "a.com", "rules": [{"url": "/api", "scheduler": "WRR",
                    "healthCheck": {"enable": true, "intervalTime": 5}}]},
                {"domain": "c.com", "rules": [{"url": "/", "scheduler": "IP_HASH"}]}]},
        ]));
        let p = plan(&desired(Some(nothing)), &view).expect("plan");
        assert!(p.is_empty(), "{p}");
        assert!(p.problems.is_empty());
    }

    #[test]
    fn forward_type_on_http_and_an_interval_not_above_the_clbs_timeout_are_warned_not_sent() {
        let view = converged();
        let c = config(json!([{"protocol": "HTTP", "port": 80, "domains": [
            {"domain": "a.com", "rules": [
                {"url": "/", "forwardType": "GRPC", "scheduler": "IP_HASH"},
                {"url": "/api", "healthCheck": {"intervalTime": 2}}]}]}]));
        let p = plan(&desired(Some(c)), &view).expect("plan");
        assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
        assert!(p.problems[0].message.contains("only HTTPS listeners"));
        assert!(p.problems[1]
            .message
            .contains("intervalTime (2) must exceed timeout (2)"));
        assert_eq!(p.actions.len(), 1, "{p}");
        let Action::ModifyRule { attributes, .. } = &p.actions[0] else {
            panic!("{p}");
        };
        assert_eq!(attributes.scheduler.as_deref(), Some("IP_HASH"));
        assert_eq!(attributes.forward_type, None);
    }

    #[test]
    fn a_default_server_without_a_rule_is_warned_and_a_new_ingress_gets_its_attributes_in_one_run()
    {
        let c = config(
            json!([{"protocol": "HTTP", "port": 80, "defaultServer": "x.com",
            "domains": [{"domain": "a.com", "rules": [{"url": "/api", "scheduler": "IP_HASH"}]}]}]),
        );
        let mut view = CloudView::default();
        let d = desired(Some(c));
        let p = plan(&d, &view).expect("plan");
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0]
            .message
            .contains("defaultServer x.com has no rule"));
        let modify: Vec<&Action> = p
            .actions
            .iter()
            .filter(|a| matches!(a, Action::ModifyRule { .. }))
            .collect();
        assert_eq!(modify.len(), 1, "{p}");
        apply_to_view(&p, &mut view).expect("apply");
        let again = plan(&d, &view).expect("plan");
        assert!(again.is_empty(), "{again}");
    }
}
