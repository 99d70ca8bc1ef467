//! `gamesa exec -- CMD ARGS...`: runs a command and holds a performance signal on a
//! daemon connection for exactly its lifetime, the way `gamemoderun` does; with no daemon
//! reachable it warns once and runs the command all the same.

use std::process::{Command, ExitCode, ExitStatus};

use clap::{Args, ValueEnum};
use gamesa_proto::{Domain, SignalKind, Strength};
use gamesa_wire::{Client, Request, SignalRequest, client::Duplex};

use crate::send::{ConnectArgs, Door};

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    door: ConnectArgs,
    /// What the command is: the kind of the signal held while it runs.
    #[arg(long, value_enum, default_value_t = Profile::Game)]
    profile: Profile,
    /// The signal's strength, 0 to 1.
    #[arg(long, default_value_t = 0.9)]
    strength: f64,
    /// The command and its arguments (after `--`; `%command%` in a Steam launch option).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// What a command is, and the performance signal that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// A game: `game_started`.
    Game,
    /// An offline render: `render_started`.
    Render,
    /// A training job: `training_started`.
    Train,
}

impl Profile {
    fn kind(self) -> &'static str {
        match self {
            Profile::Game => "game_started",
            Profile::Render => "render_started",
            Profile::Train => "training_started",
        }
    }
}

pub fn main(args: ExecArgs) -> ExitCode {
    let held = match hold(&args) {
        Ok(held) => Some(held),
        Err(error) => {
            eprintln!("gamesa exec: no signal held ({error:#}); running the command anyway");
            None
        }
    };
    let (program, rest) = match args.command.split_first() {
        Some(split) => split,
        None => return ExitCode::from(2),
    };
    let status = Command::new(program).args(rest).status();
    // The connection closes here, after the command: the daemon releases the signal.
    drop(held);
    match status {
        Ok(status) => exit_code(status),
        Err(error) => {
            eprintln!("gamesa exec: cannot run `{program}`: {error}");
            // As a shell says: 127 not found, 126 found but not runnable.
            ExitCode::from(match error.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            })
        }
    }
}

/// The open connection that holds the signal; dropping it releases the signal.
fn hold(args: &ExecArgs) -> anyhow::Result<Door> {
    let request = Request::Signal(SignalRequest {
        kind: SignalKind::new(args.profile.kind())?,
        domain: Domain::Performance,
        strength: Strength::try_from(args.strength)?,
        ttl_ticks: None,
        hold: true,
    });
    let mut door = args.door.open()?;
    match &mut door {
        Door::Tcp(client) => send_held(client, &args.door, &request)?,
        Door::Unix(client) => send_held(client, &args.door, &request)?,
    }
    Ok(door)
}

fn send_held<S: Duplex>(
    client: &mut Client<S>,
    door: &ConnectArgs,
    request: &Request,
) -> anyhow::Result<()> {
    door.hello(client)??;
    client
        .call(request)?
        .into_result::<gamesa_wire::SignalResult>()?;
    Ok(())
}

/// The child's exit code, or 128 + the signal that killed it, as a shell reports it.
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(255)),
        (None, None) => ExitCode::FAILURE,
    }
}
