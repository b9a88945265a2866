//! Splitting the sweep of a big cluster into shards (pure: keys in, assignments out).
//!
//! The coordinating sweep sends each shard only `{index, count, generation}`; every shard
//! lists the Ingresses itself and keeps those whose stable hash falls in its bucket. So the
//! event stays tiny (SCF async events are capped at 128 KB) and an Ingress created between the
//! coordinator's list and the shard's is still reconciled by exactly one shard.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::trigger::IngressKey;

/// Top-level key of the shard event: `{"clbIngressSweepShard": {"index", "count", "generation"}}`.
pub const SHARD_EVENT_KEY: &str = "clbIngressSweepShard";

/// Default Ingresses per shard (`SWEEP_SHARD_SIZE`). A converged Ingress costs about three
/// CLB reads; one with changes waits for async CLB tasks (seconds each). With the sweep's 4
/// reconciles in flight, 200 steady-state Ingresses take well under a minute, which leaves
/// most of a 300 s invocation for the ones that need writes.
pub const DEFAULT_SHARD_SIZE: usize = 200;

/// Most shards one sweep fans out to: SCF's Invoke is limited to 100 requests/s, and a
/// count beyond this in an event is a malformed event, not a cluster.
pub const MAX_SHARDS: u32 = 1000;

/// Longest generation id accepted in an event.
const MAX_GENERATION_LEN: usize = 128;

/// One shard of one coordinating sweep.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
    /// Opaque id of the coordinating sweep (for logs and reports only).
    pub generation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard count must be between 1 and {MAX_SHARDS}, got {0}")]
    Count(u64),
    #[error("shard index {index} is not below the shard count {count}")]
    Index { index: u64, count: u64 },
    #[error("generation must be 1 to {MAX_GENERATION_LEN} characters")]
    Generation,
    #[error("shard event: {0}")]
    Shape(&'static str),
}

impl ShardSpec {
    pub fn new(index: u32, count: u32, generation: impl Into<String>) -> Result<Self, ShardError> {
        let generation = generation.into();
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count(count.into()));
        }
        if index >= count {
            return Err(ShardError::Index {
                index: index.into(),
                count: count.into(),
            });
        }
        if generation.is_empty() || generation.chars().count() > MAX_GENERATION_LEN {
            return Err(ShardError::Generation);
        }
        Ok(Self {
            index,
            count,
            generation,
        })
    }

    /// The event that makes a function run this shard.
    pub fn event(&self) -> Value {
        json!({ SHARD_EVENT_KEY: {
            "index": self.index, "count": self.count, "generation": self.generation,
        }})
    }

    /// Parses the inner object of a shard event (the value under [`SHARD_EVENT_KEY`]).
    pub fn from_event_body(v: &Value) -> Result<Self, ShardError> {
        let obj = v.as_object().ok_or(ShardError::Shape("not an object"))?;
        let int = |k: &'static str| {
            obj.get(k).and_then(Value::as_u64).ok_or(ShardError::Shape(
                "index and count must be non-negative integers",
            ))
        };
        let index = int("index")?;
        let count = int("count")?;
        let generation = obj
            .get("generation")
            .and_then(Value::as_str)
            .ok_or(ShardError::Shape("generation must be a string"))?;
        let count32 = u32::try_from(count).map_err(|_| ShardError::Count(count))?;
        let index32 = u32::try_from(index).map_err(|_| ShardError::Index { index, count })?;
        Self::new(index32, count32, generation)
    }

    pub fn contains(&self, key: &IngressKey) -> bool {
        shard_of(key, self.count) == self.index
    }
}

/// Shards needed for `total` Ingresses at `size` each: ceil(total / size), at least 1 for a
/// non-empty cluster, capped at [`MAX_SHARDS`] (shards then grow beyond `size`).
pub fn shard_count(total: usize, size: usize) -> u32 {
    if total == 0 {
        return 0;
    }
    let n = total.div_ceil(size.max(1));
    u32::try_from(n).unwrap_or(MAX_SHARDS).min(MAX_SHARDS)
}

/// The shard of an Ingress: FNV-1a (64-bit) of `namespace/name`, modulo `count`. Written out
/// because the standard library's hasher is seeded per process, and the coordinator and
/// every shard run in different processes.
pub fn shard_of(key: &IngressKey, count: u32) -> u32 {
    (fnv1a(key.to_string().as_bytes()) % u64::from(count.max(1))) as u32
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// Every key in its shard: `count` lists (some may be empty), each key in exactly one.
pub fn assign<'a>(
    keys: impl IntoIterator<Item = &'a IngressKey>,
    count: u32,
) -> Vec<Vec<IngressKey>> {
    let mut shards = vec![Vec::new(); count.max(1) as usize];
    for key in keys {
        shards[shard_of(key, count) as usize].push(key.clone());
    }
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<IngressKey> {
        (0..n)
            .map(|i| IngressKey::new(format!("ns{}", i % 7), format!("ing-{i}")))
            .collect()
    }

    #[test]
    fn shard_count_is_the_ceiling_of_total_over_size() {
        assert_eq!(shard_count(0, 3), 0);
        assert_eq!(shard_count(1, 3), 1);
        assert_eq!(shard_count(3, 3), 1);
        assert_eq!(shard_count(4, 3), 2);
        assert_eq!(shard_count(10, 3), 4);
        assert_eq!(shard_count(401, 200), 3);
        assert_eq!(shard_count(5, 0), 5, "a zero size counts as one");
        assert_eq!(shard_count(usize::MAX, 1), MAX_SHARDS);
    }

    #[test]
    fn every_ingress_is_in_exactly_one_shard() {
        let all = keys(500);
        for count in [1, 2, 3, 7, 64] {
            let shards = assign(&all, count);
            assert_eq!(shards.len(), count as usize);
            let mut seen: Vec<IngressKey> = shards.iter().flatten().cloned().collect();
            seen.sort();
            let mut want = all.clone();
            want.sort();
            assert_eq!(seen, want, "count {count}");
            for (i, shard) in shards.iter().enumerate() {
                let spec = ShardSpec::new(i as u32, count, "g").unwrap();
                assert!(shard.iter().all(|k| spec.contains(k)));
            }
        }
    }

    #[test]
    fn assignment_is_stable_across_runs_and_spreads_keys() {
        // Published FNV-1a 64 test vectors: a different hash would move Ingresses between
        // the shards of a coordinator and of shards running another release.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let key = IngressKey::new("default", "web");
        assert_eq!(shard_of(&key, 1000), (fnv1a(b"default/web") % 1000) as u32);
        let shards = assign(&keys(300), 3);
        assert!(
            shards.iter().all(|s| s.len() > 50),
            "{:?}",
            shards.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shard_events_round_trip_and_refuse_bad_numbers() {
        let spec = ShardSpec::new(2, 4, "gen-1").unwrap();
        let ev = spec.event();
        assert_eq!(
            ShardSpec::from_event_body(&ev[SHARD_EVENT_KEY]).unwrap(),
            spec
        );
        assert_eq!(ShardSpec::new(0, 0, "g"), Err(ShardError::Count(0)));
        assert!(matches!(
            ShardSpec::new(4, 4, "g"),
            Err(ShardError::Index { .. })
        ));
        assert_eq!(ShardSpec::new(0, 1, ""), Err(ShardError::Generation));
        for bad in [
            json!({"index": 0, "count": 0, "generation": "g"}),
            json!({"index": 5, "count": 5, "generation": "g"}),
            json!({"index": -1, "count": 5, "generation": "g"}),
            json!({"index": 0, "count": 5_000_000_000u64, "generation": "g"}),
            json!({"index": "0", "count": 5, "generation": "g"}),
            json!({"index": 0, "count": 5}),
            json!([0, 5]),
        ] {
            assert!(ShardSpec::from_event_body(&bad).is_err(), "{bad}");
        }
    }
}
