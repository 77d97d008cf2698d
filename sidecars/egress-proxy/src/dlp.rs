//! Data loss prevention on outgoing requests, over [`bottle_secret_scan`].

use std::collections::HashMap;
use std::sync::Arc;

use bottle_egress_config::DlpAction;
use bottle_secret_scan::decode::{DecodeError, content_decoders};
use bottle_secret_scan::stream::StreamScanner;
use bottle_secret_scan::{ExactSecret, Finding, MIN_SECRET_LEN, Scanner, Source};

/// Why a DLP could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DlpError {
    /// A secret too short to search without matching ordinary text.
    #[error(
        "the value of `{label}` is {len} bytes; secrets shorter than {MIN_SECRET_LEN} bytes cannot be \
         searched for without matching ordinary text, so the egress proxy would not protect it. \
         Use a longer secret, or remove `{label}` from dlp.secret_env (or the route)"
    )]
    TooShort {
        /// The variable naming the secret.
        label: String,
        /// Its length (never the value).
        len: usize,
    },
    /// The scanner could not be built.
    #[error(transparent)]
    Scanner(#[from] bottle_secret_scan::Error),
}

/// What the DLP says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// Patterns found whose action is `warn`: forward, but log these rule ids.
    Warn(Vec<String>),
    /// Refuse: this rule id (or `exact:<ENV>`) found something.
    Block(String),
}

/// The compiled DLP of one configuration.
#[derive(Debug)]
pub struct Dlp {
    scanner: Arc<Scanner>,
    /// Secret index → the route host it may go to.
    route_tokens: HashMap<usize, String>,
    patterns: DlpAction,
}

impl Dlp {
    /// A DLP searching `secrets`; each may carry the route host it is allowed to reach.
    /// A secret shorter than [`MIN_SECRET_LEN`] is an error: it could not be searched.
    pub fn new(
        secrets: Vec<(ExactSecret, Option<String>)>,
        patterns: DlpAction,
    ) -> Result<Dlp, DlpError> {
        let mut route_tokens = HashMap::new();
        let mut exact = Vec::with_capacity(secrets.len());
        for (i, (secret, route)) in secrets.into_iter().enumerate() {
            if secret.value.len() < MIN_SECRET_LEN {
                return Err(DlpError::TooShort {
                    label: secret.label,
                    len: secret.value.len(),
                });
            }
            if let Some(host) = route {
                route_tokens.insert(i, host);
            }
            exact.push(secret);
        }
        Ok(Dlp {
            scanner: Arc::new(Scanner::with_builtin_rules(exact)?),
            route_tokens,
            patterns,
        })
    }

    /// Scans `parts` of a request going to `host`.
    pub fn check(&self, host: &str, parts: &[&[u8]]) -> Verdict {
        let findings: Vec<Vec<Finding>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| self.scanner.scan(p))
            .collect();
        self.verdict(host, &findings)
    }

    /// A scanner for a body going out with this `Content-Encoding` (if any): it decompresses,
    /// decodes and scans chunk by chunk. An encoding it cannot decode is an error.
    pub fn body_scanner(
        &self,
        content_encoding: Option<&str>,
    ) -> Result<StreamScanner, DecodeError> {
        let content = content_decoders(content_encoding.unwrap_or(""))?;
        Ok(StreamScanner::new(self.scanner.clone(), content))
    }

    /// A scanner for a stream with no content coding (websocket payloads).
    pub fn stream_scanner(&self) -> StreamScanner {
        StreamScanner::new(self.scanner.clone(), Vec::new())
    }

    /// How many raw bytes a body scanner must see past the end of a secret to be sure: the
    /// longest encoded form, times the most bytes one decoded byte can take on the wire (six, a
    /// JSON `\uXXXX` escape), and never less than the pattern window.
    pub fn overlap(&self) -> usize {
        let window = self
            .scanner
            .longest_exact_form()
            .max(bottle_secret_scan::stream::PATTERN_WINDOW);
        window * 6
    }

    /// The verdict on a response from `host` (websocket frames): only route tokens matter there,
    /// and any of them, even the host's own, is a leak back to the agent.
    pub fn inbound_verdict(&self, findings: &[Vec<Finding>]) -> Option<String> {
        findings.iter().flatten().find_map(|f| match f.source {
            Source::Exact { secret, .. } if self.route_tokens.contains_key(&secret) => {
                Some(f.rule.clone())
            }
            _ => None,
        })
    }

    /// The verdict on findings in parts of a request going to `host` (one list per part).
    pub fn verdict(&self, host: &str, parts: &[Vec<Finding>]) -> Verdict {
        let mut warn = Vec::new();
        for findings in parts {
            // A route token going to its own route is fine, and so is a pattern match inside it.
            let excused: Vec<&Finding> = findings
                .iter()
                .filter(|f| match f.source {
                    Source::Exact { secret, .. } => {
                        self.route_tokens.get(&secret).is_some_and(|h| h == host)
                    }
                    Source::Pattern { .. } => false,
                })
                .collect();
            for f in findings {
                match f.source {
                    Source::Exact { .. } if !excused.contains(&f) => {
                        return Verdict::Block(f.rule.clone());
                    }
                    Source::Exact { .. } => {}
                    Source::Pattern { .. } => {
                        let inside = excused
                            .iter()
                            .any(|e| e.offset <= f.offset && f.offset + f.len <= e.offset + e.len);
                        if inside {
                            continue;
                        }
                        match self.patterns {
                            DlpAction::Block => return Verdict::Block(f.rule.clone()),
                            DlpAction::Warn => {
                                if !warn.contains(&f.rule) {
                                    warn.push(f.rule.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
        if warn.is_empty() {
            Verdict::Clean
        } else {
            Verdict::Warn(warn)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const TOKEN: &str = "ghp_abcdefghijABCDEFGHIJ0123456789abcdef";
    const SECRET: &str = "my-db/pass+word=42";

    fn dlp(action: DlpAction) -> Dlp {
        Dlp::new(
            vec![
                (ExactSecret::new("DB_PASSWORD", SECRET), None),
                (
                    ExactSecret::new("GH_TOKEN", TOKEN),
                    Some("api.github.com".into()),
                ),
            ],
            action,
        )
        .unwrap()
    }

    #[test]
    fn every_encoding_of_a_secret_is_blocked() {
        let d = dlp(DlpAction::Block);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"));
        let b64url =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("xx{SECRET}??>>"));
        let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
        let upper_hex = hex.to_uppercase();
        let url = "my-db%2Fpass%2Bword%3D42".to_string();
        let url_lower = url.to_lowercase();
        for form in [
            SECRET.to_string(),
            b64,
            b64url,
            hex,
            upper_hex,
            url,
            url_lower,
        ] {
            assert_eq!(
                d.check("example.com", &[format!("q={form}").as_bytes()]),
                Verdict::Block("exact:DB_PASSWORD".into()),
                "{form}"
            );
        }
    }

    #[test]
    fn route_token_is_fine_on_its_route_only() {
        let d = dlp(DlpAction::Block);
        assert_eq!(
            d.check("api.github.com", &[TOKEN.as_bytes()]),
            Verdict::Clean
        );
        assert_eq!(
            d.check("evil.example", &[TOKEN.as_bytes()]),
            Verdict::Block("exact:GH_TOKEN".into())
        );
        // A different GitHub token matching the pattern is still refused on the route.
        let other = "ghp_ZZZZZZZZZZABCDEFGHIJ0123456789abcdef";
        assert_eq!(
            d.check("api.github.com", &[other.as_bytes()]),
            Verdict::Block("github-token".into())
        );
    }

    #[test]
    fn warn_action_forwards_patterns_but_still_blocks_exact_values() {
        let d = dlp(DlpAction::Warn);
        assert_eq!(
            d.check("x.example", &[b"AKIAIOSFODNN7EXAMPLE"]),
            Verdict::Warn(vec!["aws-access-key-id".into()])
        );
        assert_eq!(
            d.check("x.example", &[SECRET.as_bytes()]),
            Verdict::Block("exact:DB_PASSWORD".into())
        );
    }
}
