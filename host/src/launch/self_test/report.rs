//! What the self-test saw, judged: rows for the table, the launch record and the audit log, and
//! the refusal that names what failed.

use std::fmt::Write as _;

use bottle_probe::spec::Seen;
use serde::{Deserialize, Serialize};

use super::checks::{Planned, Promise};

/// One judged check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The promise it serves.
    pub promise: Promise,
    /// The check's name (`no host`).
    pub check: String,
    /// A positive control (must succeed so the probes of its check mean something).
    pub control: bool,
    /// What was looked at and what had to happen.
    pub expected: String,
    /// What the prober saw.
    pub seen: String,
    /// Whether that was what had to happen.
    pub passed: bool,
    /// How to fix a failure.
    pub fix: String,
}

/// The whole self-test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Every check passed.
    pub passed: bool,
    /// How long it took, from opening the host listener to closing it (most of it beside
    /// provisioning).
    pub took_ms: u64,
    /// How long the probes had before "no answer" counted as not reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<ProbeTime>,
    /// Every check, controls first within each promise.
    pub rows: Vec<Row>,
}

/// The probes' time, as the prober measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTime {
    /// The slowest network control, in microseconds.
    pub slowest_control_us: u64,
    /// The least time a probe had: `max(floor, factor × slowest control)`.
    pub window_ms: u64,
    /// The time they had in fact (they kept trying while provisioning went on).
    pub waited_ms: u64,
}

impl Row {
    /// A row for a check judged by the launcher itself (not by the prober).
    pub fn judged(
        promise: Promise,
        control: bool,
        expected: String,
        seen: String,
        passed: bool,
    ) -> Row {
        Row {
            promise,
            check: promise.name().to_owned(),
            control,
            expected,
            seen,
            passed,
            fix: promise.fix().to_owned(),
        }
    }
}

/// Judge each planned check by what the prober saw (a check it did not report fails).
pub fn judge(planned: &[Planned], seen: &[Seen], prober_said: &str) -> Vec<Row> {
    planned
        .iter()
        .map(|p| {
            let found = seen.iter().find(|s| s.id == p.check.id);
            let (passed, seen) = match found {
                Some(s) => (
                    p.expect.met_by(s.outcome),
                    format!("{}: {}", s.outcome, s.detail),
                ),
                None => (
                    false,
                    format!("the prober reported nothing: {}", prober_said.trim()),
                ),
            };
            Row::judged(
                p.promise,
                p.is_control(),
                format!("{}: {}", p.what, p.expect.words()),
                seen,
                passed,
            )
        })
        .collect()
}

impl Report {
    /// From rows.
    pub fn new(rows: Vec<Row>, took_ms: u64) -> Report {
        Report {
            passed: rows.iter().all(|r| r.passed),
            took_ms,
            probes: None,
            rows,
        }
    }

    /// With the prober's timing (none when it reported none: its rows fail then).
    pub fn with_timing(mut self, timing: Option<bottle_probe::spec::Timing>) -> Report {
        self.probes = timing.map(|t| ProbeTime {
            slowest_control_us: t.slowest_control_us,
            window_ms: t.window_ms,
            waited_ms: t.waited_ms,
        });
        self
    }

    /// The rows that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.passed)
    }

    /// The launch's refusal: each failed check with what it saw and the fix.
    pub fn refusal(&self) -> String {
        let mut out = String::from(
            "the isolation self-test failed, so the agent was not started and the bottle is removed:",
        );
        for row in self.failures() {
            let kind = if row.control { "control of " } else { "" };
            let _ = write!(
                out,
                "\n  {kind}`{}`: expected {}; saw {}\n    fix: {}",
                row.check, row.expected, row.seen, row.fix
            );
            if row.control {
                out.push_str(
                    "\n    (a control proves its check can see; without it the check proves nothing)",
                );
            }
        }
        out.push_str("\n`bottle doctor --isolation` runs the same checks in a throwaway bottle");
        out
    }

    /// The table: check, expected, seen, fix (fix only on failures).
    pub fn table(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.check.len())
            .max()
            .unwrap_or(5)
            .max(5)
            + 2;
        let mut out = format!("{:<6}{:<width$}{}\n", "", "check", "expected → seen");
        for row in &self.rows {
            let status = if row.passed { "ok" } else { "FAIL" };
            let check = if row.control {
                format!("{} (control)", row.check)
            } else {
                row.check.clone()
            };
            let _ = writeln!(
                out,
                "{status:<6}{check:<width$}{} → {}",
                row.expected, row.seen
            );
            if !row.passed {
                let _ = writeln!(out, "{:<6}{:<width$}fix: {}", "", "", row.fix);
            }
        }
        let verdict = if self.passed { "passed" } else { "FAILED" };
        let _ = writeln!(
            out,
            "self-test {verdict} in {} ms ({} checks)",
            self.took_ms,
            self.rows.len()
        );
        if let Some(p) = &self.probes {
            let _ = writeln!(
                out,
                "probes had {} ms to answer (at least {} ms: the floor, or {} × the slowest \
                 control's {:.1} ms)",
                p.waited_ms,
                p.window_ms,
                super::PROBE_FACTOR,
                p.slowest_control_us as f64 / 1000.0
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::self_test::checks::Expect;
    use bottle_probe::spec::{Check, Op, Outcome, Phase};

    fn planned(id: &str, phase: Phase, expect: Expect) -> Planned {
        Planned {
            promise: Promise::NoHost,
            what: format!("TCP 172.18.0.1:{id}"),
            expect,
            check: Check {
                id: id.into(),
                phase,
                op: Op::Connect {
                    host: "172.18.0.1".into(),
                    port: 1,
                },
            },
        }
    }

    fn seen(id: &str, outcome: Outcome) -> Seen {
        Seen {
            id: id.into(),
            outcome,
            detail: "detail".into(),
        }
    }

    #[test]
    fn a_reached_host_fails_and_the_refusal_names_check_seen_and_fix() {
        let plan = [
            planned("c1", Phase::Control, Expect::Reached),
            planned("p2", Phase::Probe, Expect::NotReached),
        ];
        let rows = judge(
            &plan,
            &[seen("c1", Outcome::Open), seen("p2", Outcome::Open)],
            "",
        );
        let report = Report::new(rows, 5);
        assert!(!report.passed);
        let refusal = report.refusal();
        assert!(refusal.contains("`no host`"), "{refusal}");
        assert!(refusal.contains("saw open: detail"), "{refusal}");
        assert!(refusal.contains("inhibit_ipv4"), "{refusal}");
        assert!(!refusal.contains("control of"), "{refusal}");
    }

    #[test]
    fn a_timeout_is_no_answer_for_a_probe_but_a_failure_for_a_control() {
        let plan = [
            planned("c1", Phase::Control, Expect::Reached),
            planned("p2", Phase::Probe, Expect::NotReached),
        ];
        let rows = judge(
            &plan,
            &[seen("c1", Outcome::Timeout), seen("p2", Outcome::Timeout)],
            "",
        );
        assert!(!rows[0].passed && rows[1].passed);
        let missing = judge(&plan, &[], "exec failed");
        assert!(missing.iter().all(|r| !r.passed));
        assert!(missing[0].seen.contains("exec failed"));
    }
}
