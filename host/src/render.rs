//! Human-readable renderings of a plan: the compact preflight line and the full dry run.

use std::fmt::Write as _;

use crate::plan::model::*;

pub use bottle_supervise_queue::text::{one_line, printable};

/// How many hosts the preflight names before `+N more`.
const PREFLIGHT_HOSTS: usize = 3;

/// One line: `N hosts allowed (a, b, c, +M more) · sidecars … · proxy …`, with the runtime the
/// bottle asks for.
pub fn preflight(plan: &Plan) -> String {
    preflight_on(plan, &plan.runtime)
}

/// The preflight line naming `runtime`: what this engine will run the agent under.
pub fn preflight_on(plan: &Plan, runtime: &str) -> String {
    let hosts: Vec<&str> = plan.egress.iter().map(|h| h.host.as_str()).collect();
    let mut named = hosts
        .iter()
        .take(PREFLIGHT_HOSTS)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if hosts.len() > PREFLIGHT_HOSTS {
        let _ = write!(named, ", +{} more", hosts.len() - PREFLIGHT_HOSTS);
    }
    let sidecars: Vec<&str> = plan.sidecars.iter().map(|s| s.name.as_str()).collect();
    format!(
        "{} hosts allowed ({named}) · sidecars: {} · agent proxy: {} · secrets: {} · runtime: {}{}{}",
        hosts.len(),
        if sidecars.is_empty() {
            "none".to_owned()
        } else {
            sidecars.join(", ")
        },
        plan.agent_proxy.as_deref().unwrap_or("none (no route out)"),
        plan.secrets.len(),
        runtime,
        remote_control(plan),
        if crate::sidecars::egress_proxy::learning(plan) {
            " · LEARN MODE: hosts off the allowlist are allowed and recorded"
        } else {
            ""
        },
    )
}

/// The preflight's warning when the operator turned the isolation self-test off: red on a
/// terminal, and loud either way.
pub fn self_test_skipped() -> String {
    let text = format!(
        "WARNING: isolation self-test skipped ({}=1): nothing proves this bottle is isolated on this engine",
        crate::launch::self_test::SKIP_ENV
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else {
        text
    }
}

/// The preflight's word on remote control: the session can be driven from outside the bottle, so
/// the operator sees it before saying yes.
fn remote_control(plan: &Plan) -> String {
    let flag = format!("claude {}", crate::model_login::REMOTE_CONTROL_FLAG);
    if plan.agent.command.iter().any(|arg| arg.contains(&flag)) {
        format!(
            " · remote control: on (through {}, no other host added)",
            crate::model_login::MODEL_API_HOST
        )
    } else {
        String::new()
    }
}

/// The whole plan as text: sidecars in start order, the agent, the allowlist. No secret values
/// exist in a plan, so none can be printed.
pub fn dry_run(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bottle `{}` for agent `{}` (dry run: nothing is launched)",
        plan.bottle, plan.agent.name
    );
    let _ = writeln!(out, "preflight: {}", preflight(plan));
    let _ = writeln!(
        out,
        "internal network CIDR: {} (assigned by Docker at launch)",
        plan.internal_cidr
    );
    start_order(&mut out, plan);
    for sidecar in &plan.sidecars {
        sidecar_section(&mut out, sidecar);
    }
    agent_section(&mut out, plan);
    egress_section(&mut out, plan);
    cas_section(&mut out, plan);
    out
}

fn start_order(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "\nstart order:");
    if plan.stages.is_empty() {
        let _ = writeln!(out, "  (no sidecars)");
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        let together = if stage.len() > 1 {
            "  (start together)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {}. {}{together}", i + 1, stage.join(", "));
    }
    let _ = writeln!(
        out,
        "  {}. agent `{}`",
        plan.stages.len() + 1,
        plan.agent.name
    );
}

fn sidecar_section(out: &mut String, s: &SidecarPlan) {
    let _ = writeln!(out, "\nsidecar `{}` (plugin {})", s.name, s.plugin);
    let _ = writeln!(out, "  image:    {}", image(&s.image));
    if !s.command.is_empty() {
        let _ = writeln!(out, "  command:  {}", one_line(&s.command.join(" ")));
    }
    let networks: Vec<&str> = s
        .networks
        .iter()
        .map(|n| match n {
            NetworkKind::Internal => "internal",
            NetworkKind::Egress => "egress",
        })
        .collect();
    let _ = writeln!(out, "  networks: {}", networks.join(", "));
    if !s.aliases.is_empty() {
        let _ = writeln!(out, "  aliases:  {}", s.aliases.join(", "));
    }
    if let Some(port) = s.port {
        let _ = writeln!(out, "  port:     {port}");
    }
    if let Some(health) = &s.health {
        let _ = writeln!(out, "  health:   {}", probe(&health.probe));
    }
    if !s.roles.is_empty() {
        let roles: Vec<String> = s.roles.iter().map(|(r, p)| format!("{r} ({p})")).collect();
        let _ = writeln!(out, "  roles:    {}", roles.join(", "));
    }
    if !s.after.is_empty() {
        let _ = writeln!(out, "  after:    {}", s.after.join(", "));
    }
    env_lines(out, &s.env);
    for ca in &s.cas {
        let key = ca
            .key_path
            .as_deref()
            .map(|k| format!(", key {k}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  CA `{}`: cert {}{key}", ca.ca, ca.cert_path);
    }
    for m in &s.mounts {
        let ro = if m.read_only { " (read-only)" } else { "" };
        let _ = writeln!(
            out,
            "  mount:    <bottle state>/{} → {}{ro}",
            m.state_dir, m.target
        );
    }
    for h in &s.host_files {
        let _ = writeln!(
            out,
            "  host file: {} → {} ({:04o})",
            h.host_path, h.path, h.mode
        );
    }
    for (host, ip) in &s.extra_hosts {
        let _ = writeln!(out, "  extra host: {host} → {ip}");
    }
    files(out, &s.files);
}

fn agent_section(out: &mut String, plan: &Plan) {
    let a = &plan.agent;
    let _ = writeln!(out, "\nagent `{}`", a.name);
    let _ = writeln!(out, "  image:    {}", image(&a.image));
    let _ = writeln!(out, "  command:  {}", one_line(&a.command.join(" ")));
    let _ = writeln!(out, "  networks: internal");
    let _ = writeln!(
        out,
        "  proxy:    {}",
        plan.agent_proxy.as_deref().unwrap_or("none")
    );
    let _ = writeln!(out, "  NO_PROXY: {}", a.no_proxy.join(","));
    env_lines(out, &a.env);
    if !a.skills.is_empty() {
        let _ = writeln!(out, "  skills:   {}", a.skills.join(", "));
    }
    for (i, step) in a.provision.iter().enumerate() {
        let _ = writeln!(
            out,
            "  provision {}: {} ({}): {}",
            i + 1,
            one_line(&step.name),
            step.plugin,
            one_line(&step.command.join(" "))
        );
    }
    files(out, &a.files);
    let prompt_lines = a.prompt.lines().count();
    let _ = writeln!(out, "  system prompt: {prompt_lines} lines");
}

fn egress_section(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "\negress allowlist ({} hosts):", plan.egress.len());
    for h in &plan.egress {
        let mut flags = Vec::new();
        if h.credentialed {
            flags.push("credentials injected");
        }
        if h.passthrough {
            flags.push("passthrough");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        let _ = writeln!(
            out,
            "  {}{flags} — {}",
            h.host,
            one_line(&h.reasons.join("; "))
        );
    }
}

fn cas_section(out: &mut String, plan: &Plan) {
    for ca in &plan.cas {
        let holders = if ca.key_holders.is_empty() {
            "none".to_owned()
        } else {
            ca.key_holders.join(", ")
        };
        let _ = writeln!(
            out,
            "CA `{}` ({}), minted at launch; private key only in: {holders}",
            ca.name, ca.algorithm
        );
    }
}

fn env_lines(out: &mut String, env: &[EnvEntry]) {
    for e in env {
        match &e.value {
            EnvSource::Literal(v) => {
                let _ = writeln!(out, "  env:      {}={}", e.name, one_line(v));
            }
            EnvSource::Secret(name) => {
                let _ = writeln!(
                    out,
                    "  env:      {}=<secret {name}, resolved at launch>",
                    e.name
                );
            }
        }
    }
}

fn files(out: &mut String, files: &[FilePlan]) {
    for f in files {
        let _ = writeln!(out, "  file {} ({:04o}):", f.path, f.mode);
        match std::str::from_utf8(&f.contents) {
            Ok(text) => {
                for line in text.lines() {
                    let _ = writeln!(out, "    | {}", one_line(line));
                }
            }
            Err(_) => {
                let _ = writeln!(out, "    <{} bytes of binary data>", f.contents.len());
            }
        }
    }
}

fn image(image: &ImagePlan) -> String {
    match image {
        ImagePlan::Reference(r) => one_line(r).into_owned(),
        ImagePlan::Context(c) => format!("built from docker/{c}/"),
        ImagePlan::Dockerfile(path) => format!("built from {path}"),
    }
}

fn probe(probe: &ProbePlan) -> String {
    match probe {
        ProbePlan::Tcp(port) => format!("tcp :{port}"),
        ProbePlan::Http { port, path } => format!("http :{port}{path}"),
        ProbePlan::Exec(cmd) => format!("exec {}", one_line(&cmd.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        let text = "api.example.com — fetch docs: ünïcödé ✓";
        assert!(matches!(printable(text, &[]), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn controls_and_direction_overrides_become_escapes() {
        assert_eq!(one_line("a\u{1b}[2Jb"), "a\\u001b[2Jb");
        assert_eq!(
            one_line("x\ry\nz\u{7f}\u{9b}"),
            "x\\u000dy\\u000az\\u007f\\u009b"
        );
        assert_eq!(one_line("\u{202e}moc.live"), "\\u202emoc.live");
        assert_eq!(
            one_line("\u{2066}a\u{2069}\u{200b}"),
            "\\u2066a\\u2069\\u200b"
        );
    }

    #[test]
    fn kept_characters_stay() {
        assert_eq!(printable("a\n\tb\r", &['\n', '\t']), "a\n\tb\\u000d");
    }
}
