//! Facts the reference marks unverified, or that the emulator had to choose, each in one
//! named place (tencent-cloud.md §2, tencent-cloud-more.md §1.5 and §5).

/// Version string of the CLB API.
pub const CLB_VERSION: &str = "2018-03-17";
/// Version string of the Tag API.
pub const TAG_VERSION: &str = "2018-08-13";
/// Largest clock skew accepted before `AuthFailure.SignatureExpire` (documented: 5 minutes).
pub const MAX_SKEW_SECS: i64 = 300;
/// `DescribeLoadBalancers.LoadBalancerIds` and `DeleteLoadBalancer.LoadBalancerIds` (SDK: ≤ 20).
pub const MAX_LB_IDS: usize = 20;
/// `DescribeLoadBalancers.Limit` default and maximum (SDK: 20 and 100).
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// `RegisterTargets`/`DeregisterTargets` per call (SDK: 20).
pub const MAX_TARGETS_PER_CALL: usize = 20;
/// `BatchRegisterTargets`/`BatchDeregisterTargets` per call (SDK: 500).
pub const MAX_BATCH_TARGETS: usize = 500;
/// `BatchModifyTargetWeight`: entries, targets per entry, targets in all (SDK: 100/50/500).
pub const MAX_WEIGHT_RULES: usize = 100;
pub const MAX_WEIGHT_TARGETS_PER_RULE: usize = 50;
/// `DescribeListeners.ListenerIds` (SDK: ≤ 100); `DescribeTargets.ListenerIds` and
/// `DeleteLoadBalancerListeners.ListenerIds` (SDK: ≤ 20).
pub const MAX_DESCRIBE_LISTENER_IDS: usize = 100;
pub const MAX_LISTENER_IDS: usize = 20;
/// `DescribeTargetHealth.LoadBalancerIds` (clb-batch-reads.md: ≤ 30, written into the SDK docs
/// in 2026).
pub const MAX_TARGET_HEALTH_LB_IDS: usize = 30;
/// Assumption (clb-batch-reads.md gives no error for it): `DescribeTargetHealth` leaves out a
/// CLB id that does not exist instead of failing the whole call.
pub const TARGET_HEALTH_SKIPS_UNKNOWN_LB: bool = true;
/// Tag API: resources and tags per request (SDK: ≤ 10 each).
pub const MAX_TAG_RESOURCES: usize = 10;
pub const MAX_TAGS_PER_REQUEST: usize = 10;
/// CreateLoadBalancer.Tags (SDK: ≤ 20 pairs).
pub const MAX_CREATE_TAGS: usize = 20;
/// ClientToken length (SDK: ≤ 64 ASCII characters).
pub const MAX_CLIENT_TOKEN: usize = 64;
/// `DeleteLoadBalancer` without `ForceDelete` is refused from this many bound targets
/// (`FailedOperation.TargetNumCheckRisk`, tencent-cloud.md §2.3).
pub const DELETE_RISK_TARGETS: usize = 20;

/// Assumption (tencent-cloud-more §1.4, unverified): port numbers are unique per CLB within a
/// transport, so a UDP/QUIC listener may share a number with a TCP-based one.
pub fn ports_conflict(proto_a: &str, proto_b: &str) -> bool {
    let udp = |p: &str| p == "UDP" || p == "QUIC";
    udp(proto_a) == udp(proto_b)
}

/// Assumption: the uin of the emulated account, used in six-segment resource names. Names
/// with an empty uin (`uin/:clb/...`, as the Terraform provider sends) are accepted too.
pub const SIM_UIN: &str = "100000000001";

/// Assumption: the VPC a CLB lands in when CreateLoadBalancer names none ("default VPC").
pub const DEFAULT_VPC: &str = "vpc-default0";

/// Assumption: the form of `LoadBalancerDomain` (the real one is an opaque generated name).
pub fn lb_domain(id: &str, region: &str) -> String {
    format!("{id}.clb.{region}.tencentclb.com")
}

/// Assumption (tencent-cloud-more §5 table (a)): CreateRule with a Domain+Url already on the
/// listener fails with this code.
pub const DUPLICATE_RULE_CODE: &str = "InvalidParameter";
/// Assumption (§5 table (d), from the Terraform provider): deregistering a target that is not
/// bound fails with this code. BatchDeregisterTargets instead treats it as already done.
pub const TARGET_NOT_BOUND_CODE: &str = "InvalidParameter";
/// Assumption (§5): DescribeTaskStatus of an unknown TaskId/DealName.
pub const UNKNOWN_TASK_CODE: &str = "InvalidParameter";
/// Assumption: a Tag API resource that names no CLB of this account lands in
/// `FailedResources` with this code.
pub const TAG_RESOURCE_NOT_FOUND_CODE: &str = "ResourceNotFound";
/// Assumption: a new domain on an SNI listener must come with its certificate.
pub const SNI_DOMAIN_NEEDS_CERT: bool = true;
