//! Counts of what the client sent, per action, for call-budget assertions and reports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Counts for one action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionCounts {
    /// HTTP requests sent (every retry counts).
    pub attempts: u64,
    /// Requests answered without `Response.Error`.
    pub successes: u64,
}

/// Shared between all clones of one client; cheap to clone, safe to read at any time.
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    inner: Arc<Mutex<BTreeMap<String, ActionCounts>>>,
}

impl CallStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn update(&self, action: &str, f: impl FnOnce(&mut ActionCounts)) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(action.to_string()).or_default());
    }

    pub(crate) fn record_attempt(&self, action: &str) {
        self.update(action, |c| c.attempts += 1);
    }

    pub(crate) fn record_success(&self, action: &str) {
        self.update(action, |c| c.successes += 1);
    }

    /// Counts for one action (zero if never called).
    pub fn get(&self, action: &str) -> ActionCounts {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(action).copied().unwrap_or_default()
    }

    pub fn attempts(&self, action: &str) -> u64 {
        self.get(action).attempts
    }

    pub fn successes(&self, action: &str) -> u64 {
        self.get(action).successes
    }

    /// All requests sent, every action.
    pub fn total_attempts(&self) -> u64 {
        self.snapshot().values().map(|c| c.attempts).sum()
    }

    /// Requests sent by actions that change something ([`super::actions::is_write`]).
    pub fn write_attempts(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(a, _)| super::actions::is_write(a))
            .map(|(_, c)| c.attempts)
            .sum()
    }

    pub fn snapshot(&self) -> BTreeMap<String, ActionCounts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets all counts (between phases of one test or benchmark).
    pub fn reset(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counts_and_writes_exclude_describes() {
        let stats = CallStats::new();
        let other = stats.clone();
        stats.record_attempt("DescribeListeners");
        stats.record_success("DescribeListeners");
        other.record_attempt("CreateRule");
        other.record_attempt("CreateRule");
        other.record_success("CreateRule");
        assert_eq!(
            stats.get("CreateRule"),
            ActionCounts {
                attempts: 2,
                successes: 1
            }
        );
        assert_eq!(stats.total_attempts(), 3);
        assert_eq!(stats.write_attempts(), 2);
        assert_eq!(stats.attempts("DeleteRule"), 0);
        other.reset();
        assert_eq!(stats.total_attempts(), 0);
    }
}
