//! Typed CLB API 2018-03-17 requests and responses, and one method per action.
//!
//! Field names are the API's exact PascalCase. Responses parse leniently: the API may send
//! `null` for any optional field, so lists and strings read `null` as empty and numbers
//! and flags are `Option`. Requests omit what is unset (the API rejects unknown fields,
//! and an empty list can mean "all", see [`CloudClient::delete_load_balancer_listeners`]).

use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;

use super::client::{CloudClient, TaskStatus, CLB_SERVICE, CLB_VERSION};
use super::error::CloudError;

/// Reads `null` (or a missing field, with `#[serde(default)]`) as the type's default.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Largest `Limit` DescribeLoadBalancers accepts.
pub const DESCRIBE_PAGE_LIMIT: i64 = 100;

/// `LoadBalancer.Status` of a CLB that is ready for listeners.
pub const LB_STATUS_NORMAL: i64 = 1;

// ---------------------------------------------------------------- shared structures

/// How long a CLB that CreateLoadBalancer just named must stay unreadable by id, read after
/// read, before a search by our tags may prove it gone (and only then is a new ClientToken
/// used). ASSUMPTION (tencent-cloud.md §2.2 only says the ids can be late in the create
/// answer, not how late reads can be): reads catch up within seconds; a CLB deleted behind
/// our back costs one such wait per deletion.
pub const CREATED_LB_GONE_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TagInfo {
    #[serde(deserialize_with = "nullable")]
    pub tag_key: String,
    #[serde(deserialize_with = "nullable")]
    pub tag_value: String,
}

impl TagInfo {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            tag_key: key.into(),
            tag_value: value.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

/// Health check of a rule (L7) or listener (L4); the same shape in and out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_switch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_out: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_num: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub un_health_num: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_check_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_check_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_check_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip_type: Option<i64>,
}

/// `CertificateInput`. May carry a private key (`CertKey`), so Debug is hand-written.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct CertificateInput {
    #[serde(rename = "SSLMode", skip_serializing_if = "Option::is_none")]
    pub ssl_mode: Option<String>,
    #[serde(rename = "SSLVerifyClient", skip_serializing_if = "Option::is_none")]
    pub ssl_verify_client: Option<String>,
    #[serde(rename = "CertId", skip_serializing_if = "Option::is_none")]
    pub cert_id: Option<String>,
    #[serde(rename = "CertCaId", skip_serializing_if = "Option::is_none")]
    pub cert_ca_id: Option<String>,
    #[serde(rename = "CertName", skip_serializing_if = "Option::is_none")]
    pub cert_name: Option<String>,
    #[serde(rename = "CertKey", skip_serializing_if = "Option::is_none")]
    pub cert_key: Option<String>,
    #[serde(rename = "CertContent", skip_serializing_if = "Option::is_none")]
    pub cert_content: Option<String>,
}

impl std::fmt::Debug for CertificateInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateInput")
            .field("ssl_mode", &self.ssl_mode)
            .field("cert_id", &self.cert_id)
            .field("cert_ca_id", &self.cert_ca_id)
            .field("cert_name", &self.cert_name)
            .field("cert_key", &self.cert_key.as_ref().map(|_| "<redacted>"))
            .field(
                "cert_content",
                &self
                    .cert_content
                    .as_ref()
                    .map(|c| format!("<{} bytes>", c.len())),
            )
            .finish()
    }
}

/// Certificate as DescribeListeners reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CertificateOutput {
    #[serde(rename = "SSLMode", deserialize_with = "nullable")]
    pub ssl_mode: String,
    #[serde(rename = "SSLVerifyClient", deserialize_with = "nullable")]
    pub ssl_verify_client: String,
    #[serde(rename = "CertId", deserialize_with = "nullable")]
    pub cert_id: String,
    #[serde(rename = "CertCaId", deserialize_with = "nullable")]
    pub cert_ca_id: String,
    #[serde(rename = "ExtCertIds", deserialize_with = "nullable")]
    pub ext_cert_ids: Vec<String>,
}

/// The response of writes that return nothing but their RequestId (the task id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WriteResponse {
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
    /// Some writes (ModifyLoadBalancerAttributes, create) also return an order id.
    #[serde(deserialize_with = "nullable")]
    pub deal_name: String,
}

// ---------------------------------------------------------------- load balancers

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct InternetAccessible {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_charge_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_max_bandwidth_out: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidthpkg_sub_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateLoadBalancerRequest {
    /// `OPEN` or `INTERNAL`.
    pub load_balancer_type: String,
    /// 1 = application CLB (the only kind accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    #[serde(rename = "AddressIPVersion", skip_serializing_if = "Option::is_none")]
    pub address_ip_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_zone_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_accessible: Option<InternetAccessible>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_isp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_package_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_pass_to_target: Option<bool>,
    /// Set at create time so the CLB is never untagged (DESIGN §1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagInfo>,
    /// Idempotency key (<= 64 ASCII): a retried create returns the same CLB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateLoadBalancerResponse {
    /// May be empty when the API is slow; the task result then carries the ids.
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_ids: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub deal_name: String,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLoadBalancersRequest {
    /// At most 20.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Default 20, at most 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// E.g. `tag:tke-lb-ingress-uuid` = [uid]; at most 10 filters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DescribeLoadBalancersResponse {
    /// All matches, independent of Limit.
    pub total_count: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_set: Vec<LoadBalancer>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LoadBalancer {
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_id: String,
    /// The region it was read in (not an API field: the API answers for the region asked).
    #[serde(skip)]
    pub region: String,
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_name: String,
    /// `OPEN` or `INTERNAL`.
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_type: String,
    pub forward: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_domain: String,
    /// Deprecated by the API in favour of `LoadBalancerDomain`; still filled on old CLBs.
    #[serde(deserialize_with = "nullable")]
    pub domain: String,
    #[serde(deserialize_with = "nullable")]
    pub load_balancer_vips: Vec<String>,
    /// 0 creating, 1 normal.
    pub status: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub create_time: String,
    #[serde(deserialize_with = "nullable")]
    pub status_time: String,
    pub project_id: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub vpc_id: String,
    #[serde(deserialize_with = "nullable")]
    pub subnet_id: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<TagInfo>,
    #[serde(deserialize_with = "nullable")]
    pub secure_groups: Vec<String>,
    #[serde(rename = "AddressIPVersion", deserialize_with = "nullable")]
    pub address_ip_version: String,
    #[serde(rename = "AddressIPv6", deserialize_with = "nullable")]
    pub address_ipv6: String,
    #[serde(deserialize_with = "nullable")]
    pub charge_type: String,
    pub load_balancer_pass_to_target: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub sla_type: String,
    #[serde(deserialize_with = "nullable")]
    pub attribute_flags: Vec<String>,
    pub target_count: Option<i64>,
}

impl LoadBalancer {
    /// The value of tag `key`, if the CLB carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.tag_key == key)
            .map(|t| t.tag_value.as_str())
    }

    /// Ready for listeners and rules (Status 1).
    pub fn is_ready(&self) -> bool {
        self.status == Some(LB_STATUS_NORMAL)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteLoadBalancerRequest {
    /// At most 20.
    pub load_balancer_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_delete: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyLoadBalancerAttributesRequest {
    pub load_balancer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_charge_info: Option<InternetAccessible>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_pass_to_target: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snat_pro: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_protect: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetLoadBalancerSecurityGroupsRequest {
    pub load_balancer_id: String,
    /// The full set (at most 50); empty unbinds all. Always sent, so intent is explicit.
    pub security_groups: Vec<String>,
}

// ---------------------------------------------------------------- listeners

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateListenerRequest {
    pub load_balancer_id: String,
    /// One listener per port.
    pub ports: Vec<i64>,
    /// `HTTP`, `HTTPS`, `TCP`, ...
    pub protocol: String,
    /// Parallel to `ports`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener_names: Vec<String>,
    /// L4 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Non-SNI HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expire_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// HTTPS: 1 = certificates per domain (SNI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni_switch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive_enable: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateListenerResponse {
    #[serde(deserialize_with = "nullable")]
    pub listener_ids: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeListenersRequest {
    pub load_balancer_id: String,
    /// At most 100; empty = all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DescribeListenersResponse {
    #[serde(deserialize_with = "nullable")]
    pub listeners: Vec<Listener>,
    pub total_count: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Listener {
    #[serde(deserialize_with = "nullable")]
    pub listener_id: String,
    #[serde(deserialize_with = "nullable")]
    pub protocol: String,
    #[serde(deserialize_with = "nullable")]
    pub port: i64,
    #[serde(deserialize_with = "nullable")]
    pub listener_name: String,
    pub certificate: Option<CertificateOutput>,
    pub health_check: Option<HealthCheck>,
    #[serde(deserialize_with = "nullable")]
    pub scheduler: String,
    pub session_expire_time: Option<i64>,
    pub sni_switch: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub rules: Vec<RuleOutput>,
    #[serde(deserialize_with = "nullable")]
    pub create_time: String,
    pub end_port: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub target_type: String,
    pub keepalive_enable: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RuleOutput {
    #[serde(deserialize_with = "nullable")]
    pub location_id: String,
    #[serde(deserialize_with = "nullable")]
    pub domain: String,
    #[serde(deserialize_with = "nullable")]
    pub domains: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub url: String,
    pub session_expire_time: Option<i64>,
    pub health_check: Option<HealthCheck>,
    pub certificate: Option<CertificateOutput>,
    #[serde(deserialize_with = "nullable")]
    pub scheduler: String,
    #[serde(deserialize_with = "nullable")]
    pub listener_id: String,
    pub rewrite_target: Option<RewriteTarget>,
    pub http_gzip: Option<bool>,
    pub be_auto_created: Option<bool>,
    pub default_server: Option<bool>,
    pub http2: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub forward_type: String,
    #[serde(deserialize_with = "nullable")]
    pub create_time: String,
    #[serde(deserialize_with = "nullable")]
    pub target_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RewriteTarget {
    #[serde(deserialize_with = "nullable")]
    pub target_listener_id: String,
    #[serde(deserialize_with = "nullable")]
    pub target_location_id: String,
    pub rewrite_code: Option<i64>,
    pub take_url: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub rewrite_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyListenerRequest {
    pub load_balancer_id: String,
    pub listener_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expire_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// 0 -> 1 only; the API refuses turning SNI off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni_switch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive_enable: Option<i64>,
}

// ---------------------------------------------------------------- rules

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleInput {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expire_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// SNI certificate of the domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_server: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRuleRequest {
    pub load_balancer_id: String,
    pub listener_id: String,
    pub rules: Vec<RuleInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateRuleResponse {
    #[serde(deserialize_with = "nullable")]
    pub location_ids: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRuleRequest {
    pub load_balancer_id: String,
    pub listener_id: String,
    pub location_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_expire_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRuleRequest {
    pub load_balancer_id: String,
    pub listener_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub location_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Needed when deleting the listener's default domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_default_server_domain: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyDomainAttributesRequest {
    pub load_balancer_id: String,
    pub listener_id: String,
    /// The existing domain.
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_domain: Option<String>,
    /// SNI listeners only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_server: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_default_server_domain: Option<String>,
}

// ---------------------------------------------------------------- targets

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTargetsRequest {
    pub load_balancer_id: String,
    /// At most 20; empty = all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DescribeTargetsResponse {
    #[serde(deserialize_with = "nullable")]
    pub listeners: Vec<ListenerBackend>,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ListenerBackend {
    #[serde(deserialize_with = "nullable")]
    pub listener_id: String,
    #[serde(deserialize_with = "nullable")]
    pub protocol: String,
    #[serde(deserialize_with = "nullable")]
    pub port: i64,
    /// L7: targets per rule.
    #[serde(deserialize_with = "nullable")]
    pub rules: Vec<RuleTargets>,
    /// L4 only.
    #[serde(deserialize_with = "nullable")]
    pub targets: Vec<Backend>,
    pub end_port: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RuleTargets {
    #[serde(deserialize_with = "nullable")]
    pub location_id: String,
    #[serde(deserialize_with = "nullable")]
    pub domain: String,
    #[serde(deserialize_with = "nullable")]
    pub url: String,
    #[serde(deserialize_with = "nullable")]
    pub targets: Vec<Backend>,
}

/// A bound target as DescribeTargets reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Backend {
    /// `CVM`, `ENI`, ...
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub instance_id: String,
    #[serde(deserialize_with = "nullable")]
    pub port: i64,
    pub weight: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub public_ip_addresses: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub private_ip_addresses: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub instance_name: String,
    #[serde(deserialize_with = "nullable")]
    pub registered_time: String,
    #[serde(deserialize_with = "nullable")]
    pub eni_id: String,
    #[serde(deserialize_with = "nullable")]
    pub tag: String,
    #[serde(deserialize_with = "nullable")]
    pub zone: String,
}

/// One target of BatchRegisterTargets / BatchDeregisterTargets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchTarget {
    pub listener_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Exactly one of `instance_id` and `eni_ip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// Required for L7 listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchTargetsRequest {
    pub load_balancer_id: String,
    /// At most 500.
    pub targets: Vec<BatchTarget>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BatchTargetsResponse {
    #[serde(deserialize_with = "nullable")]
    pub fail_listener_id_set: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub message: String,
    #[serde(deserialize_with = "nullable")]
    pub request_id: String,
}

/// A target inside a weight change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// One entry of BatchModifyTargetWeight (`RsWeightRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RsWeightRule {
    pub listener_id: String,
    pub targets: Vec<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Used for targets without their own weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchModifyTargetWeightRequest {
    pub load_balancer_id: String,
    /// At most 100 entries, 50 targets each, 500 in all.
    pub modify_list: Vec<RsWeightRule>,
}

// ---------------------------------------------------------------- methods

pub(super) fn config_error(action: &str, message: &str) -> CloudError {
    CloudError::Config(format!("{action}: {message}"))
}

impl CloudClient {
    pub(super) async fn clb<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        action: &str,
        request: &Req,
    ) -> Result<Resp, CloudError> {
        self.call_typed(CLB_SERVICE, CLB_VERSION, action, request)
            .await
    }

    /// An async write: send it, then wait for its task (its RequestId) to finish.
    pub(super) async fn clb_async<
        Req: Serialize,
        Resp: serde::de::DeserializeOwned + HasRequestId,
    >(
        &self,
        action: &str,
        request: &Req,
    ) -> Result<Resp, CloudError> {
        let response: Resp = self.clb(action, request).await?;
        self.wait_task(response.request_id()).await?;
        Ok(response)
    }

    /// Creates a CLB and returns it once it is usable (Status 1).
    ///
    /// Waits on the create task first, because a failed creation never shows up in
    /// DescribeLoadBalancers (tencent-cloud-more.md §5); then reads the CLB by id until
    /// it reports Status 1, which is also what callers need (VIP, domain). Costs at least
    /// three calls: create, one task poll, one describe.
    /// `req` is a [`CreateLoadBalancerRequest`], or the JSON body of an `LbSpec` whose
    /// extensiveParameters may name any field of the API.
    pub async fn create_load_balancer<Req: Serialize + Sync>(
        &self,
        req: &Req,
    ) -> Result<Vec<LoadBalancer>, CloudError> {
        const ACTION: &str = "CreateLoadBalancer";
        let created: CreateLoadBalancerResponse = self.clb(ACTION, req).await?;
        let mut ids = created.load_balancer_ids.clone();
        match self.wait_task(&created.request_id).await {
            Ok(task) => {
                if ids.is_empty() {
                    ids = task.load_balancer_ids;
                }
            }
            // An API that does not know the create's RequestId as a task is not proof of
            // failure; with the ids in hand, the describe below decides.
            Err(e)
                if !ids.is_empty()
                    && e.code().is_some_and(|c| c.starts_with("InvalidParameter")) =>
            {
                tracing::warn!(error = %e, "create task not found; polling the CLB instead");
            }
            Err(e) => return Err(e),
        }
        if ids.is_empty() {
            return Err(CloudError::Unexpected {
                action: ACTION.into(),
                message: format!("no LoadBalancerIds (RequestId {})", created.request_id),
            });
        }
        self.wait_load_balancers_ready(&ids).await
    }

    /// Reads the CLBs by id until every one reports Status 1, within the task deadline.
    /// A CLB absent from every read for `created_lb_gone_after` (a sustained period, not a
    /// few polls: reads may lag a create) is reported as
    /// [`CloudError::CreatedLoadBalancerGone`] instead of being waited for until the deadline.
    pub async fn wait_load_balancers_ready(
        &self,
        ids: &[String],
    ) -> Result<Vec<LoadBalancer>, CloudError> {
        let cfg = self.config();
        let deadline = Instant::now() + cfg.task_deadline;
        let mut missing_since: Option<Instant> = None;
        loop {
            let found = self
                .describe_load_balancers(&DescribeLoadBalancersRequest {
                    load_balancer_ids: ids.to_vec(),
                    limit: Some(ids.len().max(1) as i64),
                    ..Default::default()
                })
                .await?;
            let ready = ids.iter().all(|id| {
                found
                    .load_balancer_set
                    .iter()
                    .any(|lb| &lb.load_balancer_id == id && lb.is_ready())
            });
            if ready {
                return Ok(found.load_balancer_set);
            }
            let missing = ids.iter().find(|id| {
                !found
                    .load_balancer_set
                    .iter()
                    .any(|lb| &lb.load_balancer_id == *id)
            });
            match missing {
                Some(id) => {
                    let since = *missing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= cfg.created_lb_gone_after {
                        return Err(CloudError::CreatedLoadBalancerGone { id: id.clone() });
                    }
                }
                None => missing_since = None,
            }
            if Instant::now() + cfg.task_poll_interval > deadline {
                return Err(CloudError::TaskTimeout {
                    task_id: format!("CreateLoadBalancer {}", ids.join(",")),
                });
            }
            tokio::time::sleep(cfg.task_poll_interval).await;
        }
    }

    pub async fn describe_load_balancers(
        &self,
        req: &DescribeLoadBalancersRequest,
    ) -> Result<DescribeLoadBalancersResponse, CloudError> {
        let mut found: DescribeLoadBalancersResponse =
            self.clb("DescribeLoadBalancers", req).await?;
        for lb in &mut found.load_balancer_set {
            lb.region = self.region().to_string();
        }
        Ok(found)
    }

    /// Every CLB matching `req` (its `offset`/`limit` are ignored), paging 100 at a time
    /// until `TotalCount` is reached. Any failed page fails the whole list: callers must
    /// never act on a partial list (DESIGN §1: a failed list never leads to a delete).
    pub async fn describe_all_load_balancers(
        &self,
        req: &DescribeLoadBalancersRequest,
    ) -> Result<Vec<LoadBalancer>, CloudError> {
        let mut all: Vec<LoadBalancer> = Vec::new();
        loop {
            let page = self
                .describe_load_balancers(&DescribeLoadBalancersRequest {
                    offset: Some(all.len() as i64),
                    limit: Some(DESCRIBE_PAGE_LIMIT),
                    ..req.clone()
                })
                .await?;
            let got = page.load_balancer_set.len();
            all.extend(page.load_balancer_set);
            let total = page.total_count.unwrap_or(0).max(0) as usize;
            // A short page means the end even if TotalCount moved while we paged.
            if got == 0 || all.len() >= total || got < DESCRIBE_PAGE_LIMIT as usize {
                return Ok(all);
            }
        }
    }

    /// Deletes CLBs and waits for the task.
    pub async fn delete_load_balancer(
        &self,
        req: &DeleteLoadBalancerRequest,
    ) -> Result<WriteResponse, CloudError> {
        if req.load_balancer_ids.is_empty() {
            return Err(config_error("DeleteLoadBalancer", "no LoadBalancerIds"));
        }
        self.clb_async("DeleteLoadBalancer", req).await
    }

    pub async fn modify_load_balancer_attributes(
        &self,
        req: &ModifyLoadBalancerAttributesRequest,
    ) -> Result<WriteResponse, CloudError> {
        self.clb_async("ModifyLoadBalancerAttributes", req).await
    }

    /// Synchronous in the API (not in its async list), so no task wait.
    pub async fn set_load_balancer_security_groups(
        &self,
        req: &SetLoadBalancerSecurityGroupsRequest,
    ) -> Result<WriteResponse, CloudError> {
        self.clb("SetLoadBalancerSecurityGroups", req).await
    }

    /// Creates listeners (one per port) and waits; returns their ids in port order.
    pub async fn create_listener(
        &self,
        req: &CreateListenerRequest,
    ) -> Result<CreateListenerResponse, CloudError> {
        self.clb_async("CreateListener", req).await
    }

    pub async fn describe_listeners(
        &self,
        req: &DescribeListenersRequest,
    ) -> Result<DescribeListenersResponse, CloudError> {
        self.clb("DescribeListeners", req).await
    }

    pub async fn modify_listener(
        &self,
        req: &ModifyListenerRequest,
    ) -> Result<WriteResponse, CloudError> {
        self.clb_async("ModifyListener", req).await
    }

    pub async fn delete_listener(
        &self,
        load_balancer_id: &str,
        listener_id: &str,
    ) -> Result<WriteResponse, CloudError> {
        self.clb_async(
            "DeleteListener",
            &serde_json::json!({ "LoadBalancerId": load_balancer_id, "ListenerId": listener_id }),
        )
        .await
    }

    /// Deletes the named listeners. Refuses an empty list: the API reads an omitted
    /// list as "delete every listener", which must never happen by accident.
    pub async fn delete_load_balancer_listeners(
        &self,
        load_balancer_id: &str,
        listener_ids: &[String],
    ) -> Result<WriteResponse, CloudError> {
        const ACTION: &str = "DeleteLoadBalancerListeners";
        if listener_ids.is_empty() {
            return Err(config_error(
                ACTION,
                "refusing an empty ListenerIds (would delete all listeners)",
            ));
        }
        self.clb_async(
            ACTION,
            &serde_json::json!({ "LoadBalancerId": load_balancer_id, "ListenerIds": listener_ids }),
        )
        .await
    }

    /// Creates rules on one listener and waits; returns their LocationIds in order.
    pub async fn create_rule(
        &self,
        req: &CreateRuleRequest,
    ) -> Result<CreateRuleResponse, CloudError> {
        if req.rules.is_empty() {
            return Err(config_error("CreateRule", "no Rules"));
        }
        self.clb_async("CreateRule", req).await
    }

    pub async fn modify_rule(&self, req: &ModifyRuleRequest) -> Result<WriteResponse, CloudError> {
        self.clb_async("ModifyRule", req).await
    }

    pub async fn delete_rule(&self, req: &DeleteRuleRequest) -> Result<WriteResponse, CloudError> {
        if req.location_ids.is_empty() && (req.domain.is_none() || req.url.is_none()) {
            return Err(config_error(
                "DeleteRule",
                "need LocationIds or Domain and Url",
            ));
        }
        self.clb_async("DeleteRule", req).await
    }

    pub async fn modify_domain_attributes(
        &self,
        req: &ModifyDomainAttributesRequest,
    ) -> Result<WriteResponse, CloudError> {
        self.clb_async("ModifyDomainAttributes", req).await
    }

    pub async fn describe_targets(
        &self,
        req: &DescribeTargetsRequest,
    ) -> Result<DescribeTargetsResponse, CloudError> {
        self.clb("DescribeTargets", req).await
    }

    /// Binds targets (not an async action in the API). A non-empty `FailListenerIdSet`
    /// is returned as [`CloudError::PartialFailure`], so a partial bind is never mistaken
    /// for success.
    pub async fn batch_register_targets(
        &self,
        req: &BatchTargetsRequest,
    ) -> Result<BatchTargetsResponse, CloudError> {
        self.batch_targets("BatchRegisterTargets", req).await
    }

    /// Unbinds targets; partial failure as for [`Self::batch_register_targets`].
    pub async fn batch_deregister_targets(
        &self,
        req: &BatchTargetsRequest,
    ) -> Result<BatchTargetsResponse, CloudError> {
        self.batch_targets("BatchDeregisterTargets", req).await
    }

    async fn batch_targets(
        &self,
        action: &str,
        req: &BatchTargetsRequest,
    ) -> Result<BatchTargetsResponse, CloudError> {
        if req.targets.is_empty() {
            return Err(config_error(action, "no Targets"));
        }
        let resp: BatchTargetsResponse = self.clb(action, req).await?;
        if !resp.fail_listener_id_set.is_empty() {
            return Err(CloudError::PartialFailure {
                action: action.to_string(),
                failed: resp.fail_listener_id_set,
                message: resp.message,
                request_id: resp.request_id,
            });
        }
        Ok(resp)
    }

    pub async fn batch_modify_target_weight(
        &self,
        req: &BatchModifyTargetWeightRequest,
    ) -> Result<WriteResponse, CloudError> {
        if req.modify_list.is_empty() {
            return Err(config_error("BatchModifyTargetWeight", "no ModifyList"));
        }
        self.clb_async("BatchModifyTargetWeight", req).await
    }

    /// One DescribeTaskStatus read (no waiting); see [`CloudClient::wait_task`].
    pub async fn describe_task_status(&self, task_id: &str) -> Result<TaskStatus, CloudError> {
        self.clb(
            "DescribeTaskStatus",
            &serde_json::json!({ "TaskId": task_id }),
        )
        .await
    }
}

/// Responses whose RequestId is the id of the async task they started.
pub trait HasRequestId {
    fn request_id(&self) -> &str;
}

macro_rules! has_request_id {
    ($($t:ty),*) => {$(
        impl HasRequestId for $t {
            fn request_id(&self) -> &str {
                &self.request_id
            }
        }
    )*};
}
has_request_id!(WriteResponse, CreateListenerResponse, CreateRuleResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_use_exact_api_field_names_and_omit_unset_fields() {
        let req = CreateLoadBalancerRequest {
            load_balancer_type: "OPEN".into(),
            forward: Some(1),
            address_ip_version: Some("IPV4".into()),
            tags: vec![TagInfo::new("tke-createdBy-flag", "yes")],
            client_token: Some("tok".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "LoadBalancerType": "OPEN", "Forward": 1, "AddressIPVersion": "IPV4",
                "Tags": [{"TagKey": "tke-createdBy-flag", "TagValue": "yes"}], "ClientToken": "tok"
            })
        );
        let cert = CertificateInput {
            ssl_mode: Some("UNIDIRECTIONAL".into()),
            cert_id: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&cert).unwrap(),
            json!({"SSLMode": "UNIDIRECTIONAL", "CertId": "abc"})
        );
        let sg = SetLoadBalancerSecurityGroupsRequest {
            load_balancer_id: "lb-1".into(),
            security_groups: vec![],
        };
        assert_eq!(
            serde_json::to_value(&sg).unwrap(),
            json!({"LoadBalancerId": "lb-1", "SecurityGroups": []})
        );
        let hc = HealthCheck {
            un_health_num: Some(3),
            time_out: Some(2),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&hc).unwrap(),
            json!({"UnHealthNum": 3, "TimeOut": 2})
        );
    }

    #[test]
    fn responses_tolerate_nulls_and_missing_fields() {
        let resp: DescribeListenersResponse = serde_json::from_value(json!({
            "Listeners": [{
                "ListenerId": "lbl-1", "Protocol": "HTTP", "Port": 80, "ListenerName": null,
                "Certificate": null, "HealthCheck": null, "SniSwitch": null,
                "Rules": [{"LocationId": "loc-1", "Domain": "a.com", "Url": "/", "Domains": null,
                           "HealthCheck": {"HealthSwitch": 1, "HttpCheckPath": null},
                           "RewriteTarget": {"TargetListenerId": null, "TargetLocationId": null}}]
            }],
            "TotalCount": null,
            "RequestId": "r"
        }))
        .unwrap();
        let l = &resp.listeners[0];
        assert_eq!((l.port, l.listener_name.as_str()), (80, ""));
        assert_eq!(l.rules[0].domain, "a.com");
        assert_eq!(
            l.rules[0].health_check.as_ref().unwrap().health_switch,
            Some(1)
        );
        let lbs: DescribeLoadBalancersResponse = serde_json::from_value(json!({
            "TotalCount": 1,
            "LoadBalancerSet": [{"LoadBalancerId": "lb-1", "Status": 1, "LoadBalancerVips": null,
                "Tags": [{"TagKey": "tke-clusterId", "TagValue": "cls-1"}], "SecureGroups": null,
                "AddressIPVersion": "ipv4", "UnknownNewField": {"x": 1}}],
            "RequestId": "r"
        }))
        .unwrap();
        let lb = &lbs.load_balancer_set[0];
        assert!(lb.is_ready());
        assert_eq!(lb.tag("tke-clusterId"), Some("cls-1"));
        assert_eq!(lb.tag("tke-lb-ingress-uuid"), None);
        assert_eq!(lb.address_ip_version, "ipv4");
        let targets: DescribeTargetsResponse = serde_json::from_value(json!({
            "Listeners": [{"ListenerId": "lbl-1", "Port": 80, "Targets": null,
                "Rules": [{"LocationId": "loc-1", "Targets": [{"Type": "CVM", "InstanceId": "ins-1",
                    "Port": 30080, "Weight": 10, "PrivateIpAddresses": ["10.0.0.1"], "EniId": null}]}]}],
            "RequestId": "r"
        }))
        .unwrap();
        let b = &targets.listeners[0].rules[0].targets[0];
        assert_eq!(
            (b.kind.as_str(), b.port, b.weight),
            ("CVM", 30080, Some(10))
        );
        let empty: DescribeTargetsResponse =
            serde_json::from_value(json!({"Listeners": null})).unwrap();
        assert!(empty.listeners.is_empty());
    }

    #[test]
    fn certificate_input_debug_redacts_the_private_key() {
        let cert = CertificateInput {
            cert_key: Some("-----BEGIN PRIVATE KEY-----SECRETBYTES".into()),
            cert_content: Some("-----BEGIN CERTIFICATE-----".into()),
            ..Default::default()
        };
        let shown = format!("{cert:?}");
        assert!(!shown.contains("SECRETBYTES"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
