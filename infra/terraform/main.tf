# One event function (custom runtime) serves every trigger: the function URL carries the
# audit webhook and the event exporter (both checked against WEBHOOK_TOKEN in code), the
# timer runs the sweep. The CLS path for managed TKE audit is configured from the CLS side
# (see README.md): it invokes this same function with {"clslogs":…}.

locals {
  # Exactly the actions the function calls: function/src/cloud/actions.rs (CALLED), kept in
  # step with this file and with the client's call sites by that module's tests. Client
  # methods nothing in the function calls (DeleteListener) are not granted.
  clb_actions = [
    "clb:DescribeLoadBalancers",
    "clb:DescribeListeners",
    "clb:DescribeTargets",
    "clb:DescribeTargetHealth",
    "clb:DescribeQuota",
    "clb:DescribeTaskStatus",
    "clb:CreateLoadBalancer",
    "clb:DeleteLoadBalancer",
    "clb:CreateListener",
    "clb:ModifyListener",
    "clb:DeleteLoadBalancerListeners",
    "clb:CreateRule",
    "clb:ModifyRule",
    "clb:DeleteRule",
    "clb:ModifyDomainAttributes",
    "clb:BatchRegisterTargets",
    "clb:BatchDeregisterTargets",
    "clb:BatchModifyTargetWeight",
    "clb:ModifyLoadBalancerAttributes",
    "clb:SetLoadBalancerSecurityGroups",
    "clb:DescribeLoadBalancerListByCertId",
    "clb:ManualRewrite",
    "clb:DeleteRewrite",
  ]
  # SSL: kubernetes.io/tls Secrets are uploaded as certificates tagged with the cluster, and
  # deleted once no CLB uses them (function/src/cloud/ssl.rs, reconcile/uploaded_certs.rs).
  ssl_actions = [
    "ssl:UploadCertificate",
    "ssl:DescribeCertificates",
    "ssl:DeleteCertificate",
  ]
  # Tag actions: tags are set at create time by CreateLoadBalancer(Tags); these add and remove
  # the cluster/UID tags of reused (existLbId) CLBs, so they are granted on CLBs only.
  # GetResources (global) finds the regions our CLBs live in (function/src/reconcile/regions.rs);
  # whether CAM authorises this read per resource or needs `*` is UNVERIFIED.
  tag_actions = [
    "tag:TagResources",
    "tag:UnTagResources",
    "tag:GetResources",
  ]
  # SCF: a sweep over more than sweep_shard_size Ingresses invokes this same function
  # asynchronously once per shard (function/src/cloud/scf.rs, API action `Invoke`). SCF's
  # policy examples name the action `scf:InvokeFunction`; whether the `Invoke` API is
  # authorised by it or by `scf:Invoke` is unverified (tencent-cloud-more.md §4.4), so both
  # are allowed, on this one function only (actions.rs SCF_INVOKE_CAM_ACTIONS).
  scf_actions = [
    "scf:Invoke",
    "scf:InvokeFunction",
  ]
  # Every CLB of the function's region and of var.clb_extra_regions (the regions Ingresses
  # name in ingress.cloud.tencent.com/cross-region-id) in this account, as six-segment
  # resource names (tencent-cloud.md §3: qcs::clb:<region>:uin/<uin>:clb/<lb-id>). Whether
  # CAM checks the Tag API's actions against the tagged resource's name is UNVERIFIED; if it
  # does not, the Tag statement needs the tag service's own resource instead.
  clb_regions   = distinct(concat([var.region], var.clb_extra_regions))
  clb_resources = [for r in local.clb_regions : "qcs::clb:${r}:uin/${data.tencentcloud_user_info.current.owner_uin}:clb/*"]
  # The account's SSL certificates. The six-segment form of an SSL certificate (no region:
  # the service is global) is UNVERIFIED; CAM may want the tag-conditioned form instead.
  ssl_resources     = "qcs::ssl::uin/${data.tencentcloud_user_info.current.owner_uin}:certificate/*"
  function_resource = "qcs::scf:${var.region}:uin/${data.tencentcloud_user_info.current.owner_uin}:namespace/${var.namespace}/function/${var.function_name}"
}

data "tencentcloud_user_info" "current" {}

resource "tencentcloud_cam_role" "function" {
  name        = "${var.function_name}-exec"
  description = "Execution role of the clb-ingress function: CLB and Tag access, and invoking itself."
  document = jsonencode({
    version = "2.0"
    statement = [{
      action    = "name/sts:AssumeRole"
      effect    = "allow"
      principal = { service = ["scf.qcloud.com"] }
    }]
  })
}

resource "tencentcloud_cam_policy" "function" {
  name        = "${var.function_name}-clb"
  description = "The CLB and Tag actions clb-ingress calls, and invoking itself (sweep shards), nothing else."
  document = jsonencode({
    version = "2.0"
    statement = [
      {
        effect   = "allow"
        action   = local.clb_actions
        resource = local.clb_resources
      },
      {
        effect   = "allow"
        action   = local.tag_actions
        resource = local.clb_resources
      },
      {
        effect   = "allow"
        action   = local.ssl_actions
        resource = [local.ssl_resources]
      },
      {
        effect   = "allow"
        action   = local.scf_actions
        resource = [local.function_resource]
      },
    ]
  })
}

resource "tencentcloud_cam_role_policy_attachment_by_name" "function" {
  role_name   = tencentcloud_cam_role.function.name
  policy_name = tencentcloud_cam_policy.function.name
}

resource "tencentcloud_scf_function" "clb_ingress" {
  name        = var.function_name
  namespace   = var.namespace
  description = "Gives every qcloud-class Ingress of ${var.cluster_id} a CLB"
  runtime     = "CustomRuntime"
  handler     = "bootstrap"
  func_type   = "Event"
  zip_file    = var.package_zip
  mem_size    = var.memory_mb
  timeout     = var.timeout_seconds
  role        = tencentcloud_cam_role.function.name

  vpc_id    = var.vpc_id == "" ? null : var.vpc_id
  subnet_id = var.subnet_id == "" ? null : var.subnet_id

  environment = {
    CLUSTER_ID      = var.cluster_id
    KUBECONFIG_DATA = var.kubeconfig_data
    WEBHOOK_TOKEN   = var.webhook_token
    LOG_FORMAT      = var.log_format
    # Regions besides var.region holding CLBs of cross-region-id Ingresses: searched even
    # while the Tag API fails (function/src/reconcile/regions.rs).
    CLB_EXTRA_REGIONS = join(",", var.clb_extra_regions)
    # The sweep shards itself past this many Ingresses, invoking this function (named
    # explicitly rather than relying on SCF's own SCF_FUNCTIONNAME/SCF_NAMESPACE).
    SWEEP_SHARD_SIZE      = tostring(var.sweep_shard_size)
    SWEEP_SHARD_FUNCTION  = var.function_name
    SWEEP_SHARD_NAMESPACE = var.namespace
  }

  triggers {
    name         = "sweep"
    type         = "timer"
    trigger_desc = var.sweep_cron
  }

  # Function URL: open at the gateway (the apiserver cannot sign TC3 requests); the bearer
  # token is checked in code.
  triggers {
    name = "webhook"
    type = "http"
    trigger_desc = jsonencode({
      AuthType  = "NONE"
      NetConfig = { EnableIntranet = true, EnableExtranet = true }
    })
  }

  depends_on = [tencentcloud_cam_role_policy_attachment_by_name.function]
}
