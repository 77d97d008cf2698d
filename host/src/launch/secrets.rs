//! Resolving secret values at launch: asked on the terminal (`?`), copied from the host
//! environment (`${VAR}`), or, for a route token not declared in `env`, read from the host variable
//! the route names.
//!
//! Values live only here and in the `docker create` request of the container that needs them; the
//! [`Debug`] form never shows them.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};

use bottle_manifest::{Bottle, EnvValue};

/// Resolved secret values by name.
#[derive(Default, Clone)]
pub struct SecretValues(BTreeMap<String, String>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl SecretValues {
    /// The value of `name`, if resolved.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every value, for checks that nothing leaked.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }

    /// Insert a value (tests).
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }
}

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `${VAR}` or a route's token variable is not set on the host.
    #[error(
        "secret `{name}` comes from the host variable `{var}`, which is not set; export it before `bottle start`"
    )]
    HostVarUnset {
        /// Secret name.
        name: String,
        /// Host variable.
        var: String,
    },
    /// A prompted secret with no way to ask.
    #[error(
        "secret `{0}` is asked at launch, but standard input is closed; run `bottle start` in a terminal or pipe the value on stdin"
    )]
    NoInput(String),
    /// Reading failed.
    #[error("reading secret `{0}`: {1}")]
    Read(String, std::io::Error),
    /// An empty answer.
    #[error("secret `{0}` was given an empty value; a secret must not be empty")]
    Empty(String),
    /// A value too short for the egress proxy's DLP to search for.
    #[error(
        "secret `{name}` is {len} bytes; secrets shorter than {MIN_SECRET_LEN} bytes cannot be searched \
         for in outgoing traffic without matching ordinary text, so the egress proxy could not keep \
         it in. Use a longer value (rotate it), or set it as a plain variable if it is not secret"
    )]
    TooShort {
        /// Secret name.
        name: String,
        /// Its length in bytes (never the value).
        len: usize,
    },
}

/// Shortest secret the egress proxy's DLP searches for (it refuses to start with a shorter one).
pub const MIN_SECRET_LEN: usize = bottle_secret_scan::MIN_SECRET_LEN;

/// A resolved value, refused if the egress proxy could not protect it.
fn checked(name: String, value: String) -> Result<(String, String), SecretError> {
    if value.is_empty() {
        return Err(SecretError::Empty(name));
    }
    if value.len() < MIN_SECRET_LEN {
        return Err(SecretError::TooShort {
            name,
            len: value.len(),
        });
    }
    Ok((name, value))
}

/// Resolve every secret the bottle declares. Prompts go to stderr; a non-terminal stdin gives one
/// value per line, in name order.
pub fn resolve(bottle: &Bottle) -> Result<SecretValues, SecretError> {
    let mut values = SecretValues::default();
    for name in bottle.secret_names() {
        let value = match bottle.env.get(&name) {
            Some(EnvValue::Prompt { prompt }) => ask(&name, prompt.as_deref())?,
            Some(EnvValue::Host(var)) => host_var(&name, var)?,
            Some(EnvValue::Literal(literal)) => literal.clone(),
            None => host_var(&name, &name)?,
        };
        let (name, value) = checked(name, value)?;
        values.0.insert(name, value);
    }
    Ok(values)
}

fn host_var(name: &str, var: &str) -> Result<String, SecretError> {
    std::env::var(var).map_err(|_| SecretError::HostVarUnset {
        name: name.to_owned(),
        var: var.to_owned(),
    })
}

fn ask(name: &str, prompt: Option<&str>) -> Result<String, SecretError> {
    let text = prompt.map_or_else(|| format!("{name}: "), |p| format!("{p} ({name}): "));
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(text).map_err(|e| SecretError::Read(name.to_owned(), e));
    }
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SecretError::Read(name.to_owned(), e))?;
    if read == 0 {
        return Err(SecretError::NoInput(name.to_owned()));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_empty_values_are_refused_without_showing_them() {
        let err = checked("PIN".into(), "1234".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`PIN` is 4 bytes") && err.contains("8 bytes"),
            "{err}"
        );
        assert!(err.contains("longer value"), "{err}");
        assert!(!err.contains("1234"), "{err}");
        assert!(matches!(
            checked("E".into(), String::new()),
            Err(SecretError::Empty(_))
        ));
        assert!(checked("OK".into(), "12345678".into()).is_ok());
    }
}
