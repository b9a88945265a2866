//! One entry point: an event JSON in, a report JSON out, whatever woke the function.
