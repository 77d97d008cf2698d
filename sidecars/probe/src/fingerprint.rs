//! Keyed fingerprints of byte strings, and a rolling search for them.
//!
//! The self-test must find a route token in the agent's environment or files without the token
//! ever being handed to the agent container. The launcher sends only `(length, h1, h2)`: two
//! polynomial hashes modulo the Mersenne prime 2^61−1 under bases it draws at random for this one
//! run. The prober rolls both hashes over every window of that length; a window matching both is
//! the value (a false match needs two independent ~2^-61 coincidences).

/// The modulus: the Mersenne prime 2^61 − 1.
pub const MODULUS: u64 = (1 << 61) - 1;

/// What to look for: the length of the value and its hash under each base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needle {
    /// The two bases, each in `2..MODULUS-1`.
    pub bases: [u64; 2],
    /// The value's length in bytes.
    pub len: usize,
    /// `hash(value, bases[i])` for each base.
    pub hashes: [u64; 2],
}

fn mul(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(MODULUS)) as u64
}

fn add(a: u64, b: u64) -> u64 {
    (a + b) % MODULUS
}

/// The polynomial hash of `bytes` under `base` (most significant byte first).
pub fn hash(bytes: &[u8], base: u64) -> u64 {
    bytes
        .iter()
        .fold(0, |h, &b| add(mul(h, base), u64::from(b) + 1))
}

impl Needle {
    /// The needle for `value` under `bases` (the launcher's side).
    pub fn of(value: &[u8], bases: [u64; 2]) -> Needle {
        Needle {
            bases,
            len: value.len(),
            hashes: bases.map(|b| hash(value, b)),
        }
    }

    /// Whether some window of `haystack` is the value.
    pub fn found_in(&self, haystack: &[u8]) -> bool {
        if self.len == 0 || haystack.len() < self.len {
            return false;
        }
        let rolling = self.bases.map(|b| Rolling::new(b, self.len));
        let mut state = [0u64; 2];
        for (i, &byte) in haystack.iter().enumerate() {
            let leaving = i.checked_sub(self.len).map(|j| haystack[j]);
            for k in 0..2 {
                state[k] = rolling[k].push(state[k], byte, leaving);
            }
            if i + 1 >= self.len && state == self.hashes {
                return true;
            }
        }
        false
    }
}

/// One rolling hash: `base^(len-1)` cached to drop the byte leaving the window.
struct Rolling {
    base: u64,
    top: u64,
}

impl Rolling {
    fn new(base: u64, len: usize) -> Rolling {
        let top = (1..len).fold(1, |p, _| mul(p, base));
        Rolling { base, top }
    }

    fn push(&self, h: u64, entering: u8, leaving: Option<u8>) -> u64 {
        let h = match leaving {
            Some(out) => add(h, MODULUS - mul(u64::from(out) + 1, self.top)),
            None => h,
        };
        add(mul(h, self.base), u64::from(entering) + 1)
    }
}

/// `len:h1:h2:b1:b2`, the form a needle travels in.
pub fn parse(text: &str) -> Result<Needle, String> {
    let parts: Vec<u64> = text
        .split(':')
        .map(|p| p.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}` is not a fingerprint (len:h1:h2:b1:b2)"))?;
    match parts.as_slice() {
        [len, h1, h2, b1, b2] => Ok(Needle {
            bases: [*b1, *b2],
            len: *len as usize,
            hashes: [*h1, *h2],
        }),
        _ => Err(format!("`{text}` is not a fingerprint (len:h1:h2:b1:b2)")),
    }
}

/// The travelling form of a needle (see [`parse`]).
pub fn format(needle: &Needle) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        needle.len, needle.hashes[0], needle.hashes[1], needle.bases[0], needle.bases[1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASES: [u64; 2] = [1_000_003, 998_244_353];

    #[test]
    fn a_value_is_found_wherever_it_sits_and_nowhere_else() {
        let needle = Needle::of(b"route-token-value", BASES);
        assert!(needle.found_in(b"route-token-value"));
        assert!(needle.found_in(b"X=1\0TOKEN=route-token-value\0Y=2"));
        assert!(needle.found_in(b"...route-token-value"));
        assert!(!needle.found_in(b"route-token-valu"));
        assert!(!needle.found_in(b"route-token-valuE and more text around it"));
        assert!(!needle.found_in(b""));
    }

    #[test]
    fn the_travelling_form_round_trips() {
        let needle = Needle::of(b"abc", BASES);
        assert_eq!(parse(&format(&needle)).unwrap(), needle);
        assert!(parse("1:2:3").is_err());
    }
}
