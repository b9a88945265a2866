//! One Ingress and the sweep: observe, desire, plan, apply, report.
