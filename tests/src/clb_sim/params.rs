//! Typed reads of request parameters that answer with the API's own error codes: a missing
//! required field is `MissingParameter`, a field the action does not define is
//! `UnknownParameter`, a wrongly typed one is `InvalidParameter`.

use serde_json::{Map, Value};

/// An API error: the `Code` and `Message` of the response envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An object of an array field with its path (`Rules.0`).
pub type Item<'a> = (String, &'a Map<String, Value>);

/// A JSON object at a path in the request (`Rules.0`), with typed getters.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl<'a> Obj<'a> {
    pub fn new(map: &'a Map<String, Value>, path: &'a str) -> Self {
        Obj { map, path }
    }

    /// Rejects any field not in `known`.
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        for k in self.map.keys() {
            if !known.contains(&k.as_str()) {
                return Err(ApiError::new(
                    "UnknownParameter",
                    format!("The parameter `{}` is not recognized", join(self.path, k)),
                ));
            }
        }
        Ok(())
    }

    /// Every field as sent, non-null ones only.
    pub fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.iter().filter(|(_, v)| !v.is_null())
    }

    /// Fields the emulator does not model: absent, or equal to the value that means
    /// "the default behaviour", they pass; anything else is `UnsupportedOperation` rather
    /// than being silently ignored.
    pub fn refuse_unmodelled(&self, fields: &[(&str, Option<Value>)]) -> ApiResult<()> {
        for (name, default) in fields {
            if let Some(v) = self.get(name) {
                if default.as_ref() != Some(v) {
                    return Err(ApiError::new(
                        "UnsupportedOperation",
                        format!("`{}` = {v} is not emulated", join(self.path, name)),
                    ));
                }
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn type_error(&self, name: &str, want: &str) -> ApiError {
        ApiError::new(
            "InvalidParameter",
            format!("The parameter `{}` must be {want}", join(self.path, name)),
        )
    }

    pub fn missing(&self, name: &str) -> ApiError {
        ApiError::new(
            "MissingParameter",
            format!(
                "The request is missing a required parameter `{}`",
                join(self.path, name)
            ),
        )
    }

    pub fn invalid_value(&self, name: &str, why: &str) -> ApiError {
        ApiError::new(
            "InvalidParameterValue",
            format!("The value of `{}` is invalid: {why}", join(self.path, name)),
        )
    }

    pub fn str(&self, name: &str) -> ApiResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.type_error(name, "a string")),
        }
    }

    pub fn req_str(&self, name: &str) -> ApiResult<String> {
        self.str(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn int(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.type_error(name, "an integer")),
            Some(_) => Err(self.type_error(name, "an integer")),
        }
    }

    /// An integer within `lo..=hi`, `InvalidParameterValue.Range` outside it.
    pub fn int_in(&self, name: &str, lo: i64, hi: i64) -> ApiResult<Option<i64>> {
        match self.int(name)? {
            Some(v) if v < lo || v > hi => Err(ApiError::new(
                "InvalidParameterValue.Range",
                format!(
                    "`{}` must be between {lo} and {hi}, got {v}",
                    join(self.path, name)
                ),
            )),
            v => Ok(v),
        }
    }

    pub fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.type_error(name, "a boolean")),
        }
    }

    pub fn obj(&self, name: &str) -> ApiResult<Option<&'a Map<String, Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(self.type_error(name, "an object")),
        }
    }

    fn arr(&self, name: &str) -> ApiResult<Option<&'a Vec<Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.type_error(name, "an array")),
        }
    }

    /// An array, `LimitExceeded` when longer than `max`.
    fn arr_max(&self, name: &str, max: usize) -> ApiResult<Option<&'a Vec<Value>>> {
        let a = self.arr(name)?;
        if let Some(a) = a {
            if a.len() > max {
                return Err(ApiError::new(
                    "LimitExceeded",
                    format!(
                        "`{}` holds {} items, at most {max} are allowed",
                        join(self.path, name),
                        a.len()
                    ),
                ));
            }
        }
        Ok(a)
    }

    pub fn strs(&self, name: &str, max: usize) -> ApiResult<Option<Vec<String>>> {
        let Some(a) = self.arr_max(name, max)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.type_error(name, "an array of strings")),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    pub fn ints(&self, name: &str, max: usize) -> ApiResult<Option<Vec<i64>>> {
        let Some(a) = self.arr_max(name, max)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.type_error(name, "an array of integers"))
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// The objects of an array field, each with its own path (`Rules.0`).
    pub fn objs(&self, name: &str, max: usize) -> ApiResult<Option<Vec<Item<'a>>>> {
        let Some(a) = self.arr_max(name, max)? else {
            return Ok(None);
        };
        a.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(m) => Ok((format!("{}.{i}", join(self.path, name)), m)),
                _ => Err(self.type_error(name, "an array of objects")),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    pub fn path(&self) -> &str {
        self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_missing_and_mistyped_fields_get_their_codes() {
        let v = json!({"A": 1, "B": "x", "Z": true});
        let m = v.as_object().unwrap();
        let o = Obj::new(m, "");
        assert_eq!(o.only(&["A", "B"]).unwrap_err().code, "UnknownParameter");
        assert_eq!(o.req_str("C").unwrap_err().code, "MissingParameter");
        assert_eq!(o.str("A").unwrap_err().code, "InvalidParameter");
        assert_eq!(
            o.int_in("A", 2, 5).unwrap_err().code,
            "InvalidParameterValue.Range"
        );
        assert_eq!(o.int("A").unwrap(), Some(1));
    }

    #[test]
    fn nested_paths_name_the_field() {
        let v = json!({"Rules": [{"Url": 3}]});
        let o = Obj::new(v.as_object().unwrap(), "");
        let rules = o.objs("Rules", 10).unwrap().unwrap();
        let r = Obj::new(rules[0].1, &rules[0].0);
        assert!(r.str("Url").unwrap_err().message.contains("Rules.0.Url"));
        assert_eq!(o.objs("Rules", 0).unwrap_err().code, "LimitExceeded");
    }
}
