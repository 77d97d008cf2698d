//! The isolation self-test on the real engine: it passes on a default-like bottle (and says what it
//! proved, in the launch record, the audit log and `-v`), `bottle doctor --isolation` runs it in a
//! throwaway bottle, and a bottle whose isolation a test-only fault breaks is refused with the
//! check named and nothing left behind.
//!
//! Objects carry `dev.bottle.test=<label>` and are removed at the end, pass or fail.

mod common;

use common::*;

/// The launch record's self-test, as JSON.
fn recorded_self_test(bottle: &TestBottle, identity: &str) -> serde_json::Value {
    let path = bottle
        .path()
        .join("state")
        .join(identity)
        .join("launch.json");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    record["self_test"].clone()
}

/// The names of the checks a report holds, each once.
fn checks_of(report: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = report["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {report}"))
        .iter()
        .map(|r| r["check"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn audit_self_tests(bottle: &TestBottle) -> Vec<serde_json::Value> {
    bottle::supervise::audit::read_all(bottle.path())
        .into_iter()
        .filter(|line| line["event"] == "self-test")
        .collect()
}

#[test]
fn the_self_test_passes_on_a_default_bottle_and_doctor_shows_the_same_checks() {
    let Some(bottle) = TestBottle::new("selftest") else {
        return;
    };
    write_secret_bottle(&bottle, "");
    let launched = bottle.start_detached(&[("BOTTLE_LOG", "info")]);
    let identity = identity_of(&launched);
    let said = text(&launched);
    assert!(
        said.contains("self-test passed"),
        "no report under -v: {said}"
    );
    let report = recorded_self_test(&bottle, &identity);
    assert_eq!(report["passed"], true, "{report}");
    let checks = checks_of(&report);
    for check in [
        "no direct egress",
        "no host",
        "no DNS exfiltration",
        "proxy refuses unlisted hosts",
        "no Docker socket",
        "no route token in the agent",
    ] {
        assert!(
            checks.iter().any(|c| c == check),
            "{check} missing: {checks:?}"
        );
    }
    // Every check that something must fail has a control that passed: the probes could see.
    let rows = report["rows"].as_array().unwrap();
    for check in &checks {
        let control = rows
            .iter()
            .any(|r| &r["check"] == check && r["control"] == true);
        assert!(control, "`{check}` has no control: {report}");
    }
    let audited = audit_self_tests(&bottle);
    assert!(
        audited
            .iter()
            .any(|a| a["bottle"] == identity.as_str() && a["passed"] == true),
        "no audit line: {audited:?}"
    );
    // The fingerprints of the route token reached the prober; the token did not.
    let agent_view = text(&bottle.exec_in_agent(&identity, "cat /proc/1/environ; ls -la /.bottle"));
    assert!(!agent_view.contains(ROUTE_TOKEN), "{agent_view}");
    assert!(bottle.bottle(&["stop", &identity]).status.success());

    let agent = bottle.agent.get().unwrap().clone();
    let doctor = bottle.bottle(&[
        "doctor",
        "--isolation",
        "--agent",
        &agent,
        "--format",
        "json",
    ]);
    let out = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(
        doctor.status.success(),
        "doctor --isolation failed: {}",
        text(&doctor)
    );
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(json["passed"], true, "{json}");
    assert_eq!(
        checks_of(&json),
        checks,
        "doctor and the launch check the same things"
    );
    bottle.assert_nothing_left();
}

#[test]
fn a_bottle_with_broken_isolation_is_refused_with_the_check_named_and_nothing_left() {
    let Some(bottle) = TestBottle::new("selftest-fault") else {
        return;
    };
    write_secret_bottle(&bottle, "");
    for (fault, check) in [
        ("agent-on-egress", "`no direct egress`"),
        ("bridge-host-address", "`no host`"),
    ] {
        let output = bottle.start_detached(&[("BOTTLE_TEST_FAULT", fault)]);
        let said = text(&output);
        assert!(
            !output.status.success(),
            "{fault}: launched despite the fault: {said}"
        );
        assert!(
            said.contains("launch stopped at step `self-test`"),
            "{fault}: {said}"
        );
        assert!(said.contains(check), "{fault}: {check} not named: {said}");
        assert!(said.contains("fix: "), "{fault}: no fix: {said}");
        assert!(!said.contains(ROUTE_TOKEN), "{fault}: {said}");
        bottle.assert_nothing_left();
    }
    let audited = audit_self_tests(&bottle);
    assert_eq!(
        audited.iter().filter(|a| a["passed"] == false).count(),
        2,
        "each refusal is audited: {audited:?}"
    );
    // The escape hatch is loud, and never covers a test fault.
    let both = bottle.start_detached(&[
        ("BOTTLE_TEST_FAULT", "agent-on-egress"),
        ("BOTTLE_UNSAFE_SKIP_SELF_TEST", "1"),
    ]);
    let said = text(&both);
    assert!(!both.status.success(), "{said}");
    assert!(said.contains("isolation self-test skipped"), "{said}");
    assert!(said.contains("together would launch"), "{said}");
    bottle.assert_nothing_left();
}
