//! The JavaScript agent image of `examples/node-agent/`, built by a real bottle on the real engine
//! through the bottle's `dockerfile:` key, with Node.js and npm working for the agent user.
//!
//! Objects are labelled for the test and removed when it ends (see `common`); the built image is
//! kept as a cache, as the default agent image is. Without an engine the test skips (not in CI).

mod common;

use std::path::Path;

use common::*;

#[test]
fn the_node_example_builds_and_runs_node_and_npm_as_the_agent() {
    let Some(bottle) = TestBottle::new("node") else {
        return;
    };
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/node-agent/Dockerfile")
        .canonicalize()
        .unwrap();
    bottle.write(
        "bottles/test.md",
        &format!("---\ndockerfile: {}\n---\n", dockerfile.display()),
    );
    let identity = identity_of(&bottle.start_detached(&[]));
    let out = bottle.exec_in_agent(
        &identity,
        "id -un; id -u; echo $HOME; node --version; npm --version; npm config get prefix",
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 6, "{said}");
    assert_eq!(&lines[..3], ["agent", "1000", "/home/agent"], "{said}");
    let node = lines[3];
    assert!(
        node.starts_with('v') && node[1..].split('.').count() == 3,
        "node --version: {said}"
    );
    assert!(
        lines[4].split('.').all(|part| part.parse::<u32>().is_ok()),
        "npm --version: {said}"
    );
    assert_eq!(lines[5], "/home/agent/.npm-global", "{said}");
    let stop = bottle.bottle(&["stop", &identity]);
    assert!(stop.status.success(), "{}", text(&stop));
    bottle.assert_nothing_left();
}
