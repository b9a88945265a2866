//! Seeded fault injection: random InternalError, added latency and dropped connections at
//! given rates, plus scripted failures ("the next 3 CreateRule calls get RequestLimitExceeded").

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The faults in force. `POST /_sim/faults` takes this as JSON (snake_case keys, all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Probability that a call answers `InternalError` (nothing changes).
    pub internal_error_rate: f64,
    /// Probability that the connection is cut before a response is complete (nothing changes).
    pub drop_rate: f64,
    /// Probability that a call is delayed by `latency_ms` (then served normally).
    pub latency_rate: f64,
    pub latency_ms: u64,
    /// Actions the rates apply to; empty means every action.
    pub actions: Vec<String>,
    /// Failures served in order before any random fault, each to the next `count` calls of
    /// `action` (empty: any action).
    pub scripted: Vec<ScriptedFault>,
    /// The next `count` accepted async calls of `action` (empty: any) answer success, but
    /// their task ends failed (DescribeTaskStatus Status 1) and their change is undone.
    pub task_failures: Vec<TaskFailure>,
    /// The next `lagging_id_reads` DescribeLoadBalancers calls that name `LoadBalancerIds`
    /// answer as a read replica that has not caught up yet: no CLB at all (TotalCount 0).
    pub lagging_id_reads: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFailure {
    #[serde(default)]
    pub action: String,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    #[serde(default)]
    pub action: String,
    /// The error code to answer, e.g. `RequestLimitExceeded`, `FailedOperation.ResourceInOperating`.
    pub code: String,
    pub count: u32,
}

impl Faults {
    /// What `--fault-rate P` means: each call is faulted with probability P, the three kinds
    /// equally likely; added latency is 200 ms.
    pub fn from_rate(p: f64) -> Self {
        Faults {
            internal_error_rate: p / 3.0,
            drop_rate: p / 3.0,
            latency_rate: p / 3.0,
            latency_ms: 200,
            ..Faults::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for (n, r) in [
            ("internal_error_rate", self.internal_error_rate),
            ("drop_rate", self.drop_rate),
            ("latency_rate", self.latency_rate),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{n} must be within 0..=1"));
            }
        }
        if self.internal_error_rate + self.drop_rate > 1.0 {
            return Err("internal_error_rate + drop_rate must not exceed 1".into());
        }
        Ok(())
    }
}

/// The decision for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    Error(String),
    Drop,
}

pub(crate) struct Injector {
    pub faults: Faults,
    rng: StdRng,
}

impl Injector {
    pub fn new(faults: Faults, seed: u64) -> Self {
        Injector {
            faults,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17),
        }
    }

    /// Whether the next accepted async call of `action` should have its task fail.
    pub fn task_should_fail(&self, action: &str) -> bool {
        self.faults
            .task_failures
            .iter()
            .any(|t| t.count > 0 && (t.action.is_empty() || t.action == action))
    }

    /// Uses up one task failure for `action`.
    pub fn consume_task_failure(&mut self, action: &str) {
        if let Some(t) = self
            .faults
            .task_failures
            .iter_mut()
            .find(|t| t.count > 0 && (t.action.is_empty() || t.action == action))
        {
            t.count -= 1;
        }
        self.faults.task_failures.retain(|t| t.count > 0);
    }

    /// Uses up one lagging read: true when this read by id is to answer nothing.
    pub fn take_lagging_id_read(&mut self) -> bool {
        if self.faults.lagging_id_reads == 0 {
            return false;
        }
        self.faults.lagging_id_reads -= 1;
        true
    }

    /// Decides the fault (if any) and the added latency for a call of `action`.
    pub fn decide(&mut self, action: &str) -> (Option<Fault>, u64) {
        if let Some(s) = self
            .faults
            .scripted
            .iter_mut()
            .find(|s| s.count > 0 && (s.action.is_empty() || s.action == action))
        {
            s.count -= 1;
            let code = s.code.clone();
            self.faults.scripted.retain(|s| s.count > 0);
            return (Some(Fault::Error(code)), 0);
        }
        let f = &self.faults;
        if !(f.actions.is_empty() || f.actions.iter().any(|a| a == action)) {
            return (None, 0);
        }
        if f.internal_error_rate == 0.0 && f.drop_rate == 0.0 && f.latency_rate == 0.0 {
            return (None, 0);
        }
        let (ie, dr, lr, lms) = (
            f.internal_error_rate,
            f.drop_rate,
            f.latency_rate,
            f.latency_ms,
        );
        let roll: f64 = self.rng.random();
        let fault = if roll < ie {
            Some(Fault::Error("InternalError".into()))
        } else if roll < ie + dr {
            Some(Fault::Drop)
        } else {
            None
        };
        let late: f64 = self.rng.random();
        let latency = if fault.is_none() && late < lr { lms } else { 0 };
        (fault, latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_faults_hit_the_named_action_count_times() {
        let mut inj = Injector::new(
            Faults {
                scripted: vec![ScriptedFault {
                    action: "CreateRule".into(),
                    code: "RequestLimitExceeded".into(),
                    count: 2,
                }],
                ..Faults::default()
            },
            1,
        );
        assert_eq!(inj.decide("CreateListener").0, None);
        assert_eq!(
            inj.decide("CreateRule").0,
            Some(Fault::Error("RequestLimitExceeded".into()))
        );
        assert_eq!(
            inj.decide("CreateRule").0,
            Some(Fault::Error("RequestLimitExceeded".into()))
        );
        assert_eq!(inj.decide("CreateRule").0, None);
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let mut inj = Injector::new(Faults::from_rate(0.5), seed);
            (0..50).map(|_| inj.decide("X")).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let faulted = run(7).iter().filter(|(f, l)| f.is_some() || *l > 0).count();
        assert!(
            faulted > 5 && faulted < 45,
            "{faulted} of 50 faulted at rate 0.5"
        );
    }
}
