variable "region" {
  description = "Region of the function and of the CLBs it manages (e.g. ap-guangzhou)."
  type        = string
}

variable "cluster_id" {
  description = "TKE cluster id (cls-xxxxxxxx); written to the tke-clusterId tag of every CLB."
  type        = string
}

variable "function_name" {
  description = "SCF function name (2-60 characters)."
  type        = string
  default     = "clb-ingress"
}

variable "namespace" {
  description = "SCF namespace."
  type        = string
  default     = "default"
}

variable "package_zip" {
  description = "Custom-runtime package built by scripts/package."
  type        = string
  default     = "../../dist/clb-ingress-event.zip"
}

variable "kubeconfig_data" {
  description = "Kubeconfig (inline YAML) giving the function access to the cluster's API server with the clb-ingress RBAC (infra/kubernetes/rbac.yaml)."
  type        = string
  sensitive   = true
}

variable "webhook_token" {
  description = "Bearer token every HTTP trigger (audit webhook, event exporter) must carry. Generate with `openssl rand -hex 32`."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.webhook_token) >= 32
    error_message = "Use a token of at least 32 characters."
  }
}

variable "clb_extra_regions" {
  description = "Other regions the function may manage CLBs in: every region an Ingress names in ingress.cloud.tencent.com/cross-region-id. Each is granted in the CAM policy and passed as CLB_EXTRA_REGIONS."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the cluster, so the function reaches a private API server endpoint; empty for a public endpoint."
  type        = string
  default     = ""
}

variable "subnet_id" {
  description = "Subnet for the function when vpc_id is set."
  type        = string
  default     = ""
}

variable "sweep_cron" {
  description = "Timer trigger (7-field SCF cron: sec min hour day month week year); the sweep that corrects drift and releases orphans."
  type        = string
  default     = "0 */5 * * * * *"
}

variable "timeout_seconds" {
  description = "Function timeout (1-900 s). Kept below the per-Ingress Lease duration."
  type        = number
  default     = 300
}

variable "memory_mb" {
  description = "Function memory."
  type        = number
  default     = 256
}

variable "log_format" {
  description = "LOG_FORMAT: json (for CLS) or text."
  type        = string
  default     = "json"
}

variable "sweep_shard_size" {
  description = "Ingresses one sweep invocation reconciles itself; a bigger cluster's sweep invokes this function asynchronously once per shard of this size (SWEEP_SHARD_SIZE)."
  type        = number
  default     = 200
  validation {
    condition     = var.sweep_shard_size >= 1
    error_message = "sweep_shard_size must be at least 1."
  }
}
