//! The conversations in a kept `~/.claude`: one transcript per session
//! (`projects/<project>/<session uuid>.jsonl`), for `bottle resume --list-sessions` and to check
//! a `--session` the operator names.

use std::io::BufRead;
use std::path::Path;

use super::cap;

/// One kept conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id (the transcript's file name), what `--session` takes.
    pub id: String,
    /// Last written (seconds since the epoch).
    pub modified: u64,
    /// The first line of its first prompt, escaped for a terminal and shortened.
    pub first_prompt: String,
}

/// How much of a transcript is read to find its first prompt.
const READ_AT_MOST: u64 = 1 << 20;
/// How long a shown prompt line may be.
const PROMPT_CHARS: usize = 72;

/// The conversations kept for a bottle, newest first.
pub fn list(state_dir: &Path) -> Vec<Session> {
    let root = state_dir.join(super::COPY);
    let mut sessions: Vec<Session> = cap::walk(&root)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f.is_transcript())
        .filter_map(|f| {
            let id = f.path.file_stem()?.to_string_lossy().into_owned();
            is_session_id(&id).then(|| Session {
                first_prompt: first_prompt(&root.join(&f.path)),
                id,
                modified: f.mtime,
            })
        })
        .collect();
    sessions.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.id.cmp(&b.id)));
    sessions
}

/// Whether `id` has the shape of a Claude Code session id (a UUID). Anything else is refused
/// before it reaches the agent's command line.
pub fn is_session_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The first user prompt's first line; the transcript is the agent's text, so it is escaped.
fn first_prompt(path: &Path) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return String::new();
    };
    let reader = std::io::BufReader::new(std::io::Read::take(file, READ_AT_MOST));
    for line in reader.lines().map_while(Result::ok) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if value["type"] != "user" || value["isMeta"] == true {
            continue;
        }
        let content = &value["message"]["content"];
        let text = match content {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => parts
                .iter()
                .find_map(|p| p["text"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        if first.is_empty() {
            continue;
        }
        let short: String = first.chars().take(PROMPT_CHARS).collect();
        let more = if first.chars().count() > PROMPT_CHARS {
            "…"
        } else {
            ""
        };
        return format!(
            "{}{more}",
            bottle_supervise_queue::text::escape_unprintable(&short)
        );
    }
    String::new()
}

/// A time as `YYYY-MM-DD HH:MM` UTC.
pub fn shown_time(seconds: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds as i64)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_listed_newest_first_with_their_first_prompt_escaped() {
        let state = tempfile::tempdir().unwrap();
        let project = state.path().join("claude/projects/-workspace");
        std::fs::create_dir_all(&project).unwrap();
        let old = "11111111-2222-3333-4444-555555555555";
        let new = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        std::fs::write(
            project.join(format!("{old}.jsonl")),
            "{\"type\":\"summary\"}\nnot json\n{\"type\":\"user\",\"isMeta\":true,\"message\":{\"content\":\"meta\"}}\n\
             {\"type\":\"user\",\"message\":{\"content\":\"fix the \\u001b[2Jbuild\\nand more\"}}\n",
        )
        .unwrap();
        std::fs::write(
            project.join(format!("{new}.jsonl")),
            "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"write tests\"}]}}\n",
        )
        .unwrap();
        std::fs::write(project.join("not-a-session.jsonl"), "{}").unwrap();
        let set = |name: &str, t: u64| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(project.join(name))
                .unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
                .unwrap();
        };
        set(&format!("{old}.jsonl"), 1_000);
        set(&format!("{new}.jsonl"), 2_000);
        let sessions = list(state.path());
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].id, new);
        assert_eq!(sessions[0].first_prompt, "write tests");
        assert_eq!(sessions[1].first_prompt, "fix the \\u001b[2Jbuild");
        assert!(!sessions[1].first_prompt.contains('\u{1b}'));
    }

    #[test]
    fn only_uuids_are_session_ids() {
        assert!(is_session_id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"));
        for bad in [
            "",
            "x",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeeee",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeee;x",
            "$(reboot)-bbbb-cccc-dddd-eeeeeeeeeeee",
        ] {
            assert!(!is_session_id(bad), "{bad}");
        }
    }
}
