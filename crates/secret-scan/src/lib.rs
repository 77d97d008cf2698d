//! Fast detection of secrets in bytes.
//!
//! Two kinds of detector share one [`Scanner`]:
//!
//! - **patterns**: a compact set of high-signal token formats ([`builtin_rules`]: AWS access key
//!   ids, GitHub/GitLab/Slack/Anthropic/OpenAI/Google/Stripe tokens, private key blocks), compiled
//!   into one [`regex::bytes::RegexSet`] so clean input costs a single pass;
//! - **exact values**: known secrets ([`ExactSecret`]) searched in raw, base64 (standard and
//!   URL-safe, at each of the three byte alignments), hex (lower and upper case) and URL-encoded
//!   form with one Aho-Corasick automaton.
//!
//! [`stream::StreamScanner`] scans a stream in chunks, in decoded views too (decompressed,
//! percent-decoded, JSON-unescaped, line-unwrapped base64; see [`decode`]).
//!
//! bottle's egress proxy scans outgoing requests with it and the git gate scans commits.
//! A [`Finding`] never carries the secret itself, only where it was and which rule found it.

#![warn(missing_docs)]

pub mod decode;
mod encode;
mod rules;
pub mod stream;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexSet};

pub use encode::{Encoding, variants};
pub use rules::builtin_rules;

/// Exact values shorter than this are ignored: too many false positives, too little to protect.
pub const MIN_SECRET_LEN: usize = 8;

/// A pattern rule: a named regular expression over bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable identifier reported in findings, such as `github-token`.
    pub id: String,
    /// What the rule detects, for people.
    pub description: String,
    /// The expression (Rust `regex` syntax, matched against bytes).
    pub regex: String,
}

impl Rule {
    /// A rule from its parts.
    pub fn new(
        id: impl Into<String>,
        description: impl Into<String>,
        regex: impl Into<String>,
    ) -> Self {
        Rule {
            id: id.into(),
            description: description.into(),
            regex: regex.into(),
        }
    }
}

/// A known secret value to look for, with a label naming it in findings (an environment variable
/// name, never the value).
#[derive(Clone, PartialEq, Eq)]
pub struct ExactSecret {
    /// Name reported in findings.
    pub label: String,
    /// The value.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for ExactSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactSecret")
            .field("label", &self.label)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl ExactSecret {
    /// A secret from its label and value.
    pub fn new(label: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        ExactSecret {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// What found a [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The pattern rule at this index of the scanner's rules.
    Pattern {
        /// Index into the rules given to [`Scanner::new`].
        rule: usize,
    },
    /// The exact secret at this index, seen in this encoding.
    Exact {
        /// Index into the secrets given to [`Scanner::new`].
        secret: usize,
        /// The form it was found in.
        encoding: Encoding,
    },
}

/// One detected secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule id, or `exact:<label>` for an exact secret.
    pub rule: String,
    /// Byte offset of the match in the scanned input.
    pub offset: usize,
    /// Length of the match in bytes.
    pub len: usize,
    /// What found it.
    pub source: Source,
}

/// Why a scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule's expression does not compile.
    #[error("rule `{id}`: invalid expression: {source}")]
    Regex {
        /// The rule.
        id: String,
        /// The compiler's complaint.
        #[source]
        source: Box<regex::Error>,
    },
    /// The exact-value automaton could not be built.
    #[error("exact secrets: {0}")]
    Exact(#[from] aho_corasick::BuildError),
}

/// A compiled set of detectors. Cheap to share between threads (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct Scanner {
    rules: Vec<Rule>,
    set: RegexSet,
    regexes: Vec<Regex>,
    exact: Option<AhoCorasick>,
    /// For each automaton pattern: (secret index, encoding).
    exact_meta: Vec<(usize, Encoding)>,
    labels: Vec<String>,
    skipped: Vec<String>,
    longest_form: usize,
}

impl Scanner {
    /// Compiles `rules` and the encoded forms of `exact_secrets`.
    ///
    /// Secrets shorter than [`MIN_SECRET_LEN`] are skipped; [`Scanner::skipped`] names them.
    pub fn new(rules: Vec<Rule>, exact_secrets: Vec<ExactSecret>) -> Result<Self, Error> {
        let mut regexes = Vec::with_capacity(rules.len());
        for rule in &rules {
            let re = Regex::new(&rule.regex).map_err(|e| Error::Regex {
                id: rule.id.clone(),
                source: Box::new(e),
            })?;
            regexes.push(re);
        }
        let set =
            RegexSet::new(rules.iter().map(|r| r.regex.as_str())).map_err(|e| Error::Regex {
                id: "<set>".into(),
                source: Box::new(e),
            })?;

        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut exact_meta = Vec::new();
        let mut labels = Vec::with_capacity(exact_secrets.len());
        let mut skipped = Vec::new();
        for (i, secret) in exact_secrets.iter().enumerate() {
            labels.push(format!("exact:{}", secret.label));
            if secret.value.len() < MIN_SECRET_LEN {
                skipped.push(secret.label.clone());
                continue;
            }
            for (encoding, form) in variants(&secret.value) {
                if !patterns.contains(&form) {
                    patterns.push(form);
                    exact_meta.push((i, encoding));
                }
            }
        }
        let exact = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)?,
            )
        };
        let longest_form = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Scanner {
            longest_form,
            rules,
            set,
            regexes,
            exact,
            exact_meta,
            labels,
            skipped,
        })
    }

    /// A scanner with the [`builtin_rules`] and the given secrets.
    pub fn with_builtin_rules(exact_secrets: Vec<ExactSecret>) -> Result<Self, Error> {
        Scanner::new(builtin_rules(), exact_secrets)
    }

    /// Labels of the exact secrets that were too short to be searched.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The length of the longest encoded form of any exact secret: a stream scanned in windows
    /// overlapping by this much finds every exact secret wherever the windows split it.
    pub fn longest_exact_form(&self) -> usize {
        self.longest_form
    }

    /// The pattern rules, in the order findings refer to them.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every finding in `haystack`, exact values first, then patterns, each in order of offset.
    pub fn scan(&self, haystack: &[u8]) -> Vec<Finding> {
        let mut findings = self.scan_exact(haystack);
        findings.extend(self.scan_patterns(haystack));
        findings
    }

    /// Findings of exact secrets only.
    pub fn scan_exact(&self, haystack: &[u8]) -> Vec<Finding> {
        let Some(ac) = &self.exact else {
            return Vec::new();
        };
        ac.find_iter(haystack)
            .map(|m| {
                let (secret, encoding) = self.exact_meta[m.pattern().as_usize()];
                Finding {
                    rule: self.labels[secret].clone(),
                    offset: m.start(),
                    len: m.len(),
                    source: Source::Exact { secret, encoding },
                }
            })
            .collect()
    }

    /// Findings of pattern rules only.
    pub fn scan_patterns(&self, haystack: &[u8]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for rule in self.set.matches(haystack).iter() {
            for m in self.regexes[rule].find_iter(haystack) {
                findings.push(Finding {
                    rule: self.rules[rule].id.clone(),
                    offset: m.start(),
                    len: m.len(),
                    source: Source::Pattern { rule },
                });
            }
        }
        findings
    }

    /// Whether `haystack` contains anything at all (cheaper than [`Scanner::scan`]).
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.exact.as_ref().is_some_and(|ac| ac.is_match(haystack)) || self.set.is_match(haystack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_input_has_no_findings() {
        let s = Scanner::with_builtin_rules(vec![ExactSecret::new("T", "hunter2hunter2")]).unwrap();
        assert!(
            s.scan(b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n")
                .is_empty()
        );
        assert!(!s.is_match(b"nothing to see"));
    }

    #[test]
    fn exact_and_pattern_findings_report_offsets_not_values() {
        let s = Scanner::with_builtin_rules(vec![ExactSecret::new("MY_TOKEN", "s3cr3t-value-123")])
            .unwrap();
        let hay = b"x=s3cr3t-value-123&k=AKIAABCDEFGHIJKLMNOP";
        let f = s.scan(hay);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].rule, "exact:MY_TOKEN");
        assert_eq!(f[0].offset, 2);
        assert_eq!(f[0].len, 16);
        assert!(matches!(
            f[0].source,
            Source::Exact {
                secret: 0,
                encoding: Encoding::Raw
            }
        ));
        assert_eq!(f[1].rule, "aws-access-key-id");
        assert_eq!(
            &hay[f[1].offset..f[1].offset + f[1].len],
            b"AKIAABCDEFGHIJKLMNOP"
        );
        assert!(!format!("{:?}", ExactSecret::new("A", "s3cr3t-value-123")).contains("s3cr3t"));
    }

    #[test]
    fn short_secrets_are_skipped() {
        let s = Scanner::new(
            vec![],
            vec![
                ExactSecret::new("SHORT", "abc"),
                ExactSecret::new("LONG", "abcdefgh"),
            ],
        )
        .unwrap();
        assert_eq!(s.skipped(), ["SHORT".to_string()]);
        assert!(s.scan(b"xxabcxx").is_empty());
        assert_eq!(s.scan(b"xxabcdefghxx")[0].rule, "exact:LONG");
    }

    #[test]
    fn bad_rule_is_an_error() {
        let err = Scanner::new(vec![Rule::new("bad", "", "(")], vec![]).unwrap_err();
        assert!(err.to_string().contains("bad"));
    }
}
