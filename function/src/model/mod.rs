//! The pure model: annotations, Ingress → Desired CLB, ownership rules. No I/O, no clock.

pub mod annotations;
pub mod backends;
pub mod catalogue;
pub mod cert_annotation;
pub mod class;
pub mod create_epoch;
pub mod create_params;
pub mod cross_region;
pub mod desired;
pub mod graceful;
pub mod lb;
pub mod lifecycle;
pub mod limits;
pub mod listen_ports;
pub mod ownership;
pub mod paths;
pub mod problem;
pub mod readiness;
pub mod redirects;
pub mod refs;
pub mod release_guard;
pub mod service_config;
pub mod tls;
pub mod uploaded_certs;
pub mod view;

pub use desired::{
    desire, desire_within, Decision, Desired, DesiredListener, DesiredRule, LbSource, LbSpec,
};
pub use lb::{
    Backend, Certificate, Domain, LbType, ListenerKey, Protocol, RuleKey, SslMode, TargetKey,
};
pub use problem::{Problem, Severity};
pub use view::ClusterView;
