//! The resource types kube-sim serves, with the per-type rules of their registry strategies.

use super::status::Qualified;

/// How a type's object names are validated (apimachinery's name validators).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NameRule {
    /// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, ≤253.
    Subdomain,
    /// DNS-1123 label: lower-case alphanumerics and `-`, ≤63 (namespaces).
    Label,
    /// DNS-1035 label: a DNS-1123 label starting with a letter (services).
    Dns1035,
    /// Path-segment names only (no `/`, `%`, not `.` or `..`): events, nodes are subdomains
    /// but Event names are only checked this way by the real server.
    PathSegment,
}

/// Which view of a shared storage an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum View {
    /// The object as stored.
    Stored,
    /// events.k8s.io/v1 over the core/v1 Event storage.
    EventsV1,
}

#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    /// Has a `/status` subresource: main writes ignore `.status`, status writes change only it.
    pub status_subresource: bool,
    /// `metadata.generation` is kept and bumped when anything but metadata/status changes.
    pub generation: bool,
    /// PUT of a missing object creates it (`AllowCreateOnUpdate`).
    pub create_on_update: bool,
    /// PUT without `metadata.resourceVersion` overwrites (`AllowUnconditionalUpdate`).
    pub unconditional_update: bool,
    /// A built-in type: strategic merge patch is served and list items carry no TypeMeta.
    /// Custom resources get neither, as on a real server.
    pub builtin: bool,
    pub name_rule: NameRule,
    /// Objects of two endpoints sharing one store share this key.
    pub storage: &'static str,
    pub view: View,
    /// The verbs served (discovery advertises them; others are 405).
    pub verbs: &'static [&'static str],
}

/// What an ordinary stored type serves (no watch: kube-sim serves no watches).
pub const STORED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
];

/// The `serviceaccounts/token` subresource (TokenRequest, what `kubectl create token` posts).
pub const TOKEN_SUBRESOURCE: &str = "token";

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn qualified(&self) -> Qualified<'static> {
        Qualified {
            group: self.group,
            resource: self.plural,
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        short_names,
        namespaced,
        status_subresource: false,
        generation: false,
        create_on_update: false,
        unconditional_update: true,
        builtin: true,
        name_rule: NameRule::Subdomain,
        storage: plural,
        view: View::Stored,
        verbs: STORED_VERBS,
    }
}

/// An RBAC type (the rbac registries allow create on update).
const fn rbac(
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        create_on_update: true,
        ..rt(
            "rbac.authorization.k8s.io",
            plural,
            singular,
            kind,
            &[],
            namespaced,
        )
    }
}

/// Every served type. Strategy flags follow the upstream registries
/// (`pkg/registry/.../strategy.go`); where unsure the stricter choice is taken.
pub static TYPES: &[ResourceType] = &[
    ResourceType {
        status_subresource: true,
        name_rule: NameRule::Label,
        ..rt("", "namespaces", "namespace", "Namespace", &["ns"], false)
    },
    ResourceType {
        status_subresource: true,
        ..rt("", "nodes", "node", "Node", &["no"], false)
    },
    ResourceType {
        status_subresource: true,
        create_on_update: true,
        name_rule: NameRule::Dns1035,
        ..rt("", "services", "service", "Service", &["svc"], true)
    },
    ResourceType {
        create_on_update: true,
        ..rt("", "endpoints", "endpoints", "Endpoints", &["ep"], true)
    },
    // Pods: status (conditions, readiness gates) is written through pods/status only.
    ResourceType {
        status_subresource: true,
        ..rt("", "pods", "pod", "Pod", &["po"], true)
    },
    rt("", "secrets", "secret", "Secret", &[], true),
    ResourceType {
        create_on_update: true,
        name_rule: NameRule::PathSegment,
        ..rt("", "events", "event", "Event", &["ev"], true)
    },
    ResourceType {
        status_subresource: true,
        generation: true,
        ..rt(
            "networking.k8s.io",
            "ingresses",
            "ingress",
            "Ingress",
            &["ing"],
            true,
        )
    },
    ResourceType {
        generation: true,
        ..rt(
            "networking.k8s.io",
            "ingressclasses",
            "ingressclass",
            "IngressClass",
            &[],
            false,
        )
    },
    ResourceType {
        // endpointslice strategy: generation 1 on create, bumped when the slice changes.
        generation: true,
        ..rt(
            "discovery.k8s.io",
            "endpointslices",
            "endpointslice",
            "EndpointSlice",
            &[],
            true,
        )
    },
    ResourceType {
        create_on_update: true,
        name_rule: NameRule::PathSegment,
        storage: "events",
        view: View::EventsV1,
        ..rt("events.k8s.io", "events", "event", "Event", &["ev"], true)
    },
    ResourceType {
        unconditional_update: false,
        ..rt("coordination.k8s.io", "leases", "lease", "Lease", &[], true)
    },
    ResourceType {
        create_on_update: true,
        ..rt(
            "",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            &["sa"],
            true,
        )
    },
    rbac("roles", "role", "Role", true),
    rbac("rolebindings", "rolebinding", "RoleBinding", true),
    rbac("clusterroles", "clusterrole", "ClusterRole", false),
    rbac(
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
    ),
    // A question, not an object: answered from the RBAC objects above, never stored.
    ResourceType {
        verbs: &["create"],
        ..rt(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            "SelfSubjectAccessReview",
            &[],
            false,
        )
    },
    ResourceType {
        version: "v1alpha1",
        generation: true,
        unconditional_update: false,
        builtin: false,
        ..rt(
            "cloud.tencent.com",
            "tkeserviceconfigs",
            "tkeserviceconfig",
            "TkeServiceConfig",
            &["tsc"],
            true,
        )
    },
];

/// The type served at group/version/plural.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .find(|t| t.group == group && t.version == version && t.plural == plural)
}

/// The type of an object by its apiVersion and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    TYPES
        .iter()
        .find(|t| t.api_version() == api_version && t.kind == kind)
}

/// The group/versions served, in discovery order (core first).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for t in TYPES {
        if !out.contains(&(t.group, t.version)) {
            out.push((t.group, t.version));
        }
    }
    out
}
