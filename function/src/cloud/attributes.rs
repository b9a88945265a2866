//! Rule attributes (what a TkeServiceConfig sets) between the API's shapes and the pure
//! model's: read from DescribeListeners' `RuleOutput`, written with ModifyRule.

use super::clb::{HealthCheck, ModifyRuleRequest, RuleOutput};
use crate::model::service_config::{HealthCheckSettings, RuleAttributes};

/// The attributes a rule shows; what the API leaves out stays `None` (unknown).
pub fn observed(r: &RuleOutput) -> RuleAttributes {
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let hc = r.health_check.as_ref();
    RuleAttributes {
        scheduler: text(&r.scheduler),
        session_expire_time: r.session_expire_time,
        forward_type: text(&r.forward_type),
        health_check: HealthCheckSettings {
            enable: hc.and_then(|h| h.health_switch).map(|s| s == 1),
            interval_time: hc.and_then(|h| h.interval_time),
            timeout: hc.and_then(|h| h.time_out),
            health_num: hc.and_then(|h| h.health_num),
            unhealth_num: hc.and_then(|h| h.un_health_num),
            http_code: hc.and_then(|h| h.http_code),
            http_check_path: hc.and_then(|h| h.http_check_path.clone()),
            http_check_domain: hc.and_then(|h| h.http_check_domain.clone()),
            http_check_method: hc.and_then(|h| h.http_check_method.clone()),
            source_ip_type: hc.and_then(|h| h.source_ip_type),
        },
    }
}

/// The ModifyRule request that sets `changes` (and nothing else) on one rule.
pub fn modify_rule_request(
    load_balancer_id: String,
    listener_id: String,
    location_id: String,
    changes: &RuleAttributes,
) -> ModifyRuleRequest {
    let h = &changes.health_check;
    let health_check = (*h != HealthCheckSettings::default()).then(|| HealthCheck {
        health_switch: h.enable.map(i64::from),
        time_out: h.timeout,
        interval_time: h.interval_time,
        health_num: h.health_num,
        un_health_num: h.unhealth_num,
        http_code: h.http_code,
        http_check_path: h.http_check_path.clone(),
        http_check_domain: h.http_check_domain.clone(),
        http_check_method: h.http_check_method.clone(),
        source_ip_type: h.source_ip_type,
        ..HealthCheck::default()
    });
    ModifyRuleRequest {
        load_balancer_id,
        listener_id,
        location_id,
        health_check,
        scheduler: changes.scheduler.clone(),
        session_expire_time: changes.session_expire_time,
        forward_type: changes.forward_type.clone(),
        ..ModifyRuleRequest::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_read_back_becomes_the_attributes_it_was_modified_with() {
        let changes = RuleAttributes {
            scheduler: Some("IP_HASH".into()),
            session_expire_time: Some(0),
            forward_type: Some("GRPC".into()),
            health_check: HealthCheckSettings {
                enable: Some(false),
                interval_time: Some(9),
                http_check_method: Some("GET".into()),
                ..Default::default()
            },
        };
        let req = modify_rule_request("lb-1".into(), "lbl-1".into(), "loc-1".into(), &changes);
        let sent = serde_json::to_value(&req).expect("json");
        assert_eq!(
            sent,
            serde_json::json!({"LoadBalancerId": "lb-1", "ListenerId": "lbl-1", "LocationId": "loc-1",
                "Scheduler": "IP_HASH", "SessionExpireTime": 0, "ForwardType": "GRPC",
                "HealthCheck": {"HealthSwitch": 0, "IntervalTime": 9, "HttpCheckMethod": "GET"}})
        );
        let out = RuleOutput {
            scheduler: "IP_HASH".into(),
            session_expire_time: Some(0),
            forward_type: "GRPC".into(),
            health_check: req.health_check.clone(),
            ..RuleOutput::default()
        };
        assert_eq!(observed(&out), changes);
    }

    #[test]
    fn only_a_health_check_change_sends_a_health_check() {
        let changes = RuleAttributes {
            scheduler: Some("WRR".into()),
            ..Default::default()
        };
        let req = modify_rule_request("lb-1".into(), "l".into(), "r".into(), &changes);
        assert!(req.health_check.is_none());
    }
}
