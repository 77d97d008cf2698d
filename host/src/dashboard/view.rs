//! Drawing the dashboard: the list of pending proposals or one proposal's detail, a status line
//! and, at the bottom, either the keys or the question being asked.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, List, ListItem, ListState, Paragraph, Row, Table};
use ratatui::widgets::{TableState, Wrap};
use time::OffsetDateTime;

use super::state::{self, App, Prompt, StatusKind, View};
// Everything drawn that came from a queue file, an error or the operator's typing goes through
// `shown`: an escape sequence must not act on the operator's terminal, nor a bidi control
// reorder what is read.
use crate::supervise::preview::shown;

const HELP_LIST: &str = "↑↓/jk move · Enter details · a approve · A approve, token may go to a new host · \
                         m modify in $EDITOR + approve · r reject · e edit a bottle · q quit";
const HELP_DETAIL: &str = "↑↓/jk PgUp/PgDn scroll · a approve · A approve, token may go to a new host · \
                           m modify + approve · r reject · e edit a bottle · Esc back · q quit";
const HELP_REASON: &str = "Enter send · Esc cancel";
const HELP_CONFIRM: &str = "y yes · n/Esc no";
const HELP_MENU: &str = "↑↓/jk choose · Enter open in $EDITOR · Esc cancel";

/// How long ago `created_at` (RFC 3339) was, shortly: `42s`, `5m`, `3h`, `2d`; `?` if unreadable.
pub fn age(created_at: &str, now: OffsetDateTime) -> String {
    let Ok(then) =
        OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
    else {
        return "?".into();
    };
    let secs = (now - then).whole_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &App, now: OffsetDateTime) {
    let area = frame.area();
    let status = status_text(app);
    let bottom = bottom_text(app);
    let status_height = wrapped_height(&status, area.width).min(6);
    let bottom_height = wrapped_height(&bottom, area.width).min(6);
    let [main, status_area, bottom_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(status_height),
        Constraint::Length(bottom_height),
    ])
    .areas(area);
    match app.view {
        View::List => draw_list(frame, app, main, now),
        View::Detail { scroll } => draw_detail(frame, app, main, scroll, now),
    }
    frame.render_widget(
        Paragraph::new(status).wrap(Wrap { trim: false }),
        status_area,
    );
    frame.render_widget(
        Paragraph::new(bottom).wrap(Wrap { trim: false }),
        bottom_area,
    );
    if let Prompt::EditMenu { choices, selected } = &app.prompt {
        draw_menu(frame, main, choices, *selected);
    }
}

fn wrapped_height(text: &Text, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let lines: usize = text
        .lines
        .iter()
        .map(|l| l.width().div_ceil(width).max(1))
        .sum();
    u16::try_from(lines).unwrap_or(u16::MAX)
}

fn status_text(app: &App) -> Text<'static> {
    match &app.status {
        None => Text::default(),
        Some((kind, message)) => {
            let style = match kind {
                StatusKind::Info => Style::new().fg(Color::Green),
                StatusKind::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            };
            Text::from(
                shown(message)
                    .lines()
                    .map(|l| Line::styled(l.to_owned(), style))
                    .collect::<Vec<_>>(),
            )
        }
    }
}

fn bottom_text(app: &App) -> Text<'static> {
    let key_style = Style::new().fg(Color::DarkGray);
    let ask = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    match &app.prompt {
        Prompt::None => {
            let help = match app.view {
                View::List => HELP_LIST,
                View::Detail { .. } => HELP_DETAIL,
            };
            Text::from(Line::styled(help, key_style))
        }
        Prompt::Reason { key, input } => Text::from(vec![
            Line::from(vec![
                Span::styled(shown(&format!("reject {key}, reason for the agent: ")), ask),
                Span::raw(shown(input)),
                Span::styled("█", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            ]),
            Line::styled(HELP_REASON, key_style),
        ]),
        Prompt::Confirm { question, .. } => Text::from(vec![
            Line::styled(shown(question), ask),
            Line::styled(HELP_CONFIRM, key_style),
        ]),
        Prompt::EditMenu { .. } => Text::from(Line::styled(HELP_MENU, key_style)),
    }
}

fn draw_list(frame: &mut Frame, app: &App, area: Rect, now: OffsetDateTime) {
    let title = format!(
        " bottle dashboard · {} pending · {} bottle(s) with a queue ",
        app.rows().len(),
        app.bottles().len()
    );
    let block = Block::bordered().title(title);
    if app.rows().is_empty() {
        let text = Paragraph::new("no pending proposals (refreshing every second)").block(block);
        frame.render_widget(text, area);
        return;
    }
    let width = |f: &dyn Fn(&state::Row) -> usize, title: &str| {
        let widest = app.rows().iter().map(f).max().unwrap_or(0);
        Constraint::Length(u16::try_from(widest.max(title.len())).unwrap_or(u16::MAX))
    };
    let widths = [
        width(&|r| shown(&r.item.entry.proposal.id).len(), "ID"),
        width(&|r| shown(&r.item.bottle.identity).len(), "BOTTLE"),
        width(&|r| r.item.entry.proposal.tool.name().len(), "TOOL"),
        Constraint::Length(4),
        Constraint::Fill(1),
    ];
    let header = Row::new(["ID", "BOTTLE", "TOOL", "AGE", "SUMMARY"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.rows().iter().map(|r| {
        let p = &r.item.entry.proposal;
        Row::new([
            Cell::from(shown(&p.id)),
            Cell::from(shown(&r.item.bottle.identity)),
            Cell::from(p.tool.name()),
            Cell::from(age(&p.created_at, now)),
            Cell::from(r.summary.clone()),
        ])
    });
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(2)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(Some(app.selected()));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The lines of a proposal's detail: what, who, why, and the diff coloured.
pub fn detail_lines(row: &state::Row, now: OffsetDateTime) -> Vec<Line<'static>> {
    let p = &row.item.entry.proposal;
    let label = Style::new().fg(Color::Cyan);
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<10}"), label),
            Span::raw(value),
        ])
    };
    let heading =
        |text: &str| Line::styled(text.to_owned(), Style::new().add_modifier(Modifier::BOLD));
    let mut lines = vec![
        field("proposal", shown(&p.id)),
        field("bottle", shown(&row.item.bottle.identity)),
        field("tool", p.tool.name().to_owned()),
        field(
            "asked",
            format!("{} ({} ago)", shown(&p.created_at), age(&p.created_at, now)),
        ),
        field("summary", row.summary.clone()),
        Line::raw(""),
        heading("Justification"),
    ];
    lines.extend(
        shown(&p.justification)
            .lines()
            .map(|l| Line::raw(format!("  {l}"))),
    );
    lines.push(Line::raw(""));
    lines.push(heading(
        "Change, as a diff against the bottle's current configuration",
    ));
    if row.diff.is_empty() {
        lines.push(Line::raw(
            "  (no difference from the current configuration)",
        ));
    }
    lines.extend(row.diff.lines().map(diff_line));
    lines
}

fn diff_line(line: &str) -> Line<'static> {
    let style = if line.starts_with("+++") || line.starts_with("---") {
        Style::new().add_modifier(Modifier::BOLD)
    } else if line.starts_with('+') {
        Style::new().fg(Color::Green)
    } else if line.starts_with('-') {
        Style::new().fg(Color::Red)
    } else if line.starts_with("@@") {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    };
    Line::styled(line.to_owned(), style)
}

fn draw_detail(frame: &mut Frame, app: &App, area: Rect, scroll: u16, now: OffsetDateTime) {
    let Some(row) = app.selected_row() else {
        return;
    };
    let lines = detail_lines(row, now);
    let visible = area.height.saturating_sub(2);
    let max = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(visible);
    let title = format!(
        " proposal {} · {} ({}/{}) ",
        shown(&row.item.entry.proposal.id),
        shown(&row.item.bottle.identity),
        app.selected() + 1,
        app.rows().len()
    );
    let paragraph = Paragraph::new(lines)
        .block(Block::bordered().title(title))
        .wrap(Wrap { trim: false })
        .scroll((scroll.min(max), 0));
    frame.render_widget(paragraph, area);
}

fn draw_menu(
    frame: &mut Frame,
    main: Rect,
    choices: &[(String, state::EditTarget)],
    selected: usize,
) {
    let height = u16::try_from(choices.len() + 2).unwrap_or(u16::MAX);
    let area = main.centered(Constraint::Percentage(60), Constraint::Length(height));
    let items: Vec<ListItem> = choices
        .iter()
        .map(|(bottle, target)| ListItem::new(format!("{} — {}", shown(bottle), target.name())))
        .collect();
    let list = List::new(items)
        .block(Block::bordered().title(" edit a running bottle directly (no proposal) "))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_widget(Clear, area);
    frame.render_stateful_widget(list, area, &mut state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::state::Row as DashRow;
    use crate::supervise::{Item, SupervisedBottle};
    use bottle_supervise_queue::{Change, CurrentConfig, Entry, Proposal, Queue, Tool};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse(
            "2026-01-01T01:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age("2026-01-01T00:59:18Z", now()), "42s");
        assert_eq!(age("2026-01-01T00:55:00Z", now()), "5m");
        assert_eq!(age("2025-12-30T00:00:00Z", now()), "2d");
        assert_eq!(age("yesterday", now()), "?");
    }

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(140, 30)).unwrap();
        terminal.draw(|f| draw(f, app, now())).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    /// A proposal as a file written by something other than the sidecar could hold it.
    fn hostile_item(dir: &std::path::Path) -> Item {
        Item {
            bottle: SupervisedBottle {
                identity: "b1".into(),
                state_dir: dir.into(),
                queue: Queue::at(dir.join("q")),
            },
            entry: Entry {
                proposal: Proposal {
                    id: "1-a".into(),
                    tool: Tool::FirewallBlock,
                    justification:
                        "harmless\u{1b}[2J\u{1b}]0;title\u{7}\nline two\r\u{202e}txt.exe".into(),
                    created_at: "2026-01-01T00:55:00Z\u{9b}".into(),
                    change: Change::AllowHost {
                        url: "https://docs.example/\u{1b}[8m".into(),
                        host: "docs.example\u{2066}".into(),
                    },
                },
                decision: None,
            },
        }
    }

    #[test]
    fn list_and_detail_escape_what_a_terminal_would_act_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::default();
        app.set_rows(
            vec![DashRow::load(hostile_item(dir.path()))],
            vec!["b1".into()],
        );
        let unprintable = |screen: &str| -> Vec<char> {
            screen
                .chars()
                .filter(|&c| c != '\n' && bottle_supervise_queue::text::is_unprintable(c))
                .collect()
        };
        let list = screen(&app);
        // Positive control: the row is there.
        assert!(
            list.contains("1 pending") && list.contains("docs.example"),
            "{list}"
        );
        assert!(unprintable(&list).is_empty(), "{list:?}");
        assert!(list.contains("\\u2066"), "{list}");
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        let detail = screen(&app);
        assert!(detail.contains("harmless"), "{detail}");
        assert!(unprintable(&detail).is_empty(), "{detail:?}");
        for escape in [
            "harmless\\u001b[2J",
            "\\u0007",
            "\\u000d\\u202etxt.exe",
            "\\u009b",
        ] {
            assert!(detail.contains(escape), "{escape} in {detail}");
        }
    }

    #[test]
    fn list_and_detail_show_the_proposal_and_its_diff() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::at(dir.path().join("q"));
        queue
            .publish_current(&CurrentConfig {
                allow: vec!["api.example".into()],
                ..Default::default()
            })
            .unwrap();
        let item = Item {
            bottle: SupervisedBottle {
                identity: "b1".into(),
                state_dir: dir.path().into(),
                queue,
            },
            entry: Entry {
                proposal: Proposal {
                    id: "1-a".into(),
                    tool: Tool::FirewallBlock,
                    justification: "the docs live there".into(),
                    created_at: "2026-01-01T00:55:00Z".into(),
                    change: Change::allow_host_from_url("https://docs.example/x").unwrap(),
                },
                decision: None,
            },
        };
        let mut app = App::default();
        app.set_rows(vec![DashRow::load(item)], vec!["b1".into()]);
        let list = screen(&app);
        assert!(list.contains("1 pending"), "{list}");
        assert!(
            list.contains("firewall-block") && list.contains("allow docs.example"),
            "{list}"
        );
        assert!(list.contains("5m"), "{list}");
        assert!(list.contains("r reject"), "{list}");
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        let detail = screen(&app);
        assert!(detail.contains("the docs live there"), "{detail}");
        assert!(detail.contains("+- docs.example"), "{detail}");
        assert!(detail.contains("Esc back"), "{detail}");
        app.handle_key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE));
        assert!(screen(&app).contains("reason for the agent"));
    }
}
