//! The `env` section: variables set in the agent's container.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::invalid::{Invalid, WHERE};
use crate::names;
use crate::strict;

/// The value of one variable of a bottle's `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `"?"` or `"?Question text"`: asked of the user at launch, kept secret.
    Prompt {
        /// The text shown when asking, when the manifest gives one.
        prompt: Option<String>,
    },
    /// `"${HOST_VAR}"`: the value of a variable of the host's environment, kept secret.
    Host(String),
    /// Anything else: this exact text.
    Literal(String),
}

impl EnvValue {
    /// Reads a value as written in a manifest; newlines and NUL are refused.
    pub fn parse(text: &str) -> Result<EnvValue, String> {
        parse(text).map_err(|invalid| invalid.message)
    }

    /// Whether the value is a secret (prompted or taken from the host), so only its name may be
    /// shown to plugins and logs.
    pub fn is_secret(&self) -> bool {
        !matches!(self, EnvValue::Literal(_))
    }
}

/// Serializes as a one-entry object: `{"prompt": null}`, `{"host": "X"}`, `{"literal": "v"}`.
impl Serialize for EnvValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            EnvValue::Prompt { prompt } => map.serialize_entry("prompt", prompt)?,
            EnvValue::Host(name) => map.serialize_entry("host", name)?,
            EnvValue::Literal(text) => map.serialize_entry("literal", text)?,
        }
        map.end()
    }
}

fn parse(text: &str) -> Result<EnvValue, Invalid> {
    if text.contains(['\0', '\n', '\r']) {
        return Err(
            Invalid::new("the value contains a newline or NUL character")
                .hint("environment values must fit on one line; keep multi-line data in a file"),
        );
    }
    if let Some(question) = text.strip_prefix('?') {
        let question = question.trim();
        let prompt = (!question.is_empty()).then(|| question.to_string());
        return Ok(EnvValue::Prompt { prompt });
    }
    let host_var = text
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| names::is_env_name(name));
    Ok(match host_var {
        Some(name) => EnvValue::Host(name.to_string()),
        None => EnvValue::Literal(text.to_string()),
    })
}

/// Deserializes the `env` mapping, checking names at the key and values at the value.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, EnvValue>, D::Error> {
    deserializer.deserialize_map(EnvVisitor)
}

struct EnvVisitor;

impl<'de> Visitor<'de> for EnvVisitor {
    type Value = BTreeMap<String, EnvValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of variable names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut env = BTreeMap::new();
        while let Some(name) = map.next_key_seed(NameSeed { env: &env })? {
            let value = map.next_value_seed(ValueSeed)?.ok_or_else(|| {
                Invalid::new(format!("`{name}` has no value"))
                    .at(format!("env.{name}"))
                    .hint(format!(
                        "write `{name}: \"?\"` to ask at launch, `{name}: \"${{{name}}}\"` to pass \
                         the host's value, or `{name}: \"\"` for an empty value"
                    ))
                    .find(&name, None, 0)
                    .into_de()
            })?;
            env.insert(name, value);
        }
        Ok(env)
    }
}

/// A variable name: valid, and not given twice.
struct NameSeed<'a> {
    env: &'a BTreeMap<String, EnvValue>,
}

impl<'de> DeserializeSeed<'de> for NameSeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an environment variable name")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        let name = names::env_name(text).map_err(Invalid::into_de)?;
        if self.env.contains_key(&name) {
            return Err(Invalid::new(format!("`{name}` is set twice in {WHERE}"))
                .hint("keep one of them")
                .into_de());
        }
        Ok(name)
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Option<EnvValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        strict::optional_text(deserializer, "a string, number or boolean", parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_forms() {
        assert_eq!(parse("?").unwrap(), EnvValue::Prompt { prompt: None });
        assert_eq!(
            parse("?Your token").unwrap(),
            EnvValue::Prompt {
                prompt: Some("Your token".into())
            }
        );
        assert_eq!(
            parse("${GH_TOKEN}").unwrap(),
            EnvValue::Host("GH_TOKEN".into())
        );
        assert_eq!(
            parse("${GH_TOKEN}x").unwrap(),
            EnvValue::Literal("${GH_TOKEN}x".into())
        );
        assert_eq!(parse("${1X}").unwrap(), EnvValue::Literal("${1X}".into()));
        assert!(parse("a\nb").is_err());
        assert!(parse("a\0b").is_err());
    }

    #[test]
    fn serializes_as_one_entry_objects() {
        let json = |v: EnvValue| serde_json::to_string(&v).unwrap();
        assert_eq!(
            json(EnvValue::Prompt { prompt: None }),
            r#"{"prompt":null}"#
        );
        assert_eq!(json(EnvValue::Host("X".into())), r#"{"host":"X"}"#);
        assert_eq!(json(EnvValue::Literal("v".into())), r#"{"literal":"v"}"#);
    }
}
