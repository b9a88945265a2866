//! The trigger layer and the runtimes: decoders on real payloads (and fuzzed ones), the
//! handler, the shipped trigger configuration, the SCF runtime loop and the web server.

mod support;

mod decode;
mod fuzz;
mod handler;
mod infra;
mod runtime_scf;
mod runtime_web;
