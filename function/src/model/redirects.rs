//! Redirects (tke-annotations.md §2): `auto-rewrite` (every HTTPS:443 rule gets an HTTP:80
//! twin that redirects to it), `auto-rewrite-code`, `rewrite-support` with the `rewrite`
//! entries of `http-rules` / `https-rules`, and `rule-mix-both` (§3). Pure: annotations in,
//! the redirect rules and the redirects out.
//!
//! Which redirects are ours: with `auto-rewrite` or `rewrite-support` set (to anything, also
//! `"false"`), every redirect whose source rule is on a listener of ours belongs to the
//! Ingress (TKE: "all redirects on the CLB belong to the Ingress"); without them, console
//! redirects are left alone. Either way, a redirect joining a rule or listener the plan
//! deletes goes first (the API refuses the delete otherwise). Removing the annotation thus
//! removes our redirects too: the twin and redirect-only rules are no longer desired, and
//! their redirects go with them (our choice where TKE asks for an explicit `"false"`, U).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::annotations::parse_bool;
use super::desired::DesiredRule;
use super::lb::{Domain, ListenerKey, Protocol, RuleKey};
use super::listen_ports::ListenPorts;
use super::paths::{clb_domain, clb_urls};
use super::problem::{codes, Problem};

pub const AUTO_REWRITE: &str = "ingress.cloud.tencent.com/auto-rewrite";
pub const AUTO_REWRITE_CODE: &str = "ingress.cloud.tencent.com/auto-rewrite-code";
pub const REWRITE_SUPPORT: &str = "ingress.cloud.tencent.com/rewrite-support";
pub const RULE_MIX_BOTH: &str = "kubernetes.io/ingress.rule-mix-both";

/// Redirect status codes the API takes [SDK: 301, 302, 307].
pub const REWRITE_CODES: [u16; 3] = [301, 302, 307];

/// The code of an auto redirect when `auto-rewrite-code` names none. UNCONFIRMED
/// (tke-annotations.md §2.1, third-party): 302.
pub const AUTO_REWRITE_DEFAULT_CODE: u16 = 302;

/// `auto-rewrite-code`'s value → (default code, code per host). UNCONFIRMED format
/// (tke-annotations.md §2.1, third-party, TKE ≥ v2.11.0):
/// `{"defaultRewriteCode": 302, "rewriteCodeInfos": [{"host": "a.com", "rewriteCode": 307}]}`;
/// both keys optional. This is the one place that reads it.
pub fn parse_auto_rewrite_code(value: &str) -> Result<RewriteCodes, String> {
    let v: Value = serde_json::from_str(value).map_err(|e| format!("invalid JSON ({e})"))?;
    let obj = v.as_object().ok_or("must be a JSON object")?;
    let code = |v: &Value, what: &str| {
        v.as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| REWRITE_CODES.contains(c))
            .ok_or(format!("{what} must be 301, 302 or 307"))
    };
    let mut out = RewriteCodes::default();
    for (k, v) in obj {
        match k.as_str() {
            "defaultRewriteCode" => out.default = code(v, k)?,
            "rewriteCodeInfos" => {
                for (i, info) in v
                    .as_array()
                    .ok_or("rewriteCodeInfos must be an array")?
                    .iter()
                    .enumerate()
                {
                    let host = info
                        .get("host")
                        .and_then(Value::as_str)
                        .filter(|h| !h.is_empty())
                        .ok_or(format!("rewriteCodeInfos[{i}].host is missing"))?;
                    let c = info
                        .get("rewriteCode")
                        .ok_or(format!("rewriteCodeInfos[{i}].rewriteCode is missing"))?;
                    out.per_host
                        .insert(host.to_string(), code(c, "rewriteCode")?);
                }
            }
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    Ok(out)
}

/// Whether an auto redirect carries the matched URL over (`TakeUrl`). ASSUMPTION (the API
/// has the flag, TKE does not say what it sends): true, so `http://a.com/x/y` lands on
/// `https://a.com/x/y` and not on the rule's path alone.
pub const AUTO_TAKE_URL: bool = true;
/// The code of a manual (`rewrite` entry) redirect. ASSUMPTION (TKE's entry has no code
/// field; the console's default): 301.
pub const MANUAL_REWRITE_CODE: u16 = 301;
/// Whether a manual redirect carries the matched URL over. ASSUMPTION: false, the entry
/// names its target path exactly (`/v1/path1` → `/path1`).
pub const MANUAL_TAKE_URL: bool = false;

/// Auto redirect codes: a default and per host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteCodes {
    pub default: u16,
    pub per_host: BTreeMap<String, u16>,
}

impl Default for RewriteCodes {
    fn default() -> Self {
        RewriteCodes {
            default: AUTO_REWRITE_DEFAULT_CODE,
            per_host: BTreeMap::new(),
        }
    }
}

impl RewriteCodes {
    fn code(&self, domain: &Domain) -> u16 {
        match domain {
            Domain::Name(host) => self.per_host.get(host).copied(),
            Domain::Default => None,
        }
        .unwrap_or(self.default)
    }
}

/// The redirect annotations, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectAnnotations {
    /// `auto-rewrite`, when set.
    pub auto_rewrite: Option<bool>,
    /// `rewrite-support`, when set.
    pub rewrite_support: Option<bool>,
    pub codes: RewriteCodes,
    /// `rule-mix-both: "true"`: every spec rule on HTTP and HTTPS.
    pub rule_mix_both: bool,
    /// The `rewrite` entries of `http-rules` / `https-rules`.
    pub entries: Vec<RewriteEntry>,
}

impl RedirectAnnotations {
    /// Every redirect from our listeners is the Ingress's to set (see the module docs).
    pub fn claims_all(&self) -> bool {
        self.auto_rewrite.is_some() || self.rewrite_support.is_some()
    }

    /// Manual entries take effect with `rewrite-support: "true"`, which `auto-rewrite:
    /// "true"` implies (TKE adds it itself).
    fn manual_on(&self) -> bool {
        self.rewrite_support == Some(true) || self.auto_rewrite == Some(true)
    }
}

/// One `rewrite` entry: the rule (`host`, `path`) on the listeners of the entry's protocol
/// redirects to the rule (`rewrite.host`, `rewrite.path`) of the listener on `rewrite.port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteEntry {
    pub protocol: Protocol,
    pub source: RuleKey,
    pub target_port: u16,
    pub target: RuleKey,
}

/// Parses the redirect annotations (not the entries, see [`parse_entry`]). A malformed value,
/// or `rule-mix-both` combined with what it excludes, is an Error: the Ingress is refused and
/// nothing changes (the redirects stay as they are).
pub fn parse(
    annotations: &BTreeMap<String, String>,
    rule_mix: bool,
) -> (RedirectAnnotations, Vec<Problem>) {
    let mut out = RedirectAnnotations::default();
    let mut problems = Vec::new();
    let get = |k: &str| {
        annotations
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let mut boolean = |key: &str| {
        let v = get(key)?;
        let b = parse_bool(v);
        if b.is_none() {
            problems.push(Problem::error(
                codes::INVALID_ANNOTATION,
                format!("{key}: {v:?} is not a bool; nothing is changed"),
            ));
        }
        b
    };
    out.auto_rewrite = boolean(AUTO_REWRITE);
    out.rewrite_support = boolean(REWRITE_SUPPORT);
    out.rule_mix_both = boolean(RULE_MIX_BOTH).unwrap_or(false);
    if let Some(v) = get(AUTO_REWRITE_CODE) {
        match parse_auto_rewrite_code(v) {
            Ok(c) => out.codes = c,
            Err(why) => problems.push(Problem::error(
                codes::INVALID_ANNOTATION,
                format!("{AUTO_REWRITE_CODE}: {why}; nothing is changed"),
            )),
        }
    }
    if out.rule_mix_both {
        let clash: Vec<&str> = [
            (rule_mix, "kubernetes.io/ingress.rule-mix"),
            (out.rewrite_support == Some(true), REWRITE_SUPPORT),
            (out.auto_rewrite == Some(true), AUTO_REWRITE),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
        .collect();
        if !clash.is_empty() {
            problems.push(Problem::error(
                codes::INVALID_ANNOTATION,
                format!(
                    "{RULE_MIX_BOTH} cannot be combined with {}; nothing is changed",
                    clash.join(", ")
                ),
            ));
        }
    }
    (out, problems)
}

/// The `rewrite` of entry `i` of `http-rules` / `https-rules` (`key`), if it has one: a
/// malformed one is refused with the list's own code (`code`: E4022 / E4023).
pub fn parse_entry(
    key: &str,
    i: usize,
    entry: &Value,
    protocol: Protocol,
    code: &'static str,
) -> Result<Option<RewriteEntry>, Problem> {
    let Some(rewrite) = entry.get("rewrite") else {
        return Ok(None);
    };
    let bad = |why: String| Problem::error(code, format!("{key}[{i}].rewrite: {why}"));
    let text = |v: &Value, field: &str| match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    };
    let rule = |v: &Value| -> Result<RuleKey, Problem> {
        let host = text(v, "host")?;
        let path = text(v, "path")?;
        let domain = clb_domain(host.as_deref()).map_err(|p| bad(p.message))?;
        let url = clb_urls(path.as_deref(), "ImplementationSpecific")
            .map_err(|p| bad(p.message))?
            .remove(0);
        Ok(RuleKey { domain, url })
    };
    let port = rewrite
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| bad("port must be a port number".into()))?;
    Ok(Some(RewriteEntry {
        protocol,
        source: rule(entry)?,
        target_port: port,
        target: rule(rewrite)?,
    }))
}

/// Where a redirect goes, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectTo {
    pub listener: ListenerKey,
    pub rule: RuleKey,
    pub code: u16,
    pub take_url: bool,
}

/// The redirects an Ingress wants, by source (listener, rule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredRedirects {
    /// Every redirect from our listeners is ours: one not listed here is removed.
    pub claims_all: bool,
    pub redirects: BTreeMap<(ListenerKey, RuleKey), RedirectTo>,
}

/// Adds the redirect rules (auto twins, redirect-only entries) to `rules` and returns the
/// redirects. A redirect that cannot be placed is skipped with a Warning.
pub fn desire(
    ann: &RedirectAnnotations,
    listen_ports: &ListenPorts,
    rules: &mut BTreeMap<ListenerKey, BTreeMap<RuleKey, DesiredRule>>,
    problems: &mut Vec<Problem>,
) -> DesiredRedirects {
    let mut out = DesiredRedirects {
        claims_all: ann.claims_all(),
        redirects: BTreeMap::new(),
    };
    let listed = listen_ports.listeners();
    if !ann.entries.is_empty() && !ann.manual_on() {
        problems.push(Problem::warning(
            codes::INVALID_ANNOTATION,
            format!("rewrite entries need {REWRITE_SUPPORT}: \"true\"; ignored"),
        ));
    }
    for e in ann.entries.iter().filter(|_| ann.manual_on()) {
        let label = format!("{}{} -> :{}", e.source.domain, e.source.url, e.target_port);
        let target = listed.iter().find(|k| k.port == e.target_port).copied();
        let Some(target) =
            target.filter(|t| rules.get(t).is_some_and(|r| r.contains_key(&e.target)))
        else {
            problems.push(
                Problem::warning(
                    codes::INVALID_ANNOTATION,
                    format!(
                        "redirect target {}{} on port {} is not a rule of this Ingress; skipped",
                        e.target.domain, e.target.url, e.target_port
                    ),
                )
                .for_rule(label),
            );
            continue;
        };
        let base = match e.protocol {
            Protocol::Https => ListenerKey::HTTPS_443,
            _ => ListenerKey::HTTP_80,
        };
        for source in listen_ports.expand(base) {
            if (source, &e.source) == (target, &e.target) {
                problems.push(
                    Problem::warning(
                        codes::INVALID_ANNOTATION,
                        "a rule cannot redirect to itself",
                    )
                    .for_rule(label.clone()),
                );
                continue;
            }
            rules
                .entry(source)
                .or_default()
                .entry(e.source.clone())
                .or_default();
            out.redirects.insert(
                (source, e.source.clone()),
                RedirectTo {
                    listener: target,
                    rule: e.target.clone(),
                    code: MANUAL_REWRITE_CODE,
                    take_url: MANUAL_TAKE_URL,
                },
            );
        }
    }
    if ann.auto_rewrite == Some(true) {
        let (http, https) = (ListenerKey::HTTP_80, ListenerKey::HTTPS_443);
        if !(listed.contains(&http) && listed.contains(&https)) {
            problems.push(Problem::warning(
                codes::INVALID_ANNOTATION,
                format!(
                    "{AUTO_REWRITE} needs the listeners HTTP:80 and HTTPS:443; no auto redirects"
                ),
            ));
        } else {
            let targets: Vec<RuleKey> = rules
                .get(&https)
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            for key in targets {
                // A manual entry for the same HTTP rule wins.
                if out.redirects.contains_key(&(http, key.clone())) {
                    continue;
                }
                rules
                    .entry(http)
                    .or_default()
                    .entry(key.clone())
                    .or_default();
                out.redirects.insert(
                    (http, key.clone()),
                    RedirectTo {
                        listener: https,
                        code: ann.codes.code(&key.domain),
                        rule: key,
                        take_url: AUTO_TAKE_URL,
                    },
                );
            }
        }
    }
    // The API refuses chains (A→B while B→C): a redirect to a rule that redirects is skipped.
    let sources: BTreeSet<(ListenerKey, RuleKey)> = out.redirects.keys().cloned().collect();
    out.redirects.retain(|(l, k), to| {
        let chained = sources.contains(&(to.listener, to.rule.clone()));
        if chained {
            problems.push(
                Problem::warning(
                    codes::INVALID_ANNOTATION,
                    format!(
                        "{l} {k} redirects to {} {}, which redirects itself; skipped",
                        to.listener, to.rule
                    ),
                )
                .for_rule(k.to_string()),
            );
        }
        !chained
    });
    out
}

#[cfg(test)]
mod tests;
