//! Ingress host and path → CLB rule domain and URL.

use super::lb::Domain;
use super::problem::{codes, Problem};

/// Longest CLB rule URL [DOC 214/9032: 1-200 characters].
pub const MAX_URL_LEN: usize = 200;
/// Longest CLB rule domain [DOC 214/9032: 1-80 characters].
pub const MAX_DOMAIN_LEN: usize = 80;

/// Ingress `pathType` + `path` → the CLB rule URLs that together give its semantics.
///
/// The fact this rests on (tencent-cloud-more.md §1.3, DOC 214/9032): a plain CLB URL `/a` is
/// a *string* prefix matched longest-first (`/a` also matches `/ab`), a leading `=` makes
/// it an exact match (tried before any prefix), and a rule `/a/` answers `/a` with a 301
/// redirect.
///
/// - `Exact` `/a` → `=/a`. ASSUMPTION: TKE's own mapping is undocumented
///   (tencent-cloud-more.md §1.3 "`Exact` → `=`?"); `=` is in the CLB's and TKE's (E4031)
///   allowed character sets, so this is the closest CLB form.
/// - `Prefix` `/a` or `/a/` → two rules, `=/a` and `/a/` ([`prefix_urls`]): Kubernetes
///   matches by path element, so `/a`, `/a/` and `/a/b` match and `/ab` does not. The exact
///   rule answers `/a` itself (no 301 from `/a/`), the prefix rule everything below it; a
///   request for `/ab` falls through to a shorter rule, as in Kubernetes. Cost: two CLB rules
///   per Prefix path other than `/` (`/` alone is one rule: it matches everything).
/// - `ImplementationSpecific` (and no pathType) → the path as written, one rule: TKE's plain
///   CLB string-prefix matching (TKE passes it through; ASSUMPTION, unverified).
/// - No path → `/`.
///
/// A path that does not start with `/`, is too long, or uses characters outside the CLB's
/// non-regex set `a-z A-Z 0-9 . - _ / = ? :` is refused with E4031 (TKE's code). Regular
/// expressions (`~`) are refused too: TKE documents none for Ingress paths (its E4031
/// character set has no `~`).
pub fn clb_urls(path: Option<&str>, path_type: &str) -> Result<Vec<String>, Problem> {
    let path = path.filter(|p| !p.is_empty()).unwrap_or("/");
    let valid_chars = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_/=?:".contains(c));
    if !path.starts_with('/') || !valid_chars {
        return Err(Problem::warning(
            codes::INVALID_PATH,
            format!("path {path:?} is not a valid CLB URL (must start with / and use a-z A-Z 0-9 . - _ / = ? :)"),
        ));
    }
    let urls = match path_type {
        "Exact" => vec![format!("={path}")],
        "Prefix" => prefix_urls(path),
        "ImplementationSpecific" | "" => vec![path.to_string()],
        other => {
            return Err(Problem::warning(
                codes::INVALID_PATH,
                format!("unknown pathType {other:?}"),
            ))
        }
    };
    if urls.iter().any(|u| u.len() > MAX_URL_LEN) {
        return Err(Problem::warning(
            codes::INVALID_PATH,
            format!("path {path:?} is longer than {MAX_URL_LEN} characters as a CLB URL"),
        ));
    }
    Ok(urls)
}

/// The CLB rules of a Kubernetes `Prefix` path (see [`clb_urls`]): the exact path without
/// its trailing slashes, and the string prefix with exactly one.
pub fn prefix_urls(path: &str) -> Vec<String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return vec!["/".to_string()];
    }
    vec![format!("={trimmed}"), format!("{trimmed}/")]
}

/// Ingress host → CLB rule domain. No host → the CLB's default domain (its VIP, as TKE
/// does). Kubernetes validates hosts as lower-case DNS names with an optional leading `*.`;
/// the CLB accepts `*.example.com` (note: on CLB it also matches deeper names such as
/// `a.b.example.com`, tencent-cloud-more.md §1.1). Anything else is E4052 (TKE's code).
pub fn clb_domain(host: Option<&str>) -> Result<Domain, Problem> {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return Ok(Domain::Default);
    };
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let labels: Vec<&str> = bare.split('.').collect();
    if host.len() > MAX_DOMAIN_LEN || labels.len() < 2 || !labels.iter().all(|l| label_ok(l)) {
        return Err(Problem::warning(
            codes::INVALID_HOST,
            format!("host {host:?} is not a valid CLB domain"),
        ));
    }
    Ok(Domain::Name(host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_type_mapping_table() {
        let cases: [(Option<&str>, &str, &[&str]); 9] = [
            (Some("/api"), "Exact", &["=/api"]),
            (Some("/api"), "Prefix", &["=/api", "/api/"]),
            (Some("/api/"), "Prefix", &["=/api", "/api/"]),
            (Some("/a/b//"), "Prefix", &["=/a/b", "/a/b/"]),
            (Some("/"), "Prefix", &["/"]),
            (Some("/api/"), "ImplementationSpecific", &["/api/"]),
            (None, "ImplementationSpecific", &["/"]),
            (None, "Prefix", &["/"]),
            (Some("/a_b:c?x=1"), "Exact", &["=/a_b:c?x=1"]),
        ];
        for (path, ty, want) in cases {
            assert_eq!(clb_urls(path, ty).unwrap(), want, "{path:?} {ty}");
        }
    }

    /// Nginx-style CLB matching (tencent-cloud-more.md §1.3): exact rules first, then the
    /// longest string prefix. Used to prove the Prefix shapes give Kubernetes semantics.
    fn clb_match<'a>(rules: &'a [String], request: &str) -> Option<&'a str> {
        if let Some(exact) = rules.iter().find(|r| r.strip_prefix('=') == Some(request)) {
            return Some(exact);
        }
        rules
            .iter()
            .filter(|r| !r.starts_with('=') && request.starts_with(r.as_str()))
            .max_by_key(|r| r.len())
            .map(String::as_str)
    }

    #[test]
    fn prefix_rules_match_by_path_element_like_kubernetes() {
        let rules = clb_urls(Some("/a"), "Prefix").unwrap();
        for hit in ["/a", "/a/", "/a/b", "/a/b/c"] {
            assert!(clb_match(&rules, hit).is_some(), "{hit} must match /a");
        }
        for miss in ["/ab", "/abc/", "/", "/b/a"] {
            assert_eq!(clb_match(&rules, miss), None, "{miss} must not match /a");
        }
        // The same path as ImplementationSpecific keeps CLB string-prefix matching.
        let plain = clb_urls(Some("/a"), "ImplementationSpecific").unwrap();
        assert!(clb_match(&plain, "/ab").is_some());
    }

    #[test]
    fn bad_paths_are_e4031() {
        let long = format!("/{}", "a".repeat(200));
        for (path, ty) in [
            ("api", "Prefix"),
            ("/a b", "Prefix"),
            ("/(.*)", "ImplementationSpecific"),
            ("~/api/.*", "ImplementationSpecific"),
            ("/x", "Regex"),
            (long.as_str(), "Prefix"),
        ] {
            assert_eq!(
                clb_urls(Some(path), ty).unwrap_err().code,
                "E4031",
                "{path}"
            );
        }
    }

    #[test]
    fn hosts_map_to_domains() {
        assert_eq!(clb_domain(None).unwrap(), Domain::Default);
        assert_eq!(clb_domain(Some("")).unwrap(), Domain::Default);
        assert_eq!(
            clb_domain(Some("a.example.com")).unwrap(),
            Domain::Name("a.example.com".into())
        );
        assert_eq!(
            clb_domain(Some("*.example.com")).unwrap(),
            Domain::Name("*.example.com".into())
        );
        for bad in [
            "Upper.com",
            "localhost",
            "a..com",
            "*.*.com",
            "-a.com",
            "a_b.com",
        ] {
            assert_eq!(clb_domain(Some(bad)).unwrap_err().code, "E4052", "{bad}");
        }
    }
}
