//! The `limits` section: how much of the host the agent's container may take.
//!
//! A bottle without `limits` still gets them: an agent that fork-bombs or fills memory must not take
//! the host (and the operator's other bottles) down with it. Raising a limit is explicit; removing
//! one is not offered.

use serde::{Deserialize, Deserializer, Serialize};

use crate::invalid::Invalid;
use crate::strict::{self, Section};

/// Default memory limit of the agent container: 8 GiB (a coding agent runs builds and tests).
pub const DEFAULT_MEMORY_BYTES: u64 = 8 << 30;
/// Default process limit: ample for builds, low enough to stop a fork bomb.
pub const DEFAULT_PIDS: u32 = 4096;
/// The smallest memory limit accepted: below this, the agent cannot start.
const MIN_MEMORY_BYTES: u64 = 64 << 20;
/// The smallest process limit accepted.
const MIN_PIDS: u32 = 16;

/// The agent container's limits, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// Memory (and memory + swap: no swap beyond it), in bytes.
    pub memory_bytes: u64,
    /// Processes and threads.
    pub pids: u32,
    /// CPUs (fractions allowed); `None` leaves the engine's default (all).
    pub cpus: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            pids: DEFAULT_PIDS,
            cpus: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFields {
    #[serde(default, deserialize_with = "de_memory")]
    memory: Option<u64>,
    #[serde(default, deserialize_with = "de_pids")]
    pids: Option<u32>,
    #[serde(default, deserialize_with = "de_cpus")]
    cpus: Option<f64>,
}

impl Section for Limits {
    const WHAT: &'static str = "the limits section (a mapping)";
    const KEYS: &'static [&'static str] = &["memory", "pids", "cpus"];
    type Fields = LimitsFields;

    fn check(f: LimitsFields) -> Result<Self, Invalid> {
        let defaults = Limits::default();
        Ok(Limits {
            memory_bytes: f.memory.unwrap_or(defaults.memory_bytes),
            pids: f.pids.unwrap_or(defaults.pids),
            cpus: f.cpus,
        })
    }
}

impl<'de> Deserialize<'de> for Limits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        strict::section(deserializer)
    }
}

fn de_memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    strict::optional_text(d, "a memory size such as `4g` or `512m`", memory)
}

fn de_pids<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    strict::optional_text(d, "a number of processes", pids)
}

fn de_cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    strict::optional_text(d, "a number of CPUs such as `2` or `1.5`", cpus)
}

/// `4g`, `512m`, `65536k` or a number of bytes.
pub(crate) fn memory(text: &str) -> Result<u64, Invalid> {
    let bad = || {
        Invalid::new(format!("memory `{text}` is not a size"))
            .hint("write a whole number with a unit: `8g`, `512m` (k, m, g; binary units)")
    };
    let lower = text.trim().to_ascii_lowercase();
    let (digits, shift) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(digits) => (digits, unit_shift(lower.as_bytes()[lower.len() - 1])),
        None => (lower.as_str(), 0),
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = number.checked_shl(shift).filter(|b| b >> shift == number);
    let bytes = bytes.ok_or_else(bad)?;
    if bytes < MIN_MEMORY_BYTES {
        return Err(
            Invalid::new(format!("memory `{text}` is too small for an agent"))
                .hint("give at least `64m`; a coding agent wants a few GiB"),
        );
    }
    Ok(bytes)
}

fn unit_shift(unit: u8) -> u32 {
    match unit {
        b'k' => 10,
        b'm' => 20,
        _ => 30,
    }
}

fn pids(text: &str) -> Result<u32, Invalid> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= MIN_PIDS => Ok(n),
        _ => Err(
            Invalid::new(format!("pids `{text}` is not a process limit")).hint(format!(
                "write a whole number of at least {MIN_PIDS} (default {DEFAULT_PIDS})"
            )),
        ),
    }
}

fn cpus(text: &str) -> Result<f64, Invalid> {
    match text.trim().parse::<f64>() {
        Ok(n) if (0.01..=1024.0).contains(&n) => Ok(n),
        _ => Err(
            Invalid::new(format!("cpus `{text}` is not a number of CPUs"))
                .hint("write a number such as `2` or `0.5`, or leave `cpus` out to use every CPU"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(memory("8g").unwrap(), 8 << 30);
        assert_eq!(memory("512M").unwrap(), 512 << 20);
        assert_eq!(memory("67108864").unwrap(), 64 << 20);
        for bad in ["", "g", "1.5g", "-1g", "8t", "99999999999999g"] {
            assert!(memory(bad).is_err(), "{bad}");
        }
        assert!(memory("1m").unwrap_err().message.contains("too small"));
    }

    #[test]
    fn pids_and_cpus() {
        assert_eq!(pids("256").unwrap(), 256);
        assert!(pids("3").is_err() && pids("x").is_err());
        assert_eq!(cpus("1.5").unwrap(), 1.5);
        assert!(cpus("0").is_err() && cpus("NaN").is_err() && cpus("inf").is_err());
    }
}
