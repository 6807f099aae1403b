//! `floe relay --tcp-connect PEER` / `--tcp-accept`: TURN-TCP (RFC 6062) from the
//! command line, netcat through a TURN server's TCP relay. Standard input goes to the
//! peer and the peer's bytes to standard output (or back to the peer with `--echo`).
//! The JSON line on stdout (`{"relayed":..,"tcp":true}`) comes first, once allocated.

use std::time::Duration;

use floe_peer::turn::{TcpAllocation, TcpRelayConfig, TurnStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::relay::{tls_connect, RelayArgs, TurnTransport};

/// Runs the TURN-TCP mode; returns the exit status.
pub(crate) async fn run(args: &RelayArgs) -> u8 {
    let tls = match args.transport {
        TurnTransport::Tls => match tls_connect(args) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("floe relay: {e}");
                return 2;
            }
        },
        TurnTransport::Tcp => None,
        TurnTransport::Udp => {
            eprintln!("floe relay: TURN-TCP needs --transport tcp or tls (RFC 6062 §4.1)");
            return 2;
        }
    };
    let config = TcpRelayConfig {
        server: args.server,
        tls,
        username: args.user.clone(),
        password: args.password.clone(),
    };
    let mut alloc = match TcpAllocation::allocate(config).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("floe relay: allocation failed: {e}");
            return 1;
        }
    };
    for peer in &args.peers {
        if let Err(e) = alloc.permit(peer.ip()).await {
            eprintln!("floe relay: permission for {}: {e}", peer.ip());
            return 1;
        }
    }
    println!(
        "{}",
        serde_json::json!({ "relayed": alloc.relayed().to_string(), "tcp": true })
    );
    eprintln!("floe relay: TCP relay at {}", alloc.relayed());
    let stream = match args.tcp_connect {
        Some(peer) => alloc.connect(peer).await.map(|s| (peer, s)),
        None => alloc.accept().await,
    };
    let (peer, stream) = match stream {
        Ok(x) => x,
        Err(e) => {
            eprintln!("floe relay: TCP connection: {e}");
            return 1;
        }
    };
    eprintln!("floe relay: connected to {peer} through the relay");
    let work = pipe(stream, args.echo);
    match args.duration {
        Some(s) => {
            let _ = tokio::time::timeout(Duration::from_secs_f64(s.max(0.0)), work).await;
        }
        None => work.await,
    }
    0
}

/// Stdin to the stream and the stream to stdout, or the stream back to itself.
async fn pipe(stream: Box<dyn TurnStream>, echo: bool) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    if echo {
        let _ = tokio::io::copy(&mut rd, &mut wr).await;
        return;
    }
    let down = async {
        let mut out = tokio::io::stdout();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let Some(data) = buf.get(..n) else { return };
            if out.write_all(data).await.is_err() || out.flush().await.is_err() {
                return;
            }
        }
    };
    // Input ends: half-close, and keep reading until the peer closes.
    let up = async {
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut wr).await;
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = down => {}
        () = up => {}
    }
}
