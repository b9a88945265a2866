//! `ingress.cloud.tencent.com/listen-ports`: the listeners an Ingress gets instead of the
//! default HTTP:80 / HTTPS:443, e.g. `[{"HTTP":80},{"HTTPS":443},{"HTTP":8080}]`.
//!
//! ASSUMPTION (tke-annotations.md §3, UNCONFIRMED: third-party transcription and manifests):
//! the value is a JSON array of one-key objects, protocol → port; every HTTP entry carries
//! the rules the Ingress puts on HTTP and every HTTPS entry the rules it puts on HTTPS
//! (`rule-mix` and `spec.tls` decide which those are, as without the annotation).
//! [`LISTEN_PORTS_MEANING`] names this assumption in one place.

use serde_json::Value;

use super::lb::{ListenerKey, Protocol};
use super::problem::{codes, Problem};

pub const LISTEN_PORTS: &str = "ingress.cloud.tencent.com/listen-ports";

/// Where the assumed meaning of the annotation comes from (see the module comment).
pub const LISTEN_PORTS_MEANING: &str =
    "tke-annotations.md §3 (UNCONFIRMED): each HTTP entry gets the HTTP rules, each HTTPS entry the HTTPS rules";

/// CLB listener ports [DOC 214: 1-65535, unique within one CLB].
const PORT_RANGE: std::ops::RangeInclusive<u64> = 1..=65535;

/// The listeners of each protocol. `Default` is TKE's HTTP:80 / HTTPS:443.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenPorts {
    pub http: Vec<u16>,
    pub https: Vec<u16>,
}

impl Default for ListenPorts {
    fn default() -> Self {
        ListenPorts {
            http: vec![ListenerKey::HTTP_80.port],
            https: vec![ListenerKey::HTTPS_443.port],
        }
    }
}

impl ListenPorts {
    /// The listeners that carry the rules the default model puts on `listener` (HTTP:80 or
    /// HTTPS:443): every listed port of that protocol.
    pub fn expand(&self, listener: ListenerKey) -> impl Iterator<Item = ListenerKey> + '_ {
        let ports = match listener.protocol {
            Protocol::Http => self.http.as_slice(),
            Protocol::Https => self.https.as_slice(),
            _ => &[],
        };
        ports.iter().map(move |&port| ListenerKey {
            protocol: listener.protocol,
            port,
        })
    }

    /// [`Self::expand`] for each listener a rule was placed on; a rule whose protocol has no
    /// listed port goes nowhere, with a warning (the user listed what they want).
    pub fn place(
        &self,
        placed: Vec<ListenerKey>,
        rule: &str,
        problems: &mut Vec<Problem>,
    ) -> Vec<ListenerKey> {
        let mut out = Vec::new();
        for listener in placed {
            let before = out.len();
            out.extend(self.expand(listener));
            if out.len() == before {
                problems.push(
                    Problem::warning(
                        codes::BAD_LISTEN_PORTS,
                        format!(
                            "{LISTEN_PORTS} lists no {} port; the rule is not on {}",
                            listener.protocol, listener.protocol
                        ),
                    )
                    .for_rule(rule),
                );
            }
        }
        out
    }

    /// Every listener this annotation asks for, in (protocol, port) order.
    pub fn listeners(&self) -> Vec<ListenerKey> {
        let mut out: Vec<ListenerKey> = [ListenerKey::HTTP_80, ListenerKey::HTTPS_443]
            .into_iter()
            .flat_map(|k| self.expand(k))
            .collect();
        out.sort();
        out
    }
}

/// Parses the annotation's value. Anything but a non-empty array of `{"HTTP"|"HTTPS": port}`
/// with distinct ports in 1–65535 is refused with [`codes::BAD_LISTEN_PORTS`].
pub fn parse(value: &str) -> Result<ListenPorts, Problem> {
    let bad = |why: String| {
        Problem::error(
            codes::BAD_LISTEN_PORTS,
            format!("{LISTEN_PORTS}: {why} (expected e.g. [{{\"HTTP\":80}},{{\"HTTPS\":443}}])"),
        )
    };
    let entries = match serde_json::from_str::<Value>(value) {
        Ok(Value::Array(a)) if !a.is_empty() => a,
        Ok(_) => return Err(bad("must be a non-empty JSON array".into())),
        Err(e) => return Err(bad(format!("invalid JSON ({e})"))),
    };
    let mut out = ListenPorts {
        http: Vec::new(),
        https: Vec::new(),
    };
    let mut seen = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some((protocol, port)) = entry
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(bad(format!("entry {i} is not one {{protocol: port}} pair")));
        };
        let port = port
            .as_u64()
            .filter(|p| PORT_RANGE.contains(p))
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| bad(format!("entry {i}: port {port} is not in 1-65535")))?;
        if seen.contains(&port) {
            return Err(bad(format!(
                "port {port} is listed twice (a CLB port carries one listener)"
            )));
        }
        seen.push(port);
        match protocol.as_str() {
            "HTTP" => out.http.push(port),
            "HTTPS" => out.https.push(port),
            other => {
                return Err(bad(format!(
                    "entry {i}: protocol {other:?} is not HTTP or HTTPS"
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    #[test]
    fn the_documented_examples_parse_into_ports_per_protocol() {
        let p = parse(r#"[{"HTTP":80},{"HTTPS":443},{"HTTP":8080},{"HTTPS":8443}]"#).unwrap();
        assert_eq!(p.http, vec![80, 8080]);
        assert_eq!(p.https, vec![443, 8443]);
        let http: Vec<u16> = p.expand(ListenerKey::HTTP_80).map(|k| k.port).collect();
        assert_eq!(http, vec![80, 8080]);
        assert_eq!(p.listeners().len(), 4);
    }

    #[test]
    fn a_protocol_left_out_gets_no_listener() {
        let p = parse(r#"[{"HTTPS":8443}]"#).unwrap();
        assert_eq!(p.expand(ListenerKey::HTTP_80).count(), 0);
        assert_eq!(
            p.expand(ListenerKey::HTTPS_443).collect::<Vec<_>>(),
            vec![ListenerKey {
                protocol: Protocol::Https,
                port: 8443
            }]
        );
    }

    #[test]
    fn the_default_is_http_80_and_https_443() {
        assert_eq!(
            ListenPorts::default().listeners(),
            vec![ListenerKey::HTTP_80, ListenerKey::HTTPS_443]
        );
    }

    #[test]
    fn malformed_values_are_refused_with_one_code() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"HTTP":80}"#,
            r#"[{"HTTP":80,"HTTPS":443}]"#,
            r#"[{"TCP":80}]"#,
            r#"[{"http":80}]"#,
            r#"[{"HTTP":0}]"#,
            r#"[{"HTTP":65536}]"#,
            r#"[{"HTTP":"80"}]"#,
            r#"[{"HTTP":80.5}]"#,
            r#"[{"HTTP":80},{"HTTPS":80}]"#,
            r#"[80]"#,
        ] {
            let p = parse(bad).unwrap_err();
            assert_eq!(p.code, codes::BAD_LISTEN_PORTS, "{bad}");
            assert_eq!(p.severity, Severity::Error, "{bad}");
        }
    }
}
