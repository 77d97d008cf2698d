//! Why a text is not a host name or host pattern, and how to fix it.

use std::fmt;

/// The longest text of an input echoed back in an error.
const ECHO_LIMIT: usize = 80;

/// A text that is not a valid host name or host pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {what}: {problem}; {hint}", hint = problem.hint())]
pub struct HostError {
    input: String,
    what: &'static str,
    problem: Problem,
}

impl HostError {
    pub(crate) fn new(input: &str, what: &'static str, problem: Problem) -> HostError {
        // Echo a bounded, printable excerpt: the input may be hostile or huge.
        let excerpt: String = input.chars().take(ECHO_LIMIT).collect();
        HostError {
            input: excerpt.escape_debug().to_string(),
            what,
            problem,
        }
    }

    /// The message without the hint: which input, and what is wrong with it.
    pub fn summary(&self) -> String {
        format!(
            "`{}` is not a valid {}: {}",
            self.input, self.what, self.problem
        )
    }

    /// What is wrong.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        self.problem.hint()
    }
}

/// What is wrong with a host name or pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Nothing but (at most) a trailing dot.
    Empty,
    /// Longer than 253 characters.
    TooLong,
    /// A label longer than 63 characters.
    LabelTooLong,
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A scheme, port, user or path around the host.
    NotBare,
    /// A character no host name holds.
    BadChar(char),
    /// A label starting or ending with `-`.
    HyphenAtEdge,
    /// The last label is all digits, but the whole is not an IP address.
    NumericTopLabel,
    /// `*` inside a label rather than as a whole label.
    PartialWildcard,
    /// A pattern of wildcards only.
    OnlyWildcards,
    /// A wildcard in what reads as an IP address.
    IpWildcard,
    /// A wildcard where a single host is needed.
    Wildcard,
}

impl Problem {
    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            Problem::Empty | Problem::EmptyLabel => {
                "write a name of dot-separated labels, such as `api.example.com`"
            }
            Problem::TooLong => "a host name has at most 253 characters",
            Problem::LabelTooLong => "each dot-separated label has at most 63 characters",
            Problem::NotBare => {
                "write only the host, without scheme, user, port or path, such as `api.example.com`"
            }
            Problem::BadChar(c) if !c.is_ascii() => {
                "write an internationalised name in its ASCII (punycode, `xn--…`) form"
            }
            Problem::BadChar(_) => "labels hold only ASCII letters, digits, `-` and `_`",
            Problem::HyphenAtEdge => "a label may not start or end with `-`",
            Problem::NumericTopLabel => {
                "write an IP address as four decimal numbers (`10.0.0.1`) or an IPv6 literal; a \
                 name's last label is not all digits"
            }
            Problem::PartialWildcard => {
                "`*` stands for one whole label, as in `*.example.com` or `registry.*.org`"
            }
            Problem::OnlyWildcards => {
                "name at least one literal label, such as `*.example.com`; a bare `*` would \
                 allow every host"
            }
            Problem::IpWildcard => "IP addresses match only exactly; list each address",
            Problem::Wildcard => "name one host, such as `api.example.com`, without `*`",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("it is empty"),
            Problem::TooLong => f.write_str("it is longer than 253 characters"),
            Problem::LabelTooLong => f.write_str("a label is longer than 63 characters"),
            Problem::EmptyLabel => f.write_str("it has an empty label (`..` or a leading `.`)"),
            Problem::NotBare => f.write_str("it is not a bare host"),
            Problem::BadChar(c) => write!(f, "it contains `{}`", c.escape_debug()),
            Problem::HyphenAtEdge => f.write_str("a label starts or ends with `-`"),
            Problem::NumericTopLabel => {
                f.write_str("its last label is all digits but it is not an IP address")
            }
            Problem::PartialWildcard => f.write_str("`*` is part of a label"),
            Problem::OnlyWildcards => f.write_str("it is only wildcards"),
            Problem::IpWildcard => f.write_str("it wildcards an IP address"),
            Problem::Wildcard => f.write_str("it contains the wildcard `*`"),
        }
    }
}
