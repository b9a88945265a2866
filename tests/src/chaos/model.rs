//! The harness's side of the story, without I/O: the steps a history is made of, how a seed
//! picks them, and the truth the harness keeps (what the user asked for, what the console
//! did) from which it derives what each Ingress must look like.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Ingress slots `ing-0..`; a history creates, changes and deletes Ingresses in them.
pub const SLOTS: usize = 3;
/// Node slots `node-0..`, backed by CVM instances `ins-chaos00N`.
pub const NODES: usize = 3;
/// The Services Ingress rules point at.
pub const SERVICES: [&str; 2] = ["svc-a", "svc-b"];
/// Users' CLBs without listeners, free to be adopted through `existLbId`.
pub const ADOPTABLE: usize = 2;
/// Index (in the `existLbId` choices) of the user's CLB that carries its own listener: naming
/// it is refused (E4021) and nothing may ever be written to it.
pub const BUSY_USER_LB: usize = ADOPTABLE;
/// nodePorts a Service may take.
const NODE_PORTS: [i32; 3] = [30080, 30081, 30090];
/// Rule shapes an Ingress may take (see [`variant_rules`]).
pub const VARIANTS: u8 = 3;

/// How an Ingress names its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Neither annotation nor `ingressClassName`: ours.
    Default,
    /// `kubernetes.io/ingress.class: qcloud`.
    AnnotationQcloud,
    /// `kubernetes.io/ingress.class: nginx`: not ours.
    AnnotationOther,
    /// `ingressClassName: chaos-qcloud`, an IngressClass of our controller that a step may
    /// delete and re-create.
    NameOurs,
    /// `ingressClassName: nginx`, an IngressClass of another controller (always there).
    NameOther,
}

pub const CLASSES: [Class; 5] = [
    Class::Default,
    Class::AnnotationQcloud,
    Class::AnnotationOther,
    Class::NameOurs,
    Class::NameOther,
];

/// A fault clb-sim injects until the next [`Step::FaultsOff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// RequestLimitExceeded on writes.
    Throttling,
    InternalError,
    /// FailedOperation.ResourceInOperating on writes.
    InOperating,
    /// Connections cut before the answer.
    DroppedConnections,
}

pub const FAULTS: [Fault; 4] = [
    Fault::Throttling,
    Fault::InternalError,
    Fault::InOperating,
    Fault::DroppedConnections,
];

/// A lifecycle annotation a step switches on or off (tke-annotations.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// `ingress.cloud.tencent.com/mode: skip`: no write for the Ingress; its CLB is kept,
    /// listeners and targets too, when it goes.
    Skip,
    /// `ingress.cloud.tencent.com/loadbalance-retain`: a CLB we created is kept when it goes
    /// (our listeners and tags go).
    Retain,
    /// `ingress.cloud.tencent.com/deletion-protection`: a protected CLB is never deleted.
    Protect,
}

/// One event of a history. Steps that do not apply to the state reached (deleting an
/// Ingress that is not there, after shrinking removed its creation) do nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    CreateIngress {
        slot: usize,
        variant: u8,
        class: Class,
        exist_lb: Option<usize>,
    },
    /// Changes the rules (the UID stays).
    ChangeIngress {
        slot: usize,
        variant: u8,
    },
    DeleteIngress {
        slot: usize,
    },
    /// Deletes the Ingress and creates it again under the same name (a new UID).
    RecreateIngress {
        slot: usize,
    },
    SetClass {
        slot: usize,
        class: Class,
    },
    CreateIngressClass,
    DeleteIngressClass,
    /// Sets, switches or removes `existLbId` of a live Ingress.
    SetExistLb {
        slot: usize,
        lb: Option<usize>,
    },
    AddNode {
        node: usize,
    },
    RemoveNode {
        node: usize,
    },
    SetNodeReady {
        node: usize,
        ready: bool,
    },
    SetNodePort {
        svc: usize,
        port: i32,
    },
    DeleteService {
        svc: usize,
    },
    CreateService {
        svc: usize,
    },
    /// Console edits through the API, on the CLB that serves the Ingress in `slot`.
    ConsoleDeleteListener {
        slot: usize,
    },
    ConsoleAddForeignListener {
        slot: usize,
    },
    ConsoleDeregisterTarget {
        slot: usize,
    },
    ConsoleRemoveClusterTag {
        slot: usize,
    },
    /// Switches a lifecycle annotation of a live Ingress on or off (off: `false` for
    /// retain and protection, which leave a CLB as it is when absent; no annotation for skip).
    SetLifecycle {
        slot: usize,
        mark: Mark,
        on: bool,
    },
    FaultsOn(Fault),
    FaultsOff,
    /// Changes the Ingress, then `kill -9`s the function once its first cloud write is seen,
    /// and starts it again.
    KillDuringWork {
        slot: usize,
        variant: u8,
    },
    /// Two one-shot `clb-ingress reconcile` of the same Ingress and a one-shot `sweep`, at
    /// once, beside the serving function.
    DuplicateRuns {
        slot: usize,
    },
    /// The timer trigger (`POST /v1/timer` to the serving function).
    TimerSweep,
}

/// The kind of a step, for switching kinds on and off and for the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    CreateIngress,
    CreateIngressAdopting,
    ChangeIngress,
    DeleteIngress,
    RecreateIngress,
    SetClass,
    CreateIngressClass,
    DeleteIngressClass,
    SetExistLb,
    Nodes,
    Services,
    ConsoleDeleteListener,
    ConsoleAddForeignListener,
    ConsoleDeregisterTarget,
    ConsoleRemoveClusterTag,
    Skip,
    Retain,
    Protect,
    Faults,
    Kill,
    DuplicateRuns,
    TimerSweep,
}

pub const ALL_KINDS: [Kind; 22] = [
    Kind::CreateIngress,
    Kind::CreateIngressAdopting,
    Kind::ChangeIngress,
    Kind::DeleteIngress,
    Kind::RecreateIngress,
    Kind::SetClass,
    Kind::CreateIngressClass,
    Kind::DeleteIngressClass,
    Kind::SetExistLb,
    Kind::Nodes,
    Kind::Services,
    Kind::ConsoleDeleteListener,
    Kind::ConsoleAddForeignListener,
    Kind::ConsoleDeregisterTarget,
    Kind::ConsoleRemoveClusterTag,
    Kind::Skip,
    Kind::Retain,
    Kind::Protect,
    Kind::Faults,
    Kind::Kill,
    Kind::DuplicateRuns,
    Kind::TimerSweep,
];

impl Step {
    pub fn kind(&self) -> Kind {
        match self {
            Step::CreateIngress { exist_lb: None, .. } => Kind::CreateIngress,
            Step::CreateIngress { .. } => Kind::CreateIngressAdopting,
            Step::ChangeIngress { .. } => Kind::ChangeIngress,
            Step::DeleteIngress { .. } => Kind::DeleteIngress,
            Step::RecreateIngress { .. } => Kind::RecreateIngress,
            Step::SetClass { .. } => Kind::SetClass,
            Step::CreateIngressClass => Kind::CreateIngressClass,
            Step::DeleteIngressClass => Kind::DeleteIngressClass,
            Step::SetExistLb { .. } => Kind::SetExistLb,
            Step::AddNode { .. } | Step::RemoveNode { .. } | Step::SetNodeReady { .. } => {
                Kind::Nodes
            }
            Step::SetNodePort { .. } | Step::DeleteService { .. } | Step::CreateService { .. } => {
                Kind::Services
            }
            Step::ConsoleDeleteListener { .. } => Kind::ConsoleDeleteListener,
            Step::ConsoleAddForeignListener { .. } => Kind::ConsoleAddForeignListener,
            Step::ConsoleDeregisterTarget { .. } => Kind::ConsoleDeregisterTarget,
            Step::ConsoleRemoveClusterTag { .. } => Kind::ConsoleRemoveClusterTag,
            Step::SetLifecycle { mark, .. } => match mark {
                Mark::Skip => Kind::Skip,
                Mark::Retain => Kind::Retain,
                Mark::Protect => Kind::Protect,
            },
            Step::FaultsOn(_) | Step::FaultsOff => Kind::Faults,
            Step::KillDuringWork { .. } => Kind::Kill,
            Step::DuplicateRuns { .. } => Kind::DuplicateRuns,
            Step::TimerSweep => Kind::TimerSweep,
        }
    }
}

/// Picks `len` steps from `seed`, only of the `kinds` given. The generator follows a rough
/// picture of the state (which slots hold an Ingress) so that most steps do something; the
/// executor still treats a step that does not apply as a no-op, which is what lets a
/// history shrink by dropping steps.
pub fn generate(seed: u64, len: usize, kinds: &[Kind]) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live = [false; SLOTS];
    let mut steps = Vec::with_capacity(len);
    if kinds.is_empty() {
        return steps;
    }
    while steps.len() < len {
        let mut kind = kinds[rng.random_range(0..kinds.len())];
        // A step about an Ingress when none is live would do nothing: create one instead.
        if needs_ingress(kind) && !live.iter().any(|l| *l) && kinds.contains(&Kind::CreateIngress) {
            kind = Kind::CreateIngress;
        }
        let slot = rng.random_range(0..SLOTS);
        let variant = rng.random_range(0..VARIANTS);
        // Most steps want a live Ingress: prefer one.
        let live_slot = (0..SLOTS)
            .map(|i| (slot + i) % SLOTS)
            .find(|s| live[*s])
            .unwrap_or(slot);
        let step = match kind {
            Kind::CreateIngress | Kind::CreateIngressAdopting => {
                let Some(free) = (0..SLOTS).map(|i| (slot + i) % SLOTS).find(|s| !live[*s]) else {
                    continue;
                };
                live[free] = true;
                let class = if rng.random_bool(0.7) {
                    Class::Default
                } else {
                    CLASSES[rng.random_range(0..CLASSES.len())]
                };
                let exist_lb = (kind == Kind::CreateIngressAdopting)
                    .then(|| rng.random_range(0..=BUSY_USER_LB));
                Step::CreateIngress {
                    slot: free,
                    variant,
                    class,
                    exist_lb,
                }
            }
            Kind::ChangeIngress => Step::ChangeIngress {
                slot: live_slot,
                variant,
            },
            Kind::DeleteIngress => {
                live[live_slot] = false;
                Step::DeleteIngress { slot: live_slot }
            }
            Kind::RecreateIngress => Step::RecreateIngress { slot: live_slot },
            Kind::SetClass => Step::SetClass {
                slot: live_slot,
                class: CLASSES[rng.random_range(0..CLASSES.len())],
            },
            Kind::CreateIngressClass => Step::CreateIngressClass,
            Kind::DeleteIngressClass => Step::DeleteIngressClass,
            Kind::SetExistLb => Step::SetExistLb {
                slot: live_slot,
                lb: rng
                    .random_bool(0.7)
                    .then(|| rng.random_range(0..=BUSY_USER_LB)),
            },
            Kind::Nodes => {
                let node = rng.random_range(0..NODES);
                match rng.random_range(0..4) {
                    0 => Step::AddNode { node },
                    1 => Step::RemoveNode { node },
                    n => Step::SetNodeReady {
                        node,
                        ready: n == 3,
                    },
                }
            }
            Kind::Services => {
                let svc = rng.random_range(0..SERVICES.len());
                match rng.random_range(0..4) {
                    0 => Step::DeleteService { svc },
                    1 => Step::CreateService { svc },
                    _ => Step::SetNodePort {
                        svc,
                        port: NODE_PORTS[rng.random_range(0..NODE_PORTS.len())],
                    },
                }
            }
            Kind::ConsoleDeleteListener => Step::ConsoleDeleteListener { slot: live_slot },
            Kind::ConsoleAddForeignListener => Step::ConsoleAddForeignListener { slot: live_slot },
            Kind::ConsoleDeregisterTarget => Step::ConsoleDeregisterTarget { slot: live_slot },
            Kind::ConsoleRemoveClusterTag => Step::ConsoleRemoveClusterTag { slot: live_slot },
            Kind::Skip | Kind::Retain | Kind::Protect => Step::SetLifecycle {
                slot: live_slot,
                mark: match kind {
                    Kind::Skip => Mark::Skip,
                    Kind::Retain => Mark::Retain,
                    _ => Mark::Protect,
                },
                on: rng.random_bool(0.6),
            },
            Kind::Faults => {
                if rng.random_bool(0.5) {
                    Step::FaultsOn(FAULTS[rng.random_range(0..FAULTS.len())])
                } else {
                    Step::FaultsOff
                }
            }
            Kind::Kill => Step::KillDuringWork {
                slot: live_slot,
                variant,
            },
            Kind::DuplicateRuns => Step::DuplicateRuns { slot: live_slot },
            Kind::TimerSweep => Step::TimerSweep,
        };
        steps.push(step);
    }
    steps
}

fn needs_ingress(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::CreateIngress
            | Kind::CreateIngressAdopting
            | Kind::CreateIngressClass
            | Kind::DeleteIngressClass
            | Kind::Nodes
            | Kind::Services
            | Kind::Faults
            | Kind::TimerSweep
    )
}

/// The rules of rule shape `variant`: `(host, path, service index)`.
pub fn variant_rules(variant: u8) -> Vec<(&'static str, &'static str, usize)> {
    match variant % VARIANTS {
        0 => vec![("a.example.com", "/", 0)],
        1 => vec![("a.example.com", "/", 0), ("a.example.com", "/api", 1)],
        _ => vec![("b.example.com", "/", 1)],
    }
}

/// What the user asked of one Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressTruth {
    pub uid: String,
    pub variant: u8,
    pub class: Class,
    pub exist_lb: Option<usize>,
    /// `mode: skip`.
    pub skip: bool,
    /// `loadbalance-retain` (`None`: never set).
    pub retain: Option<bool>,
    /// `deletion-protection` (`None`: never set).
    pub protect: Option<bool>,
}

impl IngressTruth {
    pub fn new(variant: u8, class: Class, exist_lb: Option<usize>) -> Self {
        IngressTruth {
            uid: String::new(),
            variant,
            class,
            exist_lb,
            skip: false,
            retain: None,
            protect: None,
        }
    }

    /// Whether `mark` is on.
    pub fn has(&self, mark: Mark) -> bool {
        match mark {
            Mark::Skip => self.skip,
            Mark::Retain => self.retain == Some(true),
            Mark::Protect => self.protect == Some(true),
        }
    }
}

/// A CLB a lifecycle annotation keeps: seen carrying the annotation's effect (the skip mark,
/// `tke-lifecycle-owner=user`, DeleteProtect) while the annotation was on. Never deleted
/// from then on; once its Ingress is released, it is the user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub slot: usize,
    pub uid: String,
    /// Which annotations kept it.
    pub marks: Vec<Mark>,
}

impl Kept {
    /// Kept by `mode: skip`: its listeners and targets stay too, and only our tags may
    /// be written.
    pub fn skip(&self) -> bool {
        self.marks.contains(&Mark::Skip)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeTruth {
    pub present: bool,
    pub ready: bool,
}

/// The world as the history made it, outside the function.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    pub slots: [Option<IngressTruth>; SLOTS],
    pub class_exists: bool,
    pub nodes: [Option<NodeTruth>; NODES],
    /// nodePort per Service; `None`: deleted.
    pub services: [Option<i32>; SERVICES.len()],
    /// The users' CLB ids, by `existLbId` choice (the last one carries its own listener).
    pub user_lbs: Vec<String>,
    /// CLBs the function must never write: the busy user CLB, another cluster's CLB.
    pub untouchable: BTreeSet<String>,
    /// Listeners we did not create (the user's own, the console's): listener id → CLB id.
    pub foreign_listeners: BTreeMap<String, String>,
    /// CLBs whose cluster tag the console removed, with the call-log length at that moment:
    /// from then on they are the user's.
    pub disowned: BTreeMap<String, usize>,
    /// CLBs a lifecycle annotation keeps, by id.
    pub kept: BTreeMap<String, Kept>,
}

/// What the function must make of one live Ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly one CLB of ours for it, matching it.
    Managed,
    /// Ours, but it cannot be served (existLbId refused or contested): at most one
    /// CLB of ours carries its UID.
    Blocked,
    /// Its IngressClass is missing: hold, neither create nor release.
    Held,
    /// `mode: skip`: no write; at most one CLB of ours carries its UID, left as it is.
    Skipped,
    /// Not ours: no CLB of ours carries its UID.
    NotOurs,
}

impl Truth {
    /// Ours (`Some(true)`), not ours (`Some(false)`), or unknown while the IngressClass it
    /// names is missing (`None`).
    pub fn ours(&self, class: Class) -> Option<bool> {
        match class {
            Class::Default | Class::AnnotationQcloud => Some(true),
            Class::AnnotationOther | Class::NameOther => Some(false),
            Class::NameOurs => self.class_exists.then_some(true),
        }
    }

    /// The live Ingresses that are ours and name user CLB `lb` through `existLbId`.
    pub fn claimants(&self, lb: usize) -> Vec<usize> {
        (0..SLOTS)
            .filter(|s| {
                self.slots[*s]
                    .as_ref()
                    .is_some_and(|i| i.exist_lb == Some(lb) && self.ours(i.class) != Some(false))
            })
            .collect()
    }

    pub fn expect(&self, slot: usize) -> Option<Expect> {
        let ing = self.slots[slot].as_ref()?;
        Some(match self.ours(ing.class) {
            None => Expect::Held,
            Some(false) => Expect::NotOurs,
            Some(true) if ing.skip => Expect::Skipped,
            Some(true) => match ing.exist_lb {
                None => Expect::Managed,
                Some(lb) if lb == BUSY_USER_LB => Expect::Blocked,
                // Two Ingresses name the same CLB: one of them gets it (checked apart).
                Some(lb) if self.claimants(lb).len() > 1 => Expect::Blocked,
                Some(_) => Expect::Managed,
            },
        })
    }

    /// [`Truth::expect`] for every slot once the CLBs still tagged for an Ingress are taken
    /// into account. `tagged` maps each CLB carrying our cluster tag to the Ingress UID it
    /// carries. An Ingress that would be managed but names a user's CLB held over by another
    /// Ingress ([`Truth::held_over`]) is refused it (E4020) and so is blocked too; being
    /// blocked, it holds on to its own old CLB in turn, which may block a third Ingress.
    pub fn expectations(&self, tagged: &BTreeMap<String, String>) -> [Option<Expect>; SLOTS] {
        let mut e: [Option<Expect>; SLOTS] = std::array::from_fn(|s| self.expect(s));
        loop {
            let refused: Vec<usize> = (0..SLOTS)
                .filter(|s| e[*s] == Some(Expect::Managed))
                .filter(|s| {
                    self.slots[*s]
                        .as_ref()
                        .and_then(|i| i.exist_lb)
                        .and_then(|lb| self.user_lbs.get(lb))
                        .is_some_and(|id| self.held_over(&e, tagged, id))
                })
                .collect();
            if refused.is_empty() {
                return e;
            }
            for s in refused {
                e[s] = Some(Expect::Blocked);
            }
        }
    }

    /// Whether CLB `id` is still tagged (`tagged`, as in [`Truth::expectations`]) for a live
    /// Ingress that holds (missing class), is blocked (refused `existLbId`) or skipped, and
    /// no longer names it: such an Ingress changes nothing, so the CLB it had keeps serving
    /// it until the CLB it names can serve (issue 8 §1 #4: the old one is released once the
    /// new one serves), and stays unavailable to others until then.
    pub fn held_over(
        &self,
        e: &[Option<Expect>; SLOTS],
        tagged: &BTreeMap<String, String>,
        id: &str,
    ) -> bool {
        let Some(uid) = tagged.get(id) else {
            return false;
        };
        (0..SLOTS).any(|s| {
            self.slots[s].as_ref().is_some_and(|ing| {
                ing.uid == *uid
                    && matches!(e[s], Some(Expect::Held | Expect::Blocked | Expect::Skipped))
                    && ing
                        .exist_lb
                        .and_then(|i| self.user_lbs.get(i))
                        .map(String::as_str)
                        != Some(id)
            })
        })
    }

    /// Whether some rule of the Ingress in `slot` has its Service: then it must be served.
    pub fn has_backend(&self, slot: usize) -> bool {
        self.slots[slot].as_ref().is_some_and(|i| {
            variant_rules(i.variant)
                .iter()
                .any(|(_, _, svc)| self.services[*svc].is_some())
        })
    }

    /// `(instance, nodePort)` targets every rule backed by Service `svc` must have.
    pub fn targets(&self, svc: usize) -> Option<BTreeSet<(String, i64)>> {
        let port = self.services[svc]?;
        Some(
            (0..NODES)
                .filter(|n| self.nodes[*n].is_some_and(|t| t.present && t.ready))
                .map(|n| (instance(n), i64::from(port)))
                .collect(),
        )
    }
}

pub fn instance(node: usize) -> String {
    format!("ins-chaos{node:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_picks_the_same_history_and_another_seed_another() {
        let a = generate(7, 40, &ALL_KINDS);
        assert_eq!(a, generate(7, 40, &ALL_KINDS));
        assert_ne!(a, generate(8, 40, &ALL_KINDS));
        assert_eq!(a.len(), 40);
    }

    #[test]
    fn only_the_kinds_asked_for_are_generated() {
        let kinds = [Kind::CreateIngress, Kind::DeleteIngress, Kind::TimerSweep];
        for s in generate(3, 60, &kinds) {
            assert!(kinds.contains(&s.kind()), "{s:?}");
        }
    }

    #[test]
    fn a_missing_ingress_class_holds_and_two_claimants_of_one_clb_are_blocked() {
        let mut t = Truth::default();
        let ing = |exist_lb, class| {
            Some(IngressTruth {
                uid: "u".into(),
                ..IngressTruth::new(0, class, exist_lb)
            })
        };
        t.slots[0] = ing(None, Class::NameOurs);
        assert_eq!(t.expect(0), Some(Expect::Held));
        t.class_exists = true;
        assert_eq!(t.expect(0), Some(Expect::Managed));
        t.slots[1] = ing(Some(0), Class::Default);
        assert_eq!(t.expect(1), Some(Expect::Managed));
        t.slots[2] = ing(Some(0), Class::AnnotationQcloud);
        assert_eq!(t.expect(1), Some(Expect::Blocked));
        t.slots[2] = ing(Some(0), Class::AnnotationOther);
        assert_eq!(t.expect(1), Some(Expect::Managed));
        assert_eq!(t.expect(2), Some(Expect::NotOurs));
        t.slots[1].as_mut().unwrap().skip = true;
        assert_eq!(t.expect(1), Some(Expect::Skipped));
    }

    /// Seed 60272: ing-2 switched from user CLB 0 to the busy one (refused, it keeps CLB 0);
    /// ing-0 switched from CLB 1 to CLB 0 (refused while ing-2 holds it, so it keeps CLB 1).
    #[test]
    fn an_ingress_naming_a_clb_held_by_a_blocked_ingress_is_blocked_and_holds_its_own_old_clb() {
        let mut t = Truth {
            user_lbs: vec!["lb-0".into(), "lb-1".into(), "lb-busy".into()],
            class_exists: true,
            ..Truth::default()
        };
        let ing = |uid: &str, exist_lb| {
            Some(IngressTruth {
                uid: uid.into(),
                ..IngressTruth::new(0, Class::Default, Some(exist_lb))
            })
        };
        t.slots[2] = ing("u2", BUSY_USER_LB);
        t.slots[0] = ing("u0", 0);
        let tagged = BTreeMap::from([
            ("lb-0".to_string(), "u2".to_string()),
            ("lb-1".to_string(), "u0".to_string()),
        ]);
        // Alone, ing-0 would be managed: its named CLB has one claimant.
        assert_eq!(t.expect(0), Some(Expect::Managed));
        let e = t.expectations(&tagged);
        assert_eq!(e[2], Some(Expect::Blocked));
        assert_eq!(e[0], Some(Expect::Blocked));
        assert!(t.held_over(&e, &tagged, "lb-0"));
        assert!(t.held_over(&e, &tagged, "lb-1"));
        // Once ing-2 lets go of CLB 0, ing-0 takes it and CLB 1 is no longer held.
        let freed = BTreeMap::from([("lb-1".to_string(), "u0".to_string())]);
        let e = t.expectations(&freed);
        assert_eq!(e[0], Some(Expect::Managed));
        assert!(!t.held_over(&e, &freed, "lb-1"));
    }
}
