//! Serverless runtimes: the SCF custom-runtime loop and the web-function HTTP server, and
//! the time one invocation may take.

pub mod scf;
pub mod shards;
pub mod web;

use std::time::Duration;

/// The function's timeout in SCF when the platform does not say: `timeout_seconds` in
/// infra/terraform/variables.tf (a test keeps the two equal).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);

/// Left unused at the end of an invocation so its answer is posted (and its Leases given back)
/// before SCF's own timeout cuts it off.
pub const RESPONSE_MARGIN: Duration = Duration::from_secs(2);

/// The time a run may take inside an invocation limited to `limit`.
pub fn budget_within(limit: Duration) -> Duration {
    limit.saturating_sub(RESPONSE_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERRAFORM_VARIABLES: &str = include_str!("../../../infra/terraform/variables.tf");

    /// The `default` of a terraform variable, as written.
    fn terraform_default(variable: &str) -> String {
        let start = TERRAFORM_VARIABLES
            .find(&format!("variable \"{variable}\""))
            .unwrap_or_else(|| panic!("no variable {variable}"));
        TERRAFORM_VARIABLES[start..]
            .lines()
            .find_map(|l| l.trim().strip_prefix("default"))
            .and_then(|l| l.trim().strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("no default for {variable}"))
    }

    /// The period of a 7-field SCF cron that fires every N minutes (`0 */N * * * * *`).
    fn cron_period(cron: &str) -> Duration {
        let fields: Vec<&str> = cron.split_whitespace().collect();
        match fields.as_slice() {
            ["0", minutes, "*", "*", "*", "*", "*"] => {
                let n: u64 = minutes
                    .strip_prefix("*/")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected minute field in {cron:?}"));
                Duration::from_secs(n * 60)
            }
            _ => panic!("unexpected cron {cron:?}: teach this test its period"),
        }
    }

    #[test]
    fn the_default_timeout_is_the_deployed_one() {
        let deployed: u64 = terraform_default("timeout_seconds").parse().unwrap();
        assert_eq!(FUNCTION_TIMEOUT, Duration::from_secs(deployed));
    }

    #[test]
    fn a_sweep_ends_before_the_next_timer_tick_starts_another() {
        let period = cron_period(&terraform_default("sweep_cron"));
        let run = budget_within(FUNCTION_TIMEOUT);
        assert!(run < FUNCTION_TIMEOUT);
        assert!(
            run + RESPONSE_MARGIN <= period && run < period,
            "a {run:?} sweep would overlap the next tick {period:?} later"
        );
    }
}
