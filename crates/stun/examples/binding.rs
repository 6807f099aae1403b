//! An ICE connectivity check and its answer, built, parsed and verified with floe-stun
//! (RFC 8489 §6, RFC 8445 §7.1). `cargo run -p floe-stun --example binding`

use std::net::SocketAddr;

use floe_stun::attributes::{IceControlling, Priority, Username, XorMappedAddress};
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

fn main() -> Result<(), floe_stun::Error> {
    // The client: a check signed with the peer's ice-pwd (short-term credential).
    let key = IntegrityKey::short_term("remote-ice-pwd-22chars")?;
    let tid = TransactionId([7; 12]); // real code: TransactionId(rng.gen())
    let mut buf = [0u8; 1280];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
    b.add(&Username("rfrag:lfrag"))?
        .add(&Priority(1_853_824_767))?
        .add(&IceControlling(42))?;
    b.add_message_integrity(&key)?.add_fingerprint()?;
    let request = b.finish().to_vec();
    println!("request: {} bytes", request.len());

    // The server: parse (FINGERPRINT checked), verify, answer with the address it saw.
    let req = Message::parse(&request)?;
    req.verify(&key)?;
    let seen: SocketAddr = "192.0.2.1:32853".parse().expect("an address");
    let mut out = [0u8; 1280];
    let mut b = MessageBuilder::new(&mut out, MessageType::BINDING_SUCCESS, req.transaction_id())?;
    b.add(&XorMappedAddress(seen))?
        .add_message_integrity(&key)?
        .add_fingerprint()?;
    let response = b.finish();

    // The client again: the answer is authentic and says where the request came from.
    let resp = Message::parse(response)?;
    resp.verify(&key)?;
    let mapped = resp.get::<XorMappedAddress>()?;
    println!(
        "response: {} bytes, mapped address {mapped:?}",
        response.len()
    );
    assert_eq!(mapped, Some(XorMappedAddress(seen)));
    Ok(())
}
