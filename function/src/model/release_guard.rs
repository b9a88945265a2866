//! The mass-release guard (DESIGN §1): a run that would release more than a small share of
//! the cluster's CLBs releases none. A wrong `CLUSTER_ID`, the kubeconfig of another cluster
//! or an emptied cluster all look like "every Ingress is gone"; the guard turns that into
//! an error to read instead of a fleet to rebuild.

/// Environment variable: the guard never holds a release of at most this many CLBs.
pub const ENV_MIN: &str = "RELEASE_GUARD_MIN";
/// Environment variable: the share of the cluster's CLBs (in percent) one run may release.
pub const ENV_PERCENT: &str = "RELEASE_GUARD_PERCENT";

/// At most `max(min, percent % of the cluster's CLBs)` releases per run, unless lifted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseGuard {
    pub min: usize,
    pub percent: usize,
    /// Lifted for this run (`clb-ingress sweep --allow-mass-release`).
    pub lifted: bool,
}

impl Default for ReleaseGuard {
    fn default() -> Self {
        Self {
            min: 3,
            percent: 10,
            lifted: false,
        }
    }
}

impl ReleaseGuard {
    /// The defaults, overridden by [`ENV_MIN`] and [`ENV_PERCENT`] as `lookup` gives them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut guard = Self::default();
        let number = |name: &str| -> Result<Option<usize>, String> {
            match lookup(name).map(|v| v.trim().to_string()) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a whole number")),
            }
        };
        if let Some(min) = number(ENV_MIN)? {
            guard.min = min;
        }
        if let Some(percent) = number(ENV_PERCENT)? {
            if percent > 100 {
                return Err(format!("{ENV_PERCENT}={percent} is more than 100"));
            }
            guard.percent = percent;
        }
        Ok(guard)
    }

    /// The most CLBs one run may release when the cluster has `total`.
    pub fn limit(&self, total: usize) -> usize {
        self.min.max(total.saturating_mul(self.percent) / 100)
    }

    /// Why releasing `releasing` of `total` CLBs is held, or `None` when it may go ahead.
    pub fn holds(&self, releasing: usize, total: usize) -> Option<String> {
        let limit = self.limit(total);
        if self.lifted || releasing <= limit {
            return None;
        }
        Some(format!(
            "mass-release guard: {releasing} of the cluster's {total} CLBs would be released, \
             more than the {limit} one run may release (max({}, {}%)); none released. A wrong \
             CLUSTER_ID or kubeconfig looks like this. If the Ingresses really are gone, run \
             `clb-ingress sweep --allow-mass-release` once",
            self.min, self.percent
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_holds_more_than_max_of_three_and_ten_percent_unless_lifted() {
        let g = ReleaseGuard::default();
        assert_eq!(g.holds(3, 3), None);
        assert!(g.holds(4, 5).is_some());
        assert_eq!(g.limit(100), 10);
        assert_eq!(g.holds(10, 100), None);
        assert!(g.holds(11, 100).is_some());
        let lifted = ReleaseGuard {
            lifted: true,
            ..ReleaseGuard::default()
        };
        assert_eq!(lifted.holds(500, 500), None);
    }

    #[test]
    fn the_guard_reads_its_bounds_from_the_environment_and_refuses_nonsense() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let g = ReleaseGuard::from_lookup(env(&[(ENV_MIN, "0"), (ENV_PERCENT, "50")])).unwrap();
        assert_eq!((g.min, g.percent, g.lifted), (0, 50, false));
        assert_eq!(
            ReleaseGuard::from_lookup(env(&[])).unwrap(),
            ReleaseGuard::default()
        );
        assert!(ReleaseGuard::from_lookup(env(&[(ENV_MIN, "three")])).is_err());
        assert!(ReleaseGuard::from_lookup(env(&[(ENV_PERCENT, "101")])).is_err());
    }
}
