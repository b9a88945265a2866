//! Kubernetes access: the view one Ingress needs, status and Event writes, the per-Ingress Lease.
