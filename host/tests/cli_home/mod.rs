//! The CLI as a user runs it, shared by the CLI test files: a temporary `BOTTLE_HOME` with manifests
//! on disk, and the `bottle` binary run in it as a process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const SECRET_VALUE: &str = "sk-ant-oat01-do-not-print-this-value-anywhere";

pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn bottle(&self, args: &[&str]) -> Output {
        self.bottle_with(args, &[])
    }

    /// Like [`Home::bottle`], with extra environment variables.
    pub fn bottle_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bottle"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("BOTTLE_HOME", self.path())
            .env("HOME", self.path())
            .env("CLAUDE_CODE_OAUTH_TOKEN", SECRET_VALUE)
            .env("GH_TOKEN", SECRET_VALUE)
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    /// A bottle using all four built-in plugins.
    pub fn full(&self) {
        let key = self.write("keys/id_ed25519", "not a real key\n");
        self.write(
            "agents/dev.md",
            "---\nbottle: work\nskills: [review]\n---\nYou are careful.\n",
        );
        self.write(
            "bottles/work.md",
            &format!(
                "---\nenv:\n  GH_TOKEN: \"?\"\n  CLAUDE_CODE_OAUTH_TOKEN: \"${{CLAUDE_CODE_OAUTH_TOKEN}}\"\n  LEVEL: debug\n\
                 egress:\n  firewall: pipelock\n  allowlist: [crates.io]\n\
                 egress_proxy:\n  routes:\n    - host: api.github.com\n      auth: {{scheme: token, token_ref: GH_TOKEN}}\n      path_allowlist: [/repos/acme/]\n\
                 \x20   - host: api.anthropic.com\n      auth: {{scheme: Bearer, token_ref: CLAUDE_CODE_OAUTH_TOKEN}}\n      methods: [GET, POST]\n\
                 git:\n  - Name: app\n    Upstream: ssh://git@git.example.com:2222/org/app.git\n    IdentityFile: {}\n\
                 \x20   KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
                 supervise: true\n---\nNotes.\n",
                key.display()
            ),
        );
    }
}

pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr_of_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr.clone()).unwrap()
}

pub fn json_plan(home: &Home, agent: Option<&str>) -> Value {
    let mut args = vec!["start"];
    args.extend(agent);
    args.extend(["--dry-run", "--format", "json"]);
    let out = stdout(&home.bottle(&args));
    serde_json::from_str(&out).unwrap()
}

pub fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}
