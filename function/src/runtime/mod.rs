//! Serverless runtimes: the SCF custom-runtime loop and the web-function HTTP server.
