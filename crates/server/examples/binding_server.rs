//! Starts a floe STUN/TURN server on loopback and asks it, over a plain UDP socket, for
//! the address it sees (a STUN Binding request, RFC 8489 §6).
//! `cargo run -p floe-server --example binding_server`

use std::net::UdpSocket;
use std::time::Duration;

use floe_server::{spawn, ServerOptions};
use floe_stun::attributes::XorMappedAddress;
use floe_stun::{Message, MessageBuilder, MessageType, TransactionId};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse()?);
    opts.turn.users.insert("alice".into(), "secret".into());
    let server = spawn(opts).await?;
    let addr = server.udp_addrs()[0];
    println!("floe server on {addr}");

    let answer = tokio::task::spawn_blocking(
        move || -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = [0u8; 548];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::BINDING_REQUEST,
                TransactionId([9; 12]),
            )?;
            b.add_fingerprint()?;
            socket.send_to(b.finish(), addr)?;
            let mut resp = [0u8; 1500];
            let n = socket.recv(&mut resp)?;
            let msg = Message::parse(&resp[..n])?;
            let mapped = msg.get::<XorMappedAddress>()?.map(|m| m.0);
            Ok((socket.local_addr()?, mapped))
        },
    )
    .await?
    .map_err(|e| e.to_string())?;
    println!("our socket {}, the server saw {:?}", answer.0, answer.1);
    assert_eq!(Some(answer.0), answer.1);
    server.shutdown().await;
    Ok(())
}
