//! Deserialization that checks as it reads, so every error points at the offending YAML node.
//!
//! yaml_serde stamps an error with the position of the node being read when the error is raised
//! *inside* the visitor for that node. So keys are checked while the key is read, scalars while the
//! scalar is read, and whole-mapping rules (such as "`auth` needs both halves") at the end of the
//! mapping's visitor.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use crate::invalid::{Invalid, WHERE};
use crate::suggest;

/// A mapping of a manifest with a fixed set of keys.
pub(crate) trait Section: Sized {
    /// What the mapping is, for "expected …" messages.
    const WHAT: &'static str;
    /// Every key the mapping accepts.
    const KEYS: &'static [&'static str];
    /// The raw fields, as derived by serde.
    type Fields: DeserializeOwned;
    /// Rules spanning several fields.
    fn check(fields: Self::Fields) -> Result<Self, Invalid>;
}

/// Deserializes a [`Section`]: unknown and repeated keys are errors at the key.
pub(crate) fn section<'de, D: Deserializer<'de>, T: Section>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(SectionVisitor::<T>(PhantomData))
}

struct SectionVisitor<T>(PhantomData<T>);

impl<'de, T: Section> Visitor<'de> for SectionVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::WHAT)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let checked = CheckedKeys {
            inner: map,
            keys: Keys::plain(T::KEYS),
            seen: BTreeSet::new(),
        };
        let fields = T::Fields::deserialize(MapAccessDeserializer::new(checked))?;
        T::check(fields).map_err(Invalid::into_de)
    }
}

/// The keys a mapping accepts, and how to talk about them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys<'k> {
    /// Accepted keys.
    pub accepted: &'k [&'k str],
    /// Keys to suggest and list (legacy keys are accepted but not advertised).
    pub shown: &'k [&'k str],
    /// Added to the hint of an unknown key.
    pub extra_hint: Option<&'k str>,
}

impl<'k> Keys<'k> {
    /// Every accepted key is shown.
    pub fn plain(keys: &'k [&'k str]) -> Self {
        Keys {
            accepted: keys,
            shown: keys,
            extra_hint: None,
        }
    }
}

/// Wraps a map so that each key is checked while it is read.
struct CheckedKeys<'k, A> {
    inner: A,
    keys: Keys<'k>,
    seen: BTreeSet<usize>,
}

impl<'de, 'k, A: MapAccess<'de>> MapAccess<'de> for CheckedKeys<'k, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let key = KeySeed {
            keys: self.keys,
            seen: &mut self.seen,
        };
        let Some(index) = self.inner.next_key_seed(key)? else {
            return Ok(None);
        };
        let name: &str = self.keys.accepted[index];
        seed.deserialize(IntoDeserializer::<'de, A::Error>::into_deserializer(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Reads a key and returns its index in the accepted keys, or an error at the key.
pub(crate) struct KeySeed<'k, 's> {
    pub keys: Keys<'k>,
    pub seen: &'s mut BTreeSet<usize>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        let Some(index) = self.keys.accepted.iter().position(|k| *k == key) else {
            return Err(unknown_key(key, self.keys).into_de());
        };
        if !self.seen.insert(index) {
            return Err(Invalid::new(format!("`{key}` is given twice in {WHERE}"))
                .hint("keep one of them")
                .of_key()
                .into_de());
        }
        Ok(index)
    }
}

fn unknown_key(key: &str, keys: Keys<'_>) -> Invalid {
    let mut message = format!("unknown key `{key}` in {WHERE}");
    if let Some(close) = suggest::closest(key, keys.shown) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    let mut hint = format!("valid keys here: {}", suggest::quoted_list(keys.shown));
    if let Some(extra) = keys.extra_hint {
        hint.push_str("; ");
        hint.push_str(extra);
    }
    Invalid::new(message).hint(hint).of_key()
}

/// A check of a scalar's text.
pub(crate) type Check<T> = fn(&str) -> Result<T, Invalid>;

/// Reads a scalar as text (numbers and booleans as written) and checks it at the scalar.
pub(crate) fn text<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    what: &'static str,
    check: Check<T>,
) -> Result<T, D::Error> {
    deserializer.deserialize_str(TextSeed { what, check })
}

/// Like [`text`], with `null` or `~` read as `None`.
pub(crate) fn optional_text<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    what: &'static str,
    check: Check<T>,
) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_option(OptionalText(TextSeed { what, check }))
}

/// Reads a sequence of checked scalars; a repeated entry is an error.
pub(crate) fn text_list<'de, D: Deserializer<'de>, T: PartialEq + fmt::Display>(
    deserializer: D,
    what: &'static str,
    check: Check<T>,
) -> Result<Vec<T>, D::Error> {
    deserializer.deserialize_seq(ListVisitor(TextSeed { what, check }))
}

/// Reads an optional list of checked scalars; `null` is `None`, an empty list is an error (write
/// nothing instead, so that "absent" has one spelling).
pub(crate) fn optional_nonempty_list<'de, D: Deserializer<'de>, T: PartialEq + fmt::Display>(
    deserializer: D,
    what: &'static str,
    check: Check<T>,
) -> Result<Option<Vec<T>>, D::Error> {
    deserializer.deserialize_option(OptionalList(TextSeed { what, check }))
}

/// Treats an explicit `null` like an absent key.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

struct TextSeed<T> {
    what: &'static str,
    check: Check<T>,
}

impl<T> Clone for TextSeed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TextSeed<T> {}

impl<'de, T> DeserializeSeed<'de> for TextSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, T> Visitor<'de> for TextSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.check)(text).map_err(Invalid::into_de)
    }
}

struct OptionalText<T>(TextSeed<T>);

impl<'de, T> Visitor<'de> for OptionalText<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.what)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

struct ListVisitor<T>(TextSeed<T>);

impl<'de, T: PartialEq + fmt::Display> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}s", self.0.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.0)? {
            if items.contains(&item) {
                return Err(Invalid::new(format!("`{item}` is listed twice in {WHERE}"))
                    .hint("remove the repeated entry")
                    .into_de());
            }
            items.push(item);
        }
        Ok(items)
    }
}

struct OptionalList<T>(TextSeed<T>);

impl<'de, T: PartialEq + fmt::Display> Visitor<'de> for OptionalList<T> {
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}s", self.0.what)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(NonEmpty(ListVisitor(self.0)))
    }
}

struct NonEmpty<V>(V);

impl<'de, T: PartialEq + fmt::Display> Visitor<'de> for NonEmpty<ListVisitor<T>> {
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let items = self.0.visit_seq(seq)?;
        if items.is_empty() {
            return Err(Invalid::new(format!("{WHERE} is an empty list"))
                .hint("remove the key to allow everything, or list at least one entry")
                .into_de());
        }
        Ok(Some(items))
    }
}
