//! `gamesa top`: a live terminal view of a running daemon over ingress — each
//! component's limit, draw, temperature and headroom, the market of one resource, the
//! split of the node's power cap, live signals and the last vetoes — that survives the
//! daemon's restarts.
//!
//! The terminal is put back (raw mode off, main screen) on every way out: `q`, an
//! error, SIGINT/SIGTERM, and a panic (ratatui's panic hook). A terminal that hangs up
//! needs nothing put back: SIGHUP ends top at once, and should it not come, top stops
//! when it sees the terminal gone.

mod link;
mod model;
mod terminal;
mod view;

use std::{
    io::IsTerminal as _,
    os::fd::AsFd as _,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, TryRecvError},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use ratatui::{
    DefaultTerminal,
    crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers},
};

use self::{
    model::{Model, Update},
    terminal::{Input, wait_for_input},
};
use super::send::ConnectArgs;

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    door: ConnectArgs,
}

/// At most this many redraws a second follow what was read.
const FRAME_GAP: Duration = Duration::from_millis(250);
/// The screen is redrawn at least this often, so that its clocks (how long since the
/// connection was lost) move while nothing is read.
const REFRESH: Duration = Duration::from_secs(1);
/// The longest top waits for a key before it looks at what was read.
const WAKE: Duration = Duration::from_millis(250);

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Quit,
    Pause,
    NextResource,
    PreviousResource,
}

fn action_for(key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(Action::Quit),
        KeyCode::Char('q') | KeyCode::Esc => Some(Action::Quit),
        KeyCode::Char('p' | ' ') => Some(Action::Pause),
        KeyCode::Char('r') | KeyCode::Tab => Some(Action::NextResource),
        KeyCode::Char('R') | KeyCode::BackTab => Some(Action::PreviousResource),
        _ => None,
    }
}

pub fn main(args: TopArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gamesa top: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: TopArgs) -> anyhow::Result<()> {
    args.door.check_credentials()?;
    anyhow::ensure!(
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
        "the standard input and output must be a terminal; `gamesa send watch` prints \
         events as lines"
    );
    // In raw mode Ctrl-C is a key, but a signal from elsewhere must also end the loop,
    // so that the terminal is put back. SIGHUP keeps its default: the terminal is gone.
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&quit))
            .with_context(|| format!("handling signal {signal}"))?;
    }
    let (updates_in, updates) = mpsc::channel();
    link::spawn(args.door, updates_in).context("starting the connection's thread")?;
    // Sets the panic hook that puts the terminal back, then enters raw mode and the
    // alternate screen.
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let watched = watch(&mut terminal, &updates, &quit);
    let restored = ratatui::try_restore().context("putting the terminal back");
    watched.and(restored)
}

/// Reads keys and updates and redraws until asked to quit.
fn watch(
    terminal: &mut DefaultTerminal,
    updates: &Receiver<Update>,
    quit: &AtomicBool,
) -> anyhow::Result<()> {
    let mut model = Model::new();
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    let mut urgent = false;
    while !quit.load(Ordering::Relaxed) {
        let now = Instant::now();
        let due = match last_draw {
            None => true,
            Some(drawn) => {
                let since = now.saturating_duration_since(drawn);
                urgent || (dirty && since >= FRAME_GAP) || since >= REFRESH
            }
        };
        if due {
            terminal
                .draw(|frame| view::render(frame, &model, now))
                .context("drawing")?;
            last_draw = Some(now);
            dirty = false;
            urgent = false;
        }
        let stdin = std::io::stdin();
        match wait_for_input(stdin.as_fd(), WAKE).context("waiting for a key")? {
            Input::Gone => anyhow::bail!("the terminal went away"),
            Input::Ready | Input::Idle => {}
        }
        // Keys typed, and resizes crossterm has seen (it hears SIGWINCH itself): all of
        // them, not one per wake. The terminal was there an instant ago.
        if event::poll(Duration::ZERO).context("reading the terminal")? {
            loop {
                let changed = match event::read().context("reading the terminal")? {
                    Event::Key(key) => match action_for(key) {
                        Some(Action::Quit) => return Ok(()),
                        Some(Action::Pause) => {
                            model.toggle_pause();
                            true
                        }
                        Some(Action::NextResource) => {
                            model.next_resource();
                            true
                        }
                        Some(Action::PreviousResource) => {
                            model.previous_resource();
                            true
                        }
                        None => false,
                    },
                    Event::Resize(..) => true,
                    _ => false,
                };
                urgent |= changed;
                if !event::poll(Duration::ZERO).context("reading the terminal")? {
                    break;
                }
            }
        }
        loop {
            match updates.try_recv() {
                Ok(update) => dirty |= model.apply(update, Instant::now()),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    anyhow::bail!("the connection's thread stopped")
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Option<Action> {
        action_for(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn keys_map_to_actions() {
        let none = KeyModifiers::NONE;
        assert_eq!(key(KeyCode::Char('q'), none), Some(Action::Quit));
        assert_eq!(key(KeyCode::Esc, none), Some(Action::Quit));
        assert_eq!(
            key(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Action::Quit)
        );
        assert_eq!(key(KeyCode::Char('c'), none), None);
        assert_eq!(key(KeyCode::Char('p'), none), Some(Action::Pause));
        assert_eq!(key(KeyCode::Char(' '), none), Some(Action::Pause));
        assert_eq!(key(KeyCode::Char('r'), none), Some(Action::NextResource));
        assert_eq!(key(KeyCode::Tab, none), Some(Action::NextResource));
        assert_eq!(
            key(KeyCode::BackTab, KeyModifiers::SHIFT),
            Some(Action::PreviousResource)
        );
        let mut release = KeyEvent::new(KeyCode::Char('q'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(action_for(release), None);
    }
}
