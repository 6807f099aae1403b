//! The log line for each event of the TURN core ([`floe_turn::server::Event`]): one
//! `info` line per change in an allocation's life, with the same fields each time (user,
//! 5-tuple, relayed addresses, bytes each way) and the change's own. Usernames are logged
//! (they are authenticated, so the operator's or their REST issuer's); passwords, keys and
//! nonces never are, and the events do not carry them.

use std::fmt;
use std::net::SocketAddr;

use floe_turn::server::{AllocationChange, AllocationEvent, Event, Server};

use crate::relays::SocketRelays;

/// Logs every event the core has queued.
pub(crate) fn log_all(server: &mut Server<SocketRelays>) {
    while let Some(event) = server.poll_event() {
        log(&event);
    }
}

fn log(event: &Event) {
    match event {
        Event::Allocation(a) => log_allocation(a),
        other => tracing::debug!(?other, "TURN core event"),
    }
}

/// One lifecycle line: the shared fields, then the change's own, then the message.
macro_rules! lifecycle {
    ($a:expr, $msg:literal $(, $field:ident = $value:expr)*) => {
        tracing::info!(
            user = %$a.username,
            transport = %$a.five_tuple.transport.as_str(),
            client = %$a.five_tuple.client,
            server = %$a.five_tuple.server,
            relayed = %Relayed(&$a.relayed),
            bytes_to_peers = $a.bytes_to_peers,
            bytes_to_clients = $a.bytes_to_clients,
            $($field = $value,)*
            $msg
        )
    };
}

fn log_allocation(a: &AllocationEvent) {
    match a.change {
        AllocationChange::Created(l) => {
            lifecycle!(a, "allocation created", lifetime_s = l.as_secs());
        }
        AllocationChange::Refreshed(l) => {
            lifecycle!(a, "allocation refreshed", lifetime_s = l.as_secs());
        }
        AllocationChange::Expired => lifecycle!(a, "allocation expired"),
        AllocationChange::Deleted(reason) => {
            lifecycle!(
                a,
                "allocation deleted",
                reason = tracing::field::display(reason)
            );
        }
        other => tracing::info!(user = %a.username, ?other, "allocation changed"),
    }
}

/// Relayed addresses, comma-separated.
struct Relayed<'a>(&'a [SocketAddr]);

impl fmt::Display for Relayed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}
