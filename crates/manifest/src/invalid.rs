//! A problem found while checking a value, before it is tied to a file and a line.
//!
//! Checks run inside serde visitors so that yaml_serde stamps the error with the position of the
//! value being read. serde only carries a message string through, so an [`Invalid`] travels as
//! JSON behind a marker character and is decoded again in [`crate::document`].

use serde::{Deserialize, Serialize, de};

/// Starts an encoded [`Invalid`] inside a serde error message.
const MARKER: char = '\u{1e}';

/// Stands for "where this happened" in a message; replaced by the document path when it is known.
pub(crate) const WHERE: &str = "\u{1d}";

/// What is wrong, how to fix it, and optionally text to look for to find the exact line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Invalid {
    pub message: String,
    pub hint: Option<String>,
    /// Where in the document, when the library's path would be wrong or missing.
    pub at: Option<String>,
    /// Boxed: most problems are placed by the YAML library, and a small `Invalid` keeps every
    /// `Result<_, Invalid>` in the parser cheap to return.
    pub find: Option<Box<Find>>,
    /// Found while reading a mapping's key: the tracked path ends with that key, and the problem
    /// belongs to the mapping.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub of_key: bool,
}

/// A `key: value` line to look for in the frontmatter, for errors the YAML library cannot place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Find {
    pub key: String,
    /// The value after the colon (compared without quotes, case-insensitively); `None` for any.
    pub value: Option<String>,
    /// How many earlier matches to pass over (1 finds the second occurrence).
    pub skip: usize,
    /// Only match keys at the start of a line with no indentation.
    pub top_level: bool,
}

impl Invalid {
    /// A problem with no hint.
    pub fn new(message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            hint: None,
            at: None,
            find: None,
            of_key: false,
        }
    }

    /// Adds how to fix it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Marks a problem with a mapping's key (see [`Invalid::of_key`]).
    pub fn of_key(mut self) -> Self {
        self.of_key = true;
        self
    }

    /// Names the document path of the problem, such as `git[1].Name`.
    pub fn at(mut self, at: impl Into<String>) -> Self {
        self.at = Some(at.into());
        self
    }

    /// Locates the problem at the `skip`-th later occurrence of `key: value`.
    pub fn find(mut self, key: &str, value: Option<&str>, skip: usize) -> Self {
        self.find = Some(Box::new(Find {
            key: key.to_string(),
            value: value.map(str::to_string),
            skip,
            top_level: false,
        }));
        self
    }

    /// Locates the problem at the top-level key `key`.
    pub fn find_top(mut self, key: &str, skip: usize) -> Self {
        self.find = Some(Box::new(Find {
            key: key.to_string(),
            value: None,
            skip,
            top_level: true,
        }));
        self
    }

    /// Turns the problem into a serde error, to be stamped with a position by the deserializer.
    pub fn into_de<E: de::Error>(self) -> E {
        // Serializing plain strings cannot fail.
        let json = serde_json::to_string(&self).unwrap_or_default();
        E::custom(format!("{MARKER}{json}"))
    }

    /// Splits a serde error message into the text before the marker and the problem after it.
    pub fn decode(message: &str) -> Option<(&str, Invalid)> {
        let (before, json) = message.split_once(MARKER)?;
        let invalid = serde_json::from_str(json).ok()?;
        Some((before, invalid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_serde_error() {
        let invalid = Invalid::new("bad").hint("fix").find("Name", Some("x"), 1);
        let err: serde_json::Error = invalid.clone().into_de();
        let text = format!("git[0]: {}", err);
        let (before, decoded) = Invalid::decode(&text).unwrap();
        assert_eq!(before, "git[0]: ");
        assert_eq!(decoded, invalid);
    }
}
