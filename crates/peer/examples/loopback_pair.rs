//! Two `PeerConnection`s in one process: in-memory signalling, sockets on loopback, one
//! datagram each way. `cargo run -p floe-peer --example loopback_pair`

use floe_peer::{memory_pair, PeerConfig, PeerConnection, Side};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = PeerConfig::default();
    config.bind = vec!["127.0.0.1:0".parse()?];
    let ((a_tx, a_rx), (b_tx, b_rx)) = memory_pair();
    let (a, b) = tokio::join!(
        PeerConnection::connect(config.clone(), Side::Offer, a_tx, a_rx),
        PeerConnection::connect(config, Side::Answer, b_tx, b_rx),
    );
    let (mut a, mut b) = (a?, b?);
    println!("a selected {:?}", a.selected());
    a.send(b"hello from a").await?;
    b.send(b"hello from b").await?;
    let (from_a, from_b) = (b.recv().await, a.recv().await);
    println!("b got {from_a:?}, a got {from_b:?}");
    assert_eq!(from_a.as_deref(), Some(&b"hello from a"[..]));
    assert_eq!(from_b.as_deref(), Some(&b"hello from b"[..]));
    a.close().await;
    b.close().await;
    Ok(())
}
