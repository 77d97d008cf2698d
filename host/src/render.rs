//! Human-readable renderings of a plan: the compact preflight line and the full dry run.

use std::fmt::Write as _;

use crate::plan::model::*;

/// How many hosts the preflight names before `+N more`.
const PREFLIGHT_HOSTS: usize = 3;

/// One line: `N hosts allowed (a, b, c, +M more) · sidecars … · proxy …`.
pub fn preflight(plan: &Plan) -> String {
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
        "{} hosts allowed ({named}) · sidecars: {} · agent proxy: {} · secrets: {} · runtime: {}",
        hosts.len(),
        if sidecars.is_empty() {
            "none".to_owned()
        } else {
            sidecars.join(", ")
        },
        plan.agent_proxy.as_deref().unwrap_or("none (no route out)"),
        plan.secrets.len(),
        plan.runtime,
    )
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
        let _ = writeln!(out, "  command:  {}", s.command.join(" "));
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
    let _ = writeln!(out, "  command:  {}", a.command.join(" "));
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
            step.name,
            step.plugin,
            step.command.join(" ")
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
        let _ = writeln!(out, "  {}{flags} — {}", h.host, h.reasons.join("; "));
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
                let _ = writeln!(out, "  env:      {}={v}", e.name);
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
                    let _ = writeln!(out, "    | {line}");
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
        ImagePlan::Reference(r) => r.clone(),
        ImagePlan::Context(c) => format!("built from docker/{c}/"),
        ImagePlan::Dockerfile(path) => format!("built from {path}"),
    }
}

fn probe(probe: &ProbePlan) -> String {
    match probe {
        ProbePlan::Tcp(port) => format!("tcp :{port}"),
        ProbePlan::Http { port, path } => format!("http :{port}{path}"),
        ProbePlan::Exec(cmd) => format!("exec {}", cmd.join(" ")),
    }
}
