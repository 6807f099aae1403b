//! Watching the host's addresses for continual gathering: a laptop moving from Wi-Fi to
//! Ethernet, a VPN coming up, DHCP handing out a new address. The interfaces are read
//! again every [`PeerConfig::address_watch`](crate::PeerConfig::address_watch) interval
//! (`getifaddrs`, portable; a netlink subscription would notice sooner) and the
//! differences go to the driver, which opens a socket on a new address and registers it
//! with the agent (`Agent::add_host`), or withdraws a vanished one (`Agent::remove_host`).
//! The agent does the rest: pairs from the new address are checked, a path that died is
//! recovered, and an address the peer cannot learn otherwise leads to an ICE restart.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::interfaces::{local_addresses, InterfacePolicy};

/// The watcher's settings, and how sockets on new addresses are opened.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    pub(crate) policy: InterfacePolicy,
    pub(crate) interval: Duration,
    pub(crate) port_range: Option<std::ops::RangeInclusive<u16>>,
    pub(crate) dscp: Option<u8>,
}

/// A change of the host's usable addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressChange {
    /// A new usable address, with its interface rank (RFC 8421 local preference).
    Added(IpAddr, usize),
    /// An address went away.
    Removed(IpAddr),
}

/// What changed from `known` to `now`; `known` becomes `now`'s addresses.
pub(crate) fn diff(known: &mut Vec<IpAddr>, now: &[(IpAddr, usize)]) -> Vec<AddressChange> {
    let mut changes: Vec<AddressChange> = known
        .iter()
        .filter(|ip| !now.iter().any(|(n, _)| n == *ip))
        .map(|ip| AddressChange::Removed(*ip))
        .collect();
    changes.extend(
        now.iter()
            .filter(|(ip, _)| !known.contains(ip))
            .map(|(ip, rank)| AddressChange::Added(*ip, *rank)),
    );
    *known = now.iter().map(|(ip, _)| *ip).collect();
    changes
}

/// Polls the interfaces every `interval` and sends each change, starting from `known`
/// (the addresses the connection opened sockets on). Ends when the driver is gone.
pub(crate) fn spawn(
    policy: InterfacePolicy,
    interval: Duration,
    mut known: Vec<IpAddr>,
    tx: mpsc::Sender<AddressChange>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = tokio::task::spawn_blocking({
                let policy = policy.clone();
                move || local_addresses(&policy)
            })
            .await
            .unwrap_or_default();
            for change in diff(&mut known, &now) {
                tracing::info!(?change, "local address change");
                if tx.send(change).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_move_from_one_network_to_another_is_a_removal_and_an_addition() {
        let mut known = vec![ip("192.168.1.2"), ip("2001:db8::2")];
        assert!(diff(
            &mut known,
            &[(ip("192.168.1.2"), 0), (ip("2001:db8::2"), 0)]
        )
        .is_empty());
        let changes = diff(&mut known, &[(ip("2001:db8::2"), 0), (ip("10.20.0.2"), 1)]);
        assert_eq!(
            changes,
            [
                AddressChange::Removed(ip("192.168.1.2")),
                AddressChange::Added(ip("10.20.0.2"), 1)
            ]
        );
        assert_eq!(known, [ip("2001:db8::2"), ip("10.20.0.2")]);
        assert!(diff(&mut known, &[(ip("2001:db8::2"), 0), (ip("10.20.0.2"), 1)]).is_empty());
    }
}
