//! floe-ice's mDNS responder and resolver (`floe_ice::mdns`, host names for ICE
//! candidates) on hostile datagrams. The input is a series of records: a byte of flags
//! (family, source port 5353 or not, whether to resolve a name first), a time step, and a
//! length-prefixed datagram. Properties, beyond no panic:
//! - every datagram sent parses back as DNS, and answers hold only the published name
//!   and address, never anything taken from the input;
//! - answers go to the mDNS group or to the sender of the datagram just handled;
//! - unicast answers stay within 20 a second, multicast ones once a second per record;
//! - names resolve only when asked for, each at most once per asking, and the pending
//!   resolutions stay bounded (every one ends by its timeout).
#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_ice::mdns::{wire, Mdns, MdnsEvent, Socket, GROUP_V4, GROUP_V6, MDNS_PORT};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "8b5a9c3e-1d2f-4a6b-8c7d-9e0f1a2b3c4d.local";
const NAME6: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0.local";

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let ours: IpAddr = "192.168.7.7".parse().unwrap();
    let ours6: IpAddr = "fd00::7".parse().unwrap();
    let mut m = Mdns::new(1);
    assert!(m.publish(NAME, ours));
    assert!(m.publish(NAME6, ours6));
    let mut asked: HashMap<String, u32> = HashMap::new();
    let mut unicast_times: Vec<Instant> = Vec::new();
    let mut multicast_times: HashMap<IpAddr, Instant> = HashMap::new();
    let mut rest = data;
    while let [flags, step, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(*step) * 4);
        m.handle_timeout(now);
        if flags & 0x08 != 0 {
            // Ask for a name made of the datagram's first bytes (often unwritable).
            let label: String = datagram
                .iter()
                .take(8)
                .map(|b| char::from(b'a' + b % 26))
                .collect();
            let name = if label.is_empty() {
                "x.local".to_owned()
            } else {
                format!("{label}.local")
            };
            if !asked.contains_key(&name.to_ascii_lowercase()) {
                *asked.entry(name.to_ascii_lowercase()).or_default() += 1;
                m.resolve(now, &name);
            }
        }
        let port = if flags & 1 == 0 {
            MDNS_PORT
        } else {
            40000 + u16::from(*step)
        };
        let from: SocketAddr = if flags & 2 == 0 {
            SocketAddr::new("192.168.7.20".parse().unwrap(), port)
        } else {
            SocketAddr::new("fe80::20".parse().unwrap(), port)
        };
        m.handle_receive(now, from, datagram);
        while let Some(t) = m.poll_transmit() {
            let msg = wire::parse(&t.payload).expect("what floe sends parses");
            match t.socket {
                Socket::Querier => {
                    assert!(!msg.response);
                    assert!(
                        t.destination.ip() == IpAddr::V4(GROUP_V4)
                            || t.destination.ip() == IpAddr::V6(GROUP_V6)
                    );
                    for q in &msg.questions {
                        assert!(
                            asked.contains_key(&q.name.to_ascii_lowercase()),
                            "a query for {} never asked",
                            q.name
                        );
                    }
                }
                Socket::Responder => {
                    assert!(msg.response);
                    assert!(!msg.answers.is_empty());
                    for a in &msg.answers {
                        let ok = (a.name == NAME && a.address == Some(ours))
                            || (a.name == NAME6 && a.address == Some(ours6));
                        assert!(ok, "answered {a:?}");
                    }
                    let group = t.destination.ip().is_multicast();
                    if group {
                        assert_eq!(t.destination.port(), MDNS_PORT);
                        assert_eq!(from.port(), MDNS_PORT);
                        for a in &msg.answers {
                            let ip = a.address.unwrap();
                            if let Some(last) = multicast_times.insert(ip, now) {
                                assert!(
                                    now.duration_since(last) >= Duration::from_secs(1),
                                    "multicast again within a second"
                                );
                            }
                        }
                    } else {
                        assert_eq!(t.destination, from, "a unicast answer to someone else");
                        unicast_times.push(now);
                        let recent = unicast_times
                            .iter()
                            .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
                            .count();
                        assert!(recent <= 40, "{recent} unicast answers within a second");
                    }
                }
            }
        }
        while let Some(MdnsEvent::Resolved { name, .. }) = m.poll_event() {
            let key = name.to_ascii_lowercase();
            let n = asked
                .get_mut(&key)
                .unwrap_or_else(|| panic!("{name} resolved but never asked"));
            assert!(*n > 0, "{name} resolved twice");
            *n -= 1;
        }
    }
    // Every pending resolution ends by its timeout.
    while let Some(t) = m.poll_timeout() {
        assert!(t <= now + Duration::from_secs(4));
        now = t.max(now);
        m.handle_timeout(now);
        while m.poll_transmit().is_some() {}
        while let Some(MdnsEvent::Resolved { name, .. }) = m.poll_event() {
            let n = asked.get_mut(&name.to_ascii_lowercase()).unwrap();
            assert!(*n > 0);
            *n -= 1;
        }
    }
    assert!(
        asked.values().all(|n| *n == 0),
        "a resolution never ended: {asked:?}"
    );
});
