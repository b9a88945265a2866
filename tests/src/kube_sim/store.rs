//! The object store and the write semantics of the apiserver's generic registry: metadata
//! the server owns, one monotonic resourceVersion, generation, optimistic concurrency,
//! status-subresource split, finalizers and deletion.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::patch::{self, PatchKind};
use super::resources::{self, ResourceType, View};
use super::status::{ApiError, FieldError};
use super::validate::{self, Allocator};

/// (storage, namespace or "", name)
type Key = (String, String, String);

/// All objects, keyed by storage, namespace and name, in their stored form.
#[derive(Debug, Clone)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    alloc: Allocator,
}

/// Server time formats: seconds for `Time`, microseconds for `MicroTime`.
pub fn now_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A random RFC 4122 version-4 UUID, as the apiserver gives every object.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let x = u128::from_be_bytes(b);
    let x = (x & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `generateName` suffix: upstream `names.SimpleNameGenerator` (5 characters from an
/// alphabet without vowels and confusable digits, base truncated to 58).
fn generate_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let base: String = base.chars().take(58).collect();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn finalizers(obj: &Value) -> Vec<String> {
    strings_at(obj, "/metadata/finalizers")
}

/// The strings of the array at `pointer` (none when it is missing or not an array).
pub fn strings_at(obj: &Value, pointer: &str) -> Vec<String> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// The parts of an object whose change bumps `generation`: everything but metadata and
/// status.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// The status a create starts with for types whose strategy resets it.
fn initial_status(t: &ResourceType) -> Option<Value> {
    match (t.group, t.plural) {
        ("networking.k8s.io", "ingresses") | ("", "services") => {
            Some(json!({ "loadBalancer": {} }))
        }
        _ => None,
    }
}

/// events.k8s.io/v1 field names over core/v1 ones (upstream `events/v1` conversion).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The object as the endpoint of `t` shows it.
pub fn to_view(t: &ResourceType, stored: &Value) -> Value {
    match t.view {
        View::Stored => stored.clone(),
        View::EventsV1 => {
            let mut v = stored.clone();
            if let Some(m) = v.as_object_mut() {
                for (new, old) in EVENT_FIELDS {
                    if let Some(x) = m.remove(*old) {
                        m.insert((*new).to_string(), x);
                    }
                }
                m.insert("apiVersion".into(), json!(t.api_version()));
                m.insert("kind".into(), json!(t.kind));
            }
            v
        }
    }
}

/// The stored form of an object written through the endpoint of `t`.
fn from_view(t: &ResourceType, v: &Value) -> Value {
    match t.view {
        View::Stored => v.clone(),
        View::EventsV1 => {
            let mut s = v.clone();
            if let Some(m) = s.as_object_mut() {
                for (new, old) in EVENT_FIELDS {
                    if let Some(x) = m.remove(*new) {
                        m.insert((*old).to_string(), x);
                    }
                }
                m.insert("apiVersion".into(), json!("v1"));
                m.insert("kind".into(), json!("Event"));
            }
            s
        }
    }
}

/// What a DELETE may carry (`DeleteOptions.preconditions`).
#[derive(Debug, Default, Clone)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// The outcome of a write: the object as the endpoint shows it, and whether it was created.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    pub created: bool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store with the namespaces every cluster has.
    pub fn new() -> Self {
        let mut s = Store {
            objects: BTreeMap::new(),
            rv: 1000,
            alloc: Allocator::default(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if let Some(t) = resources::lookup("", "v1", "namespaces") {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let _ = s.create(t, None, obj);
            }
        }
        s
    }

    /// The current resourceVersion (of the last write).
    pub fn resource_version(&self) -> String {
        self.rv.to_string()
    }

    fn bump(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn key(t: &ResourceType, ns: Option<&str>, name: &str) -> Key {
        (
            t.storage.to_string(),
            if t.namespaced {
                ns.unwrap_or("").to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    fn stored(&self, t: &ResourceType, ns: Option<&str>, name: &str) -> Result<&Value, ApiError> {
        self.objects
            .get(&Self::key(t, ns, name))
            .ok_or_else(|| ApiError::not_found(t.qualified(), name))
    }

    pub fn get(&self, t: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.stored(t, ns, name).map(|o| to_view(t, o))
    }

    /// Objects of a type in one namespace (or all), in key order, as the endpoint shows them.
    pub fn list(&self, t: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((st, n, _), _)| st == t.storage && ns.is_none_or(|ns| ns == n))
            .map(|(_, o)| to_view(t, o))
            .collect()
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&("namespaces".to_string(), String::new(), ns.to_string()))
    }

    fn check_namespace(&self, t: &ResourceType, ns: Option<&str>) -> Result<(), ApiError> {
        if let (true, Some(ns)) = (t.namespaced, ns) {
            if !self.namespace_exists(ns) {
                if let Some(nt) = resources::lookup("", "v1", "namespaces") {
                    return Err(ApiError::not_found(nt.qualified(), ns));
                }
            }
        }
        Ok(())
    }

    /// Checks apiVersion/kind and the body namespace against the URL; fills the namespace.
    fn check_identity(t: &ResourceType, ns: Option<&str>, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
            if av != t.api_version() {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    t.api_version()
                )));
            }
        }
        if let Some(k) = obj.get("kind").and_then(Value::as_str) {
            if k != t.kind {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    t.kind
                )));
            }
        }
        obj["apiVersion"] = json!(t.api_version());
        obj["kind"] = json!(t.kind);
        let body_ns = meta_str(obj, "namespace").map(str::to_string);
        let meta = metadata_mut(obj);
        if t.namespaced {
            match (body_ns.as_deref(), ns) {
                (Some(b), Some(u)) if !b.is_empty() && b != u => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {}
            }
            if let Some(u) = ns {
                meta.insert("namespace".into(), json!(u));
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// POST: a new object.
    pub fn create(
        &mut self,
        t: &'static ResourceType,
        ns: Option<&str>,
        body: Value,
    ) -> Result<Value, ApiError> {
        let mut obj = from_view(t, &body);
        let storage_t = stored_type(t);
        Self::check_identity(storage_t, ns, &mut obj)?;
        self.check_namespace(t, ns)?;
        if meta_str(&obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        let mut errs = Vec::new();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(g) if !g.is_empty() => {
                    if let Some(e) =
                        validate::check_name(t, g.trim_end_matches('-'), "metadata.generateName")
                    {
                        errs.push(e);
                    }
                    name = generate_name(g);
                }
                _ => errs.push(FieldError {
                    detail: "name or generateName is required".into(),
                    ..FieldError::required("metadata.name")
                }),
            }
        } else if let Some(e) = validate::check_name(t, &name, "metadata.name") {
            errs.push(e);
        }
        errs.extend(validate::check(t, &body, None));
        if !errs.is_empty() {
            return Err(ApiError::invalid(t.kind, t.group, &name, errs));
        }
        let key = Self::key(t, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(t.qualified(), &name));
        }
        if let Some(st) = initial_status(t) {
            obj["status"] = st;
        }
        validate::apply_defaults(t, &mut obj, &mut self.alloc);
        let rv = self.bump();
        let meta = metadata_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("resourceVersion".into(), json!(rv));
        meta.insert("creationTimestamp".into(), json!(now_time()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("managedFields");
        if t.generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        self.objects.insert(key, obj.clone());
        Ok(to_view(t, &obj))
    }

    /// The common tail of PUT and PATCH on an existing object: `new` is the full desired
    /// object (in stored form); `status_only` for the /status subresource; `require_rv`
    /// when a missing resourceVersion must be refused (PUT on types without unconditional
    /// update).
    fn write_existing(
        &mut self,
        t: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        mut new: Value,
        status_only: bool,
        require_rv: bool,
    ) -> Result<Value, ApiError> {
        let old = self.stored(t, ns, name)?.clone();
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or("").to_string();
        match meta_str(&new, "resourceVersion") {
            Some(rv) if !rv.is_empty() && rv != old_rv => {
                return Err(ApiError::stale(t.qualified(), name))
            }
            Some(rv) if !rv.is_empty() => {}
            _ if require_rv => {
                return Err(ApiError::invalid(
                    t.kind,
                    t.group,
                    name,
                    vec![FieldError::invalid(
                        "metadata.resourceVersion",
                        "",
                        "must be specified for an update",
                    )],
                ))
            }
            _ => {}
        }
        if let Some(uid) = meta_str(&new, "uid") {
            if !uid.is_empty() && Some(uid) != meta_str(&old, "uid") {
                return Err(ApiError::conflict(
                    t.qualified(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid").unwrap_or("")
                    ),
                ));
            }
        }
        let mut next = if status_only {
            // Upstream status strategies keep everything but .status from the stored object.
            let mut n = old.clone();
            match new.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(m) = n.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            n
        } else {
            if t.status_subresource {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            new
        };
        let deleting = old.pointer("/metadata/deletionTimestamp").is_some();
        if !status_only {
            carry_allocations(t, &old, &mut next);
            let mut errs = validate::check(t, &to_view(t, &next), Some(&to_view(t, &old)));
            if deleting {
                let before = finalizers(&old);
                if finalizers(&next).iter().any(|f| !before.contains(f)) {
                    errs.push(FieldError::forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted",
                    ));
                }
            }
            if !errs.is_empty() {
                return Err(ApiError::invalid(t.kind, t.group, name, errs));
            }
            validate::apply_defaults(t, &mut next, &mut self.alloc);
        }
        // Fields only the server sets.
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let meta = metadata_mut(&mut next);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "name",
            "namespace",
        ] {
            match old_meta.get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        meta.remove("managedFields");
        meta.insert("resourceVersion".into(), json!(old_rv));
        if next == old {
            return Ok(to_view(t, &old));
        }
        if t.generation && spec_part(&next) != spec_part(&old) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut next).insert("generation".into(), json!(g + 1));
        }
        let rv = self.bump();
        metadata_mut(&mut next).insert("resourceVersion".into(), json!(rv));
        let key = Self::key(t, ns, name);
        if deleting && finalizers(&next).is_empty() {
            self.remove(&key);
        } else {
            self.objects.insert(key, next.clone());
        }
        Ok(to_view(t, &next))
    }

    /// PUT of the object or its /status.
    pub fn update(
        &mut self,
        t: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<Written, ApiError> {
        let mut obj = from_view(t, &body);
        Self::check_identity(stored_type(t), ns, &mut obj)?;
        let body_name = meta_str(&obj, "name").unwrap_or("");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if !self.objects.contains_key(&Self::key(t, ns, name)) {
            if t.create_on_update && !status_only {
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                return self.create(t, ns, to_view(t, &obj)).map(|object| Written {
                    object,
                    created: true,
                });
            }
            return Err(ApiError::not_found(t.qualified(), name));
        }
        let require_rv = !t.unconditional_update && !status_only;
        self.write_existing(t, ns, name, obj, status_only, require_rv)
            .map(|object| Written {
                object,
                created: false,
            })
    }

    /// PATCH of the object or its /status. `force` is server-side apply's flag (accepted;
    /// ownership conflicts are not modelled).
    pub fn patch(
        &mut self,
        t: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        status_only: bool,
    ) -> Result<Written, ApiError> {
        if kind == PatchKind::Strategic && !t.builtin {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json (strategic merge patch is not supported for custom resources)",
            ));
        }
        let current = match self.stored(t, ns, name) {
            Ok(o) => to_view(t, o),
            Err(e) if kind == PatchKind::Apply && !status_only => {
                let _ = e;
                let mut obj = body.clone();
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                let body_name = meta_str(&obj, "name").unwrap_or("");
                if body_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({name})"
                    )));
                }
                return self.create(t, ns, obj).map(|object| Written {
                    object,
                    created: true,
                });
            }
            Err(e) => return Err(e),
        };
        let mut patched = current.clone();
        match kind {
            PatchKind::Merge => patch::apply_merge_patch(&mut patched, body)?,
            PatchKind::Json => patch::apply_json_patch(&mut patched, body)?,
            PatchKind::Strategic => patch::apply_strategic_patch(&mut patched, body, t.plural)?,
            PatchKind::Apply => {
                if meta_str(body, "name").is_some_and(|n| n != name) {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        meta_str(body, "name").unwrap_or("")
                    )));
                }
                let plural = if t.builtin { t.plural } else { "" };
                patch::apply_strategic_patch(&mut patched, body, plural)?
            }
        }
        let mut obj = from_view(t, &patched);
        Self::check_identity(stored_type(t), ns, &mut obj)?;
        if meta_str(&obj, "name") != Some(name) {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        self.write_existing(t, ns, name, obj, status_only, false)
            .map(|object| Written {
                object,
                created: false,
            })
    }

    /// DELETE: removes the object, or with finalizers marks it with a deletionTimestamp.
    pub fn delete(
        &mut self,
        t: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
    ) -> Result<Value, ApiError> {
        let key = Self::key(t, ns, name);
        let old = self.stored(t, ns, name)?.clone();
        if let Some(uid) = &pre.uid {
            if Some(uid.as_str()) != meta_str(&old, "uid") {
                return Err(ApiError::conflict(
                    t.qualified(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid").unwrap_or("")
                    ),
                ));
            }
        }
        if let Some(rv) = &pre.resource_version {
            if Some(rv.as_str()) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::conflict(
                    t.qualified(),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta_str(&old, "resourceVersion").unwrap_or("")
                    ),
                ));
            }
        }
        if finalizers(&old).is_empty() {
            self.remove(&key);
            return Ok(to_view(t, &old));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(to_view(t, &old));
        }
        let mut next = old;
        let rv = self.bump();
        let meta = metadata_mut(&mut next);
        meta.insert("deletionTimestamp".into(), json!(now_time()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        meta.insert("resourceVersion".into(), json!(rv));
        self.objects.insert(key, next.clone());
        Ok(to_view(t, &next))
    }

    /// Removes an object; a namespace takes everything in it along (the namespace
    /// controller's work, done at once).
    fn remove(&mut self, key: &Key) {
        self.objects.remove(key);
        if key.0 == "namespaces" {
            let ns = key.2.clone();
            self.objects.retain(|(_, n, _), _| *n != ns);
        }
    }

    /// Test access: an object in stored form by apiVersion/kind.
    pub fn raw_get(&self, t: &ResourceType, ns: Option<&str>, name: &str) -> Option<Value> {
        self.objects.get(&Self::key(t, ns, name)).cloned()
    }

    /// Test access: stores an object as given (no validation), filling what the server owns
    /// and bumping its resourceVersion, as a concurrent writer would.
    pub fn raw_put(&mut self, t: &'static ResourceType, mut obj: Value) -> Result<Value, ApiError> {
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        let name = meta_str(&obj, "name")
            .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?
            .to_string();
        let key = Self::key(t, ns.as_deref(), &name);
        let old = self.objects.get(&key).cloned();
        let rv = self.bump();
        obj["apiVersion"] = json!(t.api_version());
        obj["kind"] = json!(t.kind);
        let meta = metadata_mut(&mut obj);
        let old_meta = old.as_ref().and_then(|o| o.get("metadata"));
        let uid = old_meta
            .and_then(|m| m.get("uid"))
            .cloned()
            .unwrap_or_else(|| json!(new_uid()));
        let created = old_meta
            .and_then(|m| m.get("creationTimestamp"))
            .cloned()
            .unwrap_or_else(|| json!(now_time()));
        meta.entry("uid").or_insert(uid);
        meta.entry("creationTimestamp").or_insert(created);
        meta.insert("resourceVersion".into(), json!(rv));
        self.objects.insert(key, obj.clone());
        Ok(obj)
    }

    /// Test access: removes an object outright (no finalizers). True when it existed.
    pub fn raw_delete(&mut self, t: &ResourceType, ns: Option<&str>, name: &str) -> bool {
        let key = Self::key(t, ns, name);
        let had = self.objects.contains_key(&key);
        self.remove(&key);
        had
    }
}

/// Both event endpoints are validated and stored as the type that owns the storage, except
/// for names and the view-specific checks, which use the endpoint's type.
fn stored_type(t: &'static ResourceType) -> &'static ResourceType {
    match t.view {
        View::Stored => t,
        View::EventsV1 => resources::lookup("", "v1", "events").unwrap_or(t),
    }
}

/// Service allocations a write leaves out are kept (upstream `patchAllocatedValues`).
fn carry_allocations(t: &ResourceType, old: &Value, new: &mut Value) {
    if t.plural != "services" || !t.group.is_empty() {
        return;
    }
    for f in ["clusterIP", "clusterIPs"] {
        let missing = new
            .pointer(&format!("/spec/{f}"))
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if let (true, Some(v)) = (missing, old.pointer(&format!("/spec/{f}"))) {
            if new.get("spec").is_some_and(Value::is_object) {
                new["spec"][f] = v.clone();
            }
        }
    }
    let same_type = old.pointer("/spec/type") == new.pointer("/spec/type")
        || new.pointer("/spec/type").is_none();
    if !same_type {
        // Upstream dropTypeDependentFields: leaving NodePort/LoadBalancer releases the node
        // ports the client merely carried over from the old object.
        let old_had_ports = matches!(
            old.pointer("/spec/type").and_then(Value::as_str),
            Some("NodePort" | "LoadBalancer")
        );
        let new_has_ports = matches!(
            new.pointer("/spec/type").and_then(Value::as_str),
            Some("NodePort" | "LoadBalancer")
        );
        if old_had_ports && !new_has_ports {
            let old_ports = old.pointer("/spec/ports").cloned().unwrap_or(Value::Null);
            if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut() {
                    let carried = old_ports.as_array().is_some_and(|o| {
                        o.iter().any(|op| {
                            op.get("port") == p.get("port")
                                && op.get("nodePort") == p.get("nodePort")
                        })
                    });
                    if let (true, Some(m)) = (carried, p.as_object_mut()) {
                        m.remove("nodePort");
                    }
                }
            }
        }
        return;
    }
    let old_ports: Vec<Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if !p.is_object() || p.get("nodePort").is_some_and(|n| n.as_i64() != Some(0)) {
                continue;
            }
            if let Some(np) = old_ports
                .iter()
                .find(|o| o.get("port") == p.get("port"))
                .and_then(|o| o.get("nodePort"))
            {
                p["nodePort"] = np.clone();
            }
        }
    }
}
