//! `bottle dashboard`: every pending proposal of every bottle, refreshed from disk every second,
//! with approve / modify / reject and direct edits of a running bottle. `--once` prints the
//! pending proposals and exits (no terminal needed).
//!
//! The state and key handling live in [`crate::dashboard`]; this is the loop that reads the
//! queues, draws, and carries out actions with the [`Decider`] on a tokio runtime.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{self, Event};
use tokio::runtime::Runtime;

use super::supervise::{edit_in_editor, edit_text, render_list};
use crate::dashboard::terminal::Tui;
use crate::dashboard::{Action, App, EditTarget, ItemKey, Outcome, Row, edit, view};
use crate::docker::Engine;
use crate::home::Home;
use crate::sidecars::EditKind;
use crate::supervise::apply::{ApplyError, ApplyOptions, OperatorEdit};
use crate::supervise::{self, DecideError, Decided, Decider, SupervisedBottle};

/// Arguments of `dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Print the pending proposals (with their diffs) and exit.
    #[arg(long)]
    pub once: bool,
}

const REFRESH: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(200);

/// Run `bottle dashboard`.
pub fn run(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env()?;
    if args.once {
        print!("{}", render_list(&supervise::items(&home, true)));
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        "bottle dashboard needs a terminal; without one use `bottle dashboard --once` or \
         `bottle supervise list|approve|reject`"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let quit = Arc::new(AtomicBool::new(false));
    watch_signals(&runtime, &quit);
    let result = {
        let mut tui = Tui::enter()?;
        let mut runner = Runner {
            home: &home,
            runtime: &runtime,
            engine: None,
            tui: &mut tui,
        };
        runner.run(&quit)
        // The terminal is restored here, before any error is printed.
    };
    runtime.shutdown_background();
    result.map(|()| ExitCode::SUCCESS)
}

/// SIGTERM, SIGHUP and SIGINT end the loop (so the terminal is restored) instead of the process.
fn watch_signals(runtime: &Runtime, quit: &Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::interrupt(),
    ] {
        let quit = quit.clone();
        runtime.spawn(async move {
            if let Ok(mut stream) = signal(kind) {
                stream.recv().await;
                quit.store(true, Ordering::SeqCst);
            }
        });
    }
}

struct Runner<'a> {
    home: &'a Home,
    runtime: &'a Runtime,
    engine: Option<Engine>,
    tui: &'a mut Tui,
}

impl Runner<'_> {
    fn run(&mut self, quit: &AtomicBool) -> anyhow::Result<()> {
        let mut app = App::default();
        let mut refreshed: Option<Instant> = None;
        while !quit.load(Ordering::SeqCst) {
            if refreshed.is_none_or(|t| t.elapsed() >= REFRESH) {
                refresh(&mut app, self.home);
                refreshed = Some(Instant::now());
            }
            self.draw(&app)?;
            if std::env::var("BOTTLE_FAULT_AT").as_deref() == Ok("dashboard") {
                panic!("fault injected by BOTTLE_FAULT_AT (test hook)");
            }
            if !event::poll(TICK)? {
                continue;
            }
            let Event::Key(key) = event::read()? else {
                continue;
            };
            let Some(action) = app.handle_key(key) else {
                continue;
            };
            if action == Action::Quit {
                break;
            }
            app.working(working_message(&action));
            self.draw(&app)?;
            let outcome = self.execute(&app, action);
            app.finished(outcome);
            refreshed = None;
        }
        Ok(())
    }

    fn draw(&mut self, app: &App) -> std::io::Result<()> {
        let now = time::OffsetDateTime::now_utc();
        self.tui.terminal.draw(|f| view::draw(f, app, now))?;
        Ok(())
    }

    fn engine(&mut self) -> Result<Engine, String> {
        if let Some(engine) = &self.engine {
            return Ok(engine.clone());
        }
        let engine = self
            .runtime
            .block_on(Engine::connect())
            .map_err(|e| e.to_string())?;
        self.engine = Some(engine.clone());
        Ok(engine)
    }

    fn execute(&mut self, app: &App, action: Action) -> Outcome {
        match action {
            Action::Quit => Outcome::Done(String::new()),
            Action::Approve {
                key,
                change,
                options,
            } => self.approve(app, &key, change, options),
            Action::Modify { key } => {
                let Some(row) = app.find(&key) else {
                    return gone(&key);
                };
                let change = row.item.entry.proposal.change.clone();
                match self.with_editor(|| edit_in_editor(&change)) {
                    Ok(edited) => self.approve(app, &key, Some(edited), ApplyOptions::default()),
                    Err(e) => Outcome::Failed(format!("{e:#}")),
                }
            }
            Action::Reject { key, reason } => {
                let Some(row) = app.find(&key) else {
                    return gone(&key);
                };
                let engine = match self.engine() {
                    Ok(engine) => engine,
                    Err(e) => return Outcome::Failed(e),
                };
                let decider = Decider {
                    home: self.home,
                    engine: &engine,
                };
                match decider.reject(&row.item, &reason) {
                    Ok(decided) => done(&decided, &key),
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Action::Edit { bottle, target } => self.edit(&bottle, target),
            Action::ApplyEdit {
                bottle,
                edit,
                options,
            } => self.apply_edit(&bottle, edit, options),
        }
    }

    fn approve(
        &mut self,
        app: &App,
        key: &ItemKey,
        change: Option<bottle_supervise_queue::Change>,
        options: ApplyOptions,
    ) -> Outcome {
        let Some(row) = app.find(key) else {
            return gone(key);
        };
        let engine = match self.engine() {
            Ok(engine) => engine,
            Err(e) => return Outcome::Failed(e),
        };
        let decider = Decider {
            home: self.home,
            engine: &engine,
        };
        let identity = &row.item.bottle.identity;
        let result = self.runtime.block_on(async {
            let decided = decider
                .approve(&row.item, change.clone(), "", options)
                .await?;
            super::supervise::stop_for_resume(&engine, self.home, identity, &decided).await?;
            Ok(decided)
        });
        match result {
            Ok(decided) => done(&decided, key),
            Err(DecideError::Apply(ApplyError::NewTokenHost(message)))
                if !options.allow_new_token_hosts =>
            {
                Outcome::NewTokenHost {
                    message: format!("not applied: {message}"),
                    retry: Action::Approve {
                        key: key.clone(),
                        change,
                        options: ApplyOptions {
                            allow_new_token_hosts: true,
                        },
                    },
                }
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn edit(&mut self, identity: &str, target: EditTarget) -> Outcome {
        let Some(bottle) = find_bottle(self.home, identity) else {
            return Outcome::Failed(format!("bottle `{identity}` has no supervise queue"));
        };
        let targets = bottle.targets();
        let kind = match target {
            EditTarget::Routes => EditKind::Routes,
            EditTarget::Allow => EditKind::Allow,
        };
        if !targets.takes(kind) {
            let missing = kind.needs();
            return Outcome::Failed(format!(
                "bottle `{identity}` has no {missing}, so it has no {} to edit",
                target.name()
            ));
        }
        let current = match bottle.queue.current() {
            Ok(current) => current,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let template = edit::template(identity, target, &current);
        let text = match self.with_editor(|| edit_text("bottle-edit-", &template)) {
            Ok(text) => text,
            Err(e) => return Outcome::Failed(format!("{e:#}")),
        };
        match edit::parse(target, &text) {
            Ok(None) => Outcome::Done("edit cancelled; nothing was applied".into()),
            Ok(Some(edit)) if edit.is_noop(&current) => Outcome::Done(format!(
                "the {} are unchanged; nothing was applied",
                target.name()
            )),
            Ok(Some(edit)) => self.apply_edit(identity, edit, ApplyOptions::default()),
            Err(e) => Outcome::Failed(format!("{e}; nothing was applied")),
        }
    }

    fn apply_edit(&mut self, identity: &str, edit: OperatorEdit, options: ApplyOptions) -> Outcome {
        let Some(bottle) = find_bottle(self.home, identity) else {
            return Outcome::Failed(format!("bottle `{identity}` has no supervise queue"));
        };
        let engine = match self.engine() {
            Ok(engine) => engine,
            Err(e) => return Outcome::Failed(e),
        };
        let decider = Decider {
            home: self.home,
            engine: &engine,
        };
        let notes = "edited by the operator in the dashboard";
        let result = self
            .runtime
            .block_on(decider.edit(&bottle, &edit, notes, options));
        match result {
            Ok(decided) => Outcome::Done(format!(
                "applied the edit to {identity}; audit: {}",
                decided.audit_file.display()
            )),
            Err(DecideError::Apply(ApplyError::NewTokenHost(message)))
                if !options.allow_new_token_hosts =>
            {
                Outcome::NewTokenHost {
                    message: format!("not applied: {message}"),
                    retry: Action::ApplyEdit {
                        bottle: identity.to_owned(),
                        edit,
                        options: ApplyOptions {
                            allow_new_token_hosts: true,
                        },
                    },
                }
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// Run `f` (which runs `$EDITOR`) with the terminal given back, then take it again.
    fn with_editor<T>(&mut self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.tui.suspend();
        let result = f();
        self.tui.resume()?;
        result
    }
}

fn refresh(app: &mut App, home: &Home) {
    let rows = supervise::items(home, true)
        .into_iter()
        .map(Row::load)
        .collect();
    let bottles = supervise::bottles(home)
        .into_iter()
        .map(|b| b.identity)
        .collect();
    app.set_rows(rows, bottles);
}

fn find_bottle(home: &Home, identity: &str) -> Option<SupervisedBottle> {
    SupervisedBottle::find(&home.state_dir(), identity)
}

fn gone(key: &ItemKey) -> Outcome {
    Outcome::Failed(format!(
        "proposal {key} is no longer pending (decided elsewhere, or its bottle went away)"
    ))
}

fn done(decided: &Decided, key: &ItemKey) -> Outcome {
    let mut message = format!(
        "{} {key}; audit: {}",
        decided.status.as_str(),
        decided.audit_file.display()
    );
    if let Some(next) = &decided.next {
        message.push('\n');
        message.push_str(next);
    }
    Outcome::Done(message)
}

fn working_message(action: &Action) -> String {
    match action {
        Action::Approve { key, .. } => format!("applying {key}…"),
        Action::Modify { key } => format!("editing {key} in $EDITOR…"),
        Action::Reject { key, .. } => format!("rejecting {key}…"),
        Action::Edit { bottle, target } => {
            format!("editing the {} of {bottle} in $EDITOR…", target.name())
        }
        Action::ApplyEdit { bottle, .. } => format!("applying the edit to {bottle}…"),
        Action::Quit => String::new(),
    }
}
