//! The pure model: annotations, Ingress → Desired CLB, ownership rules. No I/O, no clock.

pub mod refs;
pub mod view;

pub use view::ClusterView;
