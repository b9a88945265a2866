//! The pure model: annotations, Ingress → Desired CLB, ownership rules. No I/O, no clock.
