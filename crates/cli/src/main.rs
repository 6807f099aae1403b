//! `floe`: the command-line face of the floe ICE/STUN/TURN stack. Each subcommand is a
//! module of the floe-cli library; this file only parses arguments and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// floe: ICE, STUN and TURN tools.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. New ones (serve, relay, stun, nat, connect, demo) add a variant here
/// and a module in the library.
#[derive(Debug, Subcommand)]
enum Command {
    /// Netcat over ICE: connect to a peer on the fastest path, lines in, datagrams out.
    Connect(floe_cli::connect::ConnectArgs),
    /// Decode STUN, TURN and ChannelData messages from hex, raw bytes or a capture.
    Decode(floe_cli::decode::DecodeArgs),
    /// Watch two peers connect through simulated NATs (no network needed).
    Demo(floe_cli::demo::DemoArgs),
    /// Run a STUN/TURN server until interrupted.
    Serve(Box<floe_cli::serve::ServeArgs>),
    /// Allocate a relayed address on a TURN server and hold it.
    Relay(floe_cli::relay::RelayArgs),
    /// Ask a STUN server for this host's mapped address (one Binding exchange).
    Stun(floe_cli::stun::StunArgs),
    /// Discover the NAT's mapping, filtering and hairpinning behaviour (RFC 5780).
    Nat(floe_cli::nat::NatArgs),
    /// Print a TURN user's long-term keys as the redis-cli commands that add the user
    /// to a fleet's Redis (floe serve --redis).
    UserKey(floe_cli::user_key::UserKeyArgs),
}

fn main() -> ExitCode {
    // `floe serve` parses its own arguments: `--config FILE` expands into flags first,
    // and SIGHUP parses them again.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "serve") {
        return ExitCode::from(floe_cli::serve::main(raw.get(2..).unwrap_or_default()));
    }
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Decode(args) => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            floe_cli::decode::run(
                &args,
                &mut stdin.lock(),
                &mut std::io::BufWriter::new(stdout.lock()),
                &mut std::io::stderr(),
            )
        }
        Command::Connect(args) => floe_cli::connect::run(&args),
        Command::Demo(args) => floe_cli::demo::run(&args),
        Command::Serve(args) => floe_cli::serve::run(&args),
        Command::Relay(args) => floe_cli::relay::run(&args),
        Command::Stun(args) => floe_cli::stun::run(&args),
        Command::Nat(args) => floe_cli::nat::run(&args),
        Command::UserKey(args) => floe_cli::user_key::run(
            &args,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
        ),
    };
    ExitCode::from(status)
}
