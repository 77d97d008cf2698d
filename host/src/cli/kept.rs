//! Bottles that are gone but kept their state: the rows of `bottle list --all`, what
//! `bottle cleanup --state` prunes, `bottle stop` of such a bottle, and the `bottle/*` images
//! `bottle cleanup --images` prunes.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::docker::Engine;
use crate::home::Home;
use crate::snapshot;

/// One bottle's kept state.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The identity.
    pub identity: String,
    /// Its agent.
    pub agent: String,
    /// When it was kept (the copy's time, else the launch's).
    pub when: String,
    /// Why: exit, crash, interrupt, capability (or `error` for state kept without a copy).
    pub why: String,
    /// Bytes on disk.
    pub bytes: u64,
    /// The directory.
    pub dir: PathBuf,
}

/// Every state directory of a bottle not in `running`, oldest first.
pub fn kept(home: &Home, running: &BTreeSet<String>) -> Vec<Kept> {
    let root = snapshot::state_root(home);
    let mut rows: Vec<Kept> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let identity = e.file_name().to_string_lossy().into_owned();
            (!running.contains(&identity)).then(|| row(&e.path(), identity))
        })
        .collect();
    rows.sort_by(|a, b| a.when.cmp(&b.when).then(a.identity.cmp(&b.identity)));
    rows
}

fn row(dir: &Path, identity: String) -> Kept {
    let launch = crate::launch::state::read(
        dir.parent().unwrap_or(dir),
        &crate::launch::identity::Identity::from_name(&identity),
    )
    .ok();
    let record = snapshot::read_record(dir);
    let why = match &record {
        Some(r) => r.why.as_str().to_owned(),
        None if crate::supervise::apply::resume_pending(dir) => "capability".to_owned(),
        None => "error".to_owned(),
    };
    Kept {
        agent: launch.as_ref().map(|l| l.agent.clone()).unwrap_or_default(),
        when: record
            .map(|r| r.kept_at)
            .or_else(|| launch.map(|l| l.launched_at))
            .unwrap_or_default(),
        why,
        bytes: snapshot::size_of(dir),
        dir: dir.to_path_buf(),
        identity,
    }
}

/// The rows as a table for `bottle list --all`.
pub fn render(rows: &[Kept]) -> String {
    if rows.is_empty() {
        return "no kept state\n".into();
    }
    let mut out = format!(
        "{:<24} {:<16} {:<20} {:<10} {:>9}  RESUME\n",
        "KEPT STATE", "AGENT", "WHEN (UTC)", "WHY", "SIZE"
    );
    for r in rows {
        let when: String = r.when.replace('T', " ").chars().take(19).collect();
        out.push_str(&format!(
            "{:<24} {:<16} {:<20} {:<10} {:>9}  bottle resume {}\n",
            r.identity,
            r.agent,
            when,
            r.why,
            size(r.bytes),
            r.identity
        ));
    }
    out
}

/// Bytes for people.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
    }
}

/// y/N on the terminal; `yes` answers for it; without a terminal it is an error naming `--yes`.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to confirm on; pass --yes to {question}");
    }
    Ok(ask(question)?)
}

/// Asks `question` with `[y/N]` on stderr and reads the answer; only a yes is yes.
pub fn ask(question: &str) -> std::io::Result<bool> {
    eprint!("{question}? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `bottle stop` of a bottle that is not running: say what is kept and offer to delete it.
pub fn stop_kept(home: &Home, identity: &str, yes: bool) -> anyhow::Result<bool> {
    let dir = snapshot::state_root(home).join(identity);
    if !dir.is_dir() || identity.contains('/') || identity.starts_with('.') {
        anyhow::bail!("no bottle `{identity}`, running or kept; `bottle list --all` shows both");
    }
    let r = row(&dir, identity.to_owned());
    eprintln!(
        "bottle `{identity}` is not running; its state is kept ({}, {}, {}): `bottle resume \
         {identity}` continues it",
        r.why,
        r.when,
        size(r.bytes)
    );
    if !confirm("delete the kept state", yes)? {
        eprintln!("kept");
        return Ok(false);
    }
    std::fs::remove_dir_all(&dir)?;
    eprintln!("deleted the kept state of `{identity}`");
    Ok(true)
}

/// `bottle cleanup --state`: delete the kept state of bottles that are not running.
pub fn prune_state(home: &Home, running: &BTreeSet<String>, yes: bool) -> anyhow::Result<bool> {
    let rows = kept(home, running);
    if rows.is_empty() {
        println!("no kept state to prune");
        return Ok(true);
    }
    print!("{}", render(&rows));
    let total: u64 = rows.iter().map(|r| r.bytes).sum();
    if !confirm(
        &format!(
            "delete the kept state of {} bottle(s), {}",
            rows.len(),
            size(total)
        ),
        yes,
    )? {
        return Ok(false);
    }
    for r in &rows {
        std::fs::remove_dir_all(&r.dir)?;
        println!("deleted the kept state of {}", r.identity);
    }
    Ok(true)
}

/// `bottle cleanup --images`: every `bottle/*` image but the newest of each repository, and every
/// `--cwd` workspace image; an image a container still uses stays (the engine refuses).
pub async fn prune_images(engine: &Engine, yes: bool) -> anyhow::Result<bool> {
    let old = old_images(engine).await?;
    if old.is_empty() {
        println!("no old bottle images");
        return Ok(true);
    }
    for (tag, bytes) in &old {
        println!("{tag}  {}", size(*bytes));
    }
    let total: u64 = old.iter().map(|(_, b)| *b).sum();
    if !confirm(
        &format!("remove these {} image(s), {}", old.len(), size(total)),
        yes,
    )? {
        return Ok(false);
    }
    for (tag, _) in &old {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default().build();
        match engine.client().remove_image(tag, Some(options), None).await {
            Ok(_) => println!("removed {tag}"),
            Err(e) => println!("kept {tag}: {e}"),
        }
    }
    Ok(true)
}

/// `bottle/*` tags no launch needs: all but the newest of each repository (built from the
/// contexts embedded in this binary, by content hash) and every workspace image.
async fn old_images(engine: &Engine) -> anyhow::Result<Vec<(String, u64)>> {
    let mut filters = std::collections::HashMap::new();
    filters.insert("reference".to_owned(), vec!["bottle/*".to_owned()]);
    let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let images = engine.client().list_images(Some(options)).await?;
    let mut tags: Vec<(String, i64, u64)> = images
        .iter()
        .flat_map(|i| {
            i.repo_tags
                .iter()
                .map(move |t| (t.clone(), i.created, i.size.max(0) as u64))
        })
        .filter(|(t, _, _)| t.starts_with("bottle/"))
        .collect();
    tags.sort_by_key(|t| std::cmp::Reverse(t.1));
    let mut newest = BTreeSet::new();
    let mut old = Vec::new();
    for (tag, _, bytes) in tags {
        let repository = tag
            .rsplit_once(':')
            .map_or(tag.as_str(), |(r, _)| r)
            .to_owned();
        let workspace = tag.starts_with(crate::docker::WORKSPACE_IMAGE_PREFIX);
        if workspace || !newest.insert(repository) {
            old.push((tag, bytes));
        }
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_state_is_listed_with_why_and_size_and_running_bottles_are_not() {
        let home = tempfile::tempdir().unwrap();
        let home = Home::at(home.path());
        let state = snapshot::state_root(&home);
        for (id, agent) in [("dev", "dev"), ("dev-2", "dev"), ("live", "x")] {
            let record = crate::launch::state::ResumeRecord {
                identity: id.into(),
                agent: agent.into(),
                cwd: "/".into(),
                workspace: None,
                launched_at: format!("2026-01-0{}T00:00:00Z", id.len()),
                self_test: None,
            };
            crate::launch::state::create(&state, &record).unwrap();
        }
        std::fs::write(
            state.join("dev/snapshot.json"),
            r#"{"kept_at":"2026-02-01T10:00:00Z","why":"interrupt","files":1,"bytes":5,"cut":false}"#,
        )
        .unwrap();
        let running = BTreeSet::from(["live".to_owned()]);
        let rows = kept(&home, &running);
        let ids: Vec<&str> = rows.iter().map(|r| r.identity.as_str()).collect();
        assert_eq!(ids, ["dev-2", "dev"]);
        assert_eq!(rows[1].why, "interrupt");
        assert_eq!(rows[0].why, "error");
        assert!(rows[1].bytes > 0);
        let table = render(&rows);
        assert!(
            table.contains("2026-02-01 10:00:00") && table.contains("bottle resume dev"),
            "{table}"
        );
        assert!(prune_state(&home, &running, true).unwrap());
        assert!(!state.join("dev").exists() && state.join("live").exists());
    }
}
