//! Serverless runtimes: the SCF custom-runtime loop and the web-function HTTP server.

pub mod scf;
pub mod shards;
pub mod web;
