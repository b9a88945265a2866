//! Audit records (or persisted Events) shipped to CLS and delivered by the SCF CLS trigger:
//! `{"clslogs":{"data":"<base64 of gzip>"}}` → `{"records":[{"timestamp","content"}]}`.

use std::io::Read;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{item_change, DecodeError, Decoded, SkipReason, Source};

/// Async SCF events are ≤ 128 KB compressed; gzip of JSON rarely exceeds 20:1, so 16 MiB of
/// decompressed text is far above any honest batch and stops a decompression bomb.
const MAX_DECOMPRESSED: u64 = 16 * 1024 * 1024;

/// Fields of an audit Event that CLS may hand back as JSON text instead of objects when they
/// lie deeper than the topic's index parses (tencent-cloud-more.md §4.3, an assumption until a
/// real record is captured).
const MAYBE_STRINGIFIED: &[&str] = &[
    "objectRef",
    "user",
    "responseStatus",
    "requestObject",
    "responseObject",
    "annotations",
    "involvedObject",
    "regarding",
    "source",
];

pub(super) fn decode(clslogs: &Value) -> Result<Decoded, DecodeError> {
    let data = clslogs
        .get("data")
        .and_then(Value::as_str)
        .ok_or(DecodeError::Cls("`clslogs.data` missing".into()))?;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| DecodeError::Cls(format!("base64: {e}")))?;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut text)
        .map_err(|e| DecodeError::Cls(format!("gzip: {e}")))?;
    if text.len() as u64 > MAX_DECOMPRESSED {
        return Err(DecodeError::Cls("decompressed batch too large".into()));
    }
    let logs: Value =
        serde_json::from_slice(&text).map_err(|e| DecodeError::Cls(format!("JSON: {e}")))?;
    let records = logs
        .get("records")
        .and_then(Value::as_array)
        .ok_or(DecodeError::Cls("`records` missing".into()))?;

    let mut decoded = Decoded::new(Source::Cls);
    for record in records {
        decoded.record(
            record_content(record)
                .ok_or(SkipReason::Malformed)
                .and_then(|c| item_change(&c)),
        );
    }
    Ok(decoded)
}

/// A record's `content`: a JSON object, or text holding one; normalised to the nested shape.
fn record_content(record: &Value) -> Option<Value> {
    let content = match record.get("content")? {
        Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
        other => other.clone(),
    };
    let Value::Object(map) = content else {
        return None;
    };
    Some(Value::Object(normalise(map)))
}

/// Accepts dotted keys (`objectRef.resource`) and stringified nested objects.
fn normalise(flat: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in flat {
        let value = match value {
            Value::String(text) if MAYBE_STRINGIFIED.contains(&key.as_str()) => {
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or(Value::String(text))
            }
            other => other,
        };
        insert_path(&mut out, &key, value);
    }
    out
}

/// Dotted levels turned into nested objects. Real audit keys nest at most three deep
/// (`responseObject.source.component`); a hostile record could chain `objectRef.` without end
/// and exhaust the stack, so deeper parts stay one flat key (which then matches nothing).
const MAX_DOTTED_DEPTH: usize = 4;

fn insert_path(out: &mut Map<String, Value>, key: &str, value: Value) {
    insert_path_within(out, key, value, MAX_DOTTED_DEPTH);
}

fn insert_path_within(out: &mut Map<String, Value>, key: &str, value: Value, depth: usize) {
    match key.split_once('.') {
        Some((head, rest)) if depth > 0 && MAYBE_STRINGIFIED.contains(&head) => {
            let slot = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = slot {
                insert_path_within(inner, rest, value, depth - 1);
            }
        }
        _ => {
            // An explicit nested object wins over nothing, and merges with dotted siblings.
            match (out.get_mut(key), value) {
                (Some(Value::Object(existing)), Value::Object(incoming)) => {
                    existing.extend(incoming);
                }
                (_, value) => {
                    out.insert(key.to_string(), value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;

    fn clslogs(records: &Value) -> Value {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(records.to_string().as_bytes()).unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        json!({ "data": data })
    }

    #[test]
    fn a_very_deep_dotted_key_is_skipped_without_exhausting_the_stack() {
        let deep = format!("{}resource", "objectRef.".repeat(200_000));
        let content = json!({ deep: "ingresses", "stage": "ResponseComplete", "verb": "update" });
        let records = json!({"records": [{"timestamp": "1", "content": content.to_string()}]});
        let decoded = decode(&clslogs(&records)).unwrap();
        assert_eq!(decoded.items, 1);
        assert!(decoded.changes.is_empty());
    }

    #[test]
    fn dotted_keys_a_few_levels_deep_still_nest() {
        let mut out = Map::new();
        insert_path(&mut out, "objectRef.resource", json!("ingresses"));
        insert_path(
            &mut out,
            "responseObject.source.component",
            json!("kubelet"),
        );
        assert_eq!(out["objectRef"]["resource"], "ingresses");
        assert_eq!(out["responseObject"]["source"]["component"], "kubelet");
    }
}
