//! In-memory Kubernetes API server over plain HTTP.
