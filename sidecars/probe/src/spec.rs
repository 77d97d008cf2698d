//! The self-test's wire format, shared by the launcher (which writes checks) and the prober (which
//! runs them and writes what it saw). Plain tab-separated lines, so the static prober needs no
//! parser crates.
//!
//! Input (in the prober's environment as [`ENV`]): a first line
//! `wait <control_ms> <probe_floor_ms> <probe_factor>`, then one check per line:
//! `<id>\t<control|probe>\t<op>\t<args…>`. While it runs, the prober reads [`Signal`]s from its
//! stdin, one per line. Output (stdout): one line per check, `<id>\t<outcome>\t<detail>`, then one
//! [`Timing`] line.

use std::fmt;

/// The environment variable that carries the checks into the prober's exec (never argv, never the
/// agent container's own environment).
pub const ENV: &str = "BOTTLE_SELF_TEST";

/// Controls run first (each must succeed); probes (each must fail) run after every control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A positive case that proves the probe of its check can see.
    Control,
    /// What must not be possible.
    Probe,
}

/// One primitive the prober runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A TCP connection to `host:port` (a name is resolved first).
    Connect {
        /// Name or IP literal.
        host: String,
        /// Port.
        port: u16,
    },
    /// A name lookup through the container's resolver.
    Resolve {
        /// The name.
        name: String,
    },
    /// `GET <target>` to `host:port`, reporting the status code.
    Http {
        /// Name or IP literal of the server (a proxy, for an absolute `target`).
        host: String,
        /// Port.
        port: u16,
        /// The request target: `/path`, or `http://host/` through a proxy.
        target: String,
    },
    /// Whether a path exists.
    Path {
        /// Absolute path.
        path: String,
    },
    /// Whether the value behind a fingerprint is in the container's environment (PID 1's).
    ScanEnv {
        /// `len:h1:h2:b1:b2` (see [`crate::fingerprint`]).
        needle: String,
    },
    /// Whether the value behind a fingerprint is in any of these files (directories recursively).
    ScanFiles {
        /// `len:h1:h2:b1:b2`.
        needle: String,
        /// Absolute paths.
        paths: Vec<String>,
    },
}

/// One check line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The launcher's id for it (no tab, no newline).
    pub id: String,
    /// When it runs.
    pub phase: Phase,
    /// What it does.
    pub op: Op,
}

impl Op {
    /// Whether the check looks at files the launcher places while the prober already runs: it
    /// waits for [`Signal::FilesPlaced`].
    pub fn needs_placed_files(&self) -> bool {
        matches!(self, Op::ScanFiles { .. })
    }

    /// Whether it goes over the network (its control's time tells how fast the bottle's links
    /// answer).
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            Op::Connect { .. } | Op::Resolve { .. } | Op::Http { .. }
        )
    }
}

/// The whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// How long the controls may take together.
    pub control_ms: u64,
    /// The least time every probe gets before one that has not connected, resolved or answered
    /// counts as having reached nothing.
    pub probe_floor_ms: u64,
    /// The probes get at least this many times the slowest network control's time.
    pub probe_factor: u32,
    /// The checks.
    pub checks: Vec<Check>,
}

/// What the launcher tells a running prober on its stdin, one word per line. End of input means
/// both (the launcher has nothing more to say, or is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `files`: every file the launcher puts into the agent is in place; scans may start.
    FilesPlaced,
    /// `end`: the launch is ready to go on; the probes' window closes once its least time passed.
    End,
}

impl Signal {
    /// The line for it.
    pub fn line(self) -> &'static str {
        match self {
            Signal::FilesPlaced => "files\n",
            Signal::End => "end\n",
        }
    }

    /// Read a line; anything else is ignored.
    pub fn parse(line: &str) -> Option<Signal> {
        match line.trim() {
            "files" => Some(Signal::FilesPlaced),
            "end" => Some(Signal::End),
            _ => None,
        }
    }
}

/// How long the probes waited, reported after the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// The slowest network control, in microseconds.
    pub slowest_control_us: u64,
    /// The least time the probes got: `max(floor, factor × slowest control)`.
    pub window_ms: u64,
    /// How long they waited in fact (the launch went on meanwhile), from their start to the report.
    pub waited_ms: u64,
}

impl Timing {
    /// The output line.
    pub fn line(&self) -> String {
        format!(
            "timing\tslowest-control-us={}\twindow-ms={}\twaited-ms={}",
            self.slowest_control_us, self.window_ms, self.waited_ms
        )
    }

    /// Find the timing line in the prober's output.
    pub fn parse_all(output: &str) -> Option<Timing> {
        let line = output.lines().find(|l| l.starts_with("timing\t"))?;
        let mut timing = Timing::default();
        for field in line.split('\t').skip(1) {
            let (key, value) = field.split_once('=')?;
            let value = value.parse().ok()?;
            match key {
                "slowest-control-us" => timing.slowest_control_us = value,
                "window-ms" => timing.window_ms = value,
                "waited-ms" => timing.waited_ms = value,
                _ => {}
            }
        }
        Some(timing)
    }
}

/// What the prober saw for one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Connected.
    Open,
    /// Refused, unreachable, or no such name.
    Closed,
    /// The name resolved.
    Resolved,
    /// It did not.
    Unresolved,
    /// The server answered with this status.
    Status(u16),
    /// The path exists.
    Exists,
    /// It does not.
    Absent,
    /// The value is there.
    Found,
    /// It is not.
    Clean,
    /// No answer within the phase's time.
    Timeout,
    /// The prober could not run the check (the detail says why).
    Error,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(code) => write!(f, "status-{code}"),
            other => f.write_str(match other {
                Outcome::Open => "open",
                Outcome::Closed => "closed",
                Outcome::Resolved => "resolved",
                Outcome::Unresolved => "unresolved",
                Outcome::Exists => "exists",
                Outcome::Absent => "absent",
                Outcome::Found => "found",
                Outcome::Clean => "clean",
                Outcome::Timeout => "timeout",
                _ => "error",
            }),
        }
    }
}

impl Outcome {
    /// The word written by [`fmt::Display`], read back.
    pub fn parse(word: &str) -> Option<Outcome> {
        if let Some(code) = word.strip_prefix("status-") {
            return code.parse().ok().map(Outcome::Status);
        }
        Some(match word {
            "open" => Outcome::Open,
            "closed" => Outcome::Closed,
            "resolved" => Outcome::Resolved,
            "unresolved" => Outcome::Unresolved,
            "exists" => Outcome::Exists,
            "absent" => Outcome::Absent,
            "found" => Outcome::Found,
            "clean" => Outcome::Clean,
            "timeout" => Outcome::Timeout,
            "error" => Outcome::Error,
            _ => return None,
        })
    }
}

/// One output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The check's id.
    pub id: String,
    /// What happened.
    pub outcome: Outcome,
    /// In words (the error, the addresses, the path found).
    pub detail: String,
}

impl Seen {
    /// The output line (tabs and line breaks in the detail become spaces).
    pub fn line(&self) -> String {
        let detail: String = self
            .detail
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("{}\t{}\t{detail}", self.id, self.outcome)
    }

    /// Read the prober's output; lines that are not results are ignored.
    pub fn parse_all(output: &str) -> Vec<Seen> {
        output
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, '\t');
                let id = fields.next()?.to_owned();
                let outcome = Outcome::parse(fields.next()?)?;
                let detail = fields.next().unwrap_or("").to_owned();
                Some(Seen {
                    id,
                    outcome,
                    detail,
                })
            })
            .collect()
    }
}

impl Spec {
    /// The text the launcher puts in [`ENV`].
    pub fn render(&self) -> String {
        let mut out = format!(
            "wait {} {} {}\n",
            self.control_ms, self.probe_floor_ms, self.probe_factor
        );
        for check in &self.checks {
            let phase = match check.phase {
                Phase::Control => "control",
                Phase::Probe => "probe",
            };
            let op = match &check.op {
                Op::Connect { host, port } => format!("connect\t{host}\t{port}"),
                Op::Resolve { name } => format!("resolve\t{name}"),
                Op::Http { host, port, target } => format!("http\t{host}\t{port}\t{target}"),
                Op::Path { path } => format!("path\t{path}"),
                Op::ScanEnv { needle } => format!("scan-env\t{needle}"),
                Op::ScanFiles { needle, paths } => {
                    format!("scan-files\t{needle}\t{}", paths.join("\t"))
                }
            };
            out.push_str(&format!("{}\t{phase}\t{op}\n", check.id));
        }
        out
    }

    /// Read [`Spec::render`]'s text.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        let (control_ms, probe_floor_ms, probe_factor) = match head.as_slice() {
            ["wait", c, p, k] => (number(c)?, number(p)?, number(k)?),
            _ => {
                return Err(
                    "the first line must be `wait <control_ms> <probe_floor_ms> <probe_factor>`"
                        .into(),
                );
            }
        };
        let checks = lines
            .filter(|l| !l.is_empty())
            .map(check)
            .collect::<Result<_, _>>()?;
        Ok(Spec {
            control_ms,
            probe_floor_ms,
            probe_factor,
            checks,
        })
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn check(line: &str) -> Result<Check, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let (id, phase, rest) = match fields.as_slice() {
        [id, phase, rest @ ..] => (*id, *phase, rest),
        _ => return Err(format!("`{line}` is not a check")),
    };
    let phase = match phase {
        "control" => Phase::Control,
        "probe" => Phase::Probe,
        other => return Err(format!("`{other}` is not a phase")),
    };
    let op = match rest {
        ["connect", host, port] => Op::Connect {
            host: host.to_string(),
            port: number(port)?,
        },
        ["resolve", name] => Op::Resolve {
            name: name.to_string(),
        },
        ["http", host, port, target] => Op::Http {
            host: host.to_string(),
            port: number(port)?,
            target: target.to_string(),
        },
        ["path", path] => Op::Path {
            path: path.to_string(),
        },
        ["scan-env", needle] => Op::ScanEnv {
            needle: needle.to_string(),
        },
        ["scan-files", needle, paths @ ..] => Op::ScanFiles {
            needle: needle.to_string(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        },
        _ => return Err(format!("`{line}`: unknown operation")),
    };
    Ok(Check {
        id: id.to_owned(),
        phase,
        op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips() {
        let spec = Spec {
            control_ms: 2000,
            probe_floor_ms: 100,
            probe_factor: 10,
            checks: vec![
                Check {
                    id: "c1".into(),
                    phase: Phase::Control,
                    op: Op::Http {
                        host: "egress-proxy".into(),
                        port: 9099,
                        target: "/healthz".into(),
                    },
                },
                Check {
                    id: "p1".into(),
                    phase: Phase::Probe,
                    op: Op::ScanFiles {
                        needle: "3:1:2:3:4".into(),
                        paths: vec!["/a b".into(), "/c".into()],
                    },
                },
            ],
        };
        assert_eq!(Spec::parse(&spec.render()).unwrap(), spec);
        assert!(Spec::parse("wait x 1 1").is_err());
        assert!(Spec::parse("wait 1 1").is_err(), "the factor is required");
        assert!(Spec::parse("wait 1 1 1\nc1\tcontrol\tfly\tme").is_err());
    }

    #[test]
    fn results_round_trip_and_details_stay_on_one_line() {
        let seen = Seen {
            id: "p2".into(),
            outcome: Outcome::Status(403),
            detail: "refused\nby\tproxy".into(),
        };
        let parsed = Seen::parse_all(&format!("noise\n{}\n", seen.line()));
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].outcome, Outcome::Status(403));
        assert_eq!(parsed[0].detail, "refused by proxy");
    }

    #[test]
    fn timing_and_signals_round_trip() {
        let timing = Timing {
            slowest_control_us: 812,
            window_ms: 50,
            waited_ms: 131,
        };
        let output = format!("p1\tclosed\tx\n{}\n", timing.line());
        assert_eq!(Timing::parse_all(&output), Some(timing));
        assert_eq!(Seen::parse_all(&output).len(), 1, "the timing is no result");
        for signal in [Signal::FilesPlaced, Signal::End] {
            assert_eq!(Signal::parse(signal.line()), Some(signal));
        }
        assert_eq!(Signal::parse("go"), None);
    }
}
