//! [`TurnDriver`]: a sans-IO [`floe_turn::client::Client`] on a [`TurnSocket`].

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use floe_turn::client::{Client, Event};
use floe_turn::Transmit;

use super::TurnSocket;

/// The largest read: a UDP datagram whole, or a good slice of a stream.
const READ_BUFFER: usize = 64 * 1024;

/// Why a [`TurnDriver`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Sending to the server failed.
    #[error("send failed: {0}")]
    Send(io::Error),
    /// Receiving failed. On UDP this is per datagram (an ICMP error on a connected
    /// socket, say) and the driver can go on; on a stream the connection is broken.
    #[error("receive error: {0}")]
    Receive(io::Error),
    /// The server closed the stream (the allocation is gone with it, RFC 8656 §3.1).
    #[error("the server closed the connection")]
    Closed,
    /// The client could not encode the data (no allocation, no permission for the
    /// peer, too large...).
    #[error(transparent)]
    Encode(floe_turn::Error),
    /// The stream's framing broke (RFC 8489 §6.2.2, RFC 8656 §12.5); close it.
    #[error("corrupt stream from the server: {0}")]
    Framing(floe_turn::Error),
}

/// Drives one TURN [`Client`] over a [`TurnSocket`] on tokio: sends what the client
/// queues, feeds it what the server sends and wakes it at its timers.
///
/// The loop a caller writes (`floe relay` is one):
///
/// ```no_run
/// # async fn run(mut driver: floe_peer::turn::TurnDriver) -> Result<(), floe_peer::turn::DriverError> {
/// driver.client_mut().allocate(std::time::Instant::now());
/// loop {
///     driver.flush().await?;
///     while let Some(event) = driver.client_mut().poll_event() {
///         // React (create permissions, bind channels...), then flush again.
///         println!("{event:?}");
///     }
///     driver.flush().await?;
///     // Cancel-safe: can sit in a select! with the application's own futures.
///     driver.wait(|peer, data| println!("{} bytes from {peer}", data.len())).await?;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct TurnDriver {
    client: Client,
    socket: TurnSocket,
    buf: Vec<u8>,
}

impl TurnDriver {
    /// Drives `client` over `socket` (the client's configured transport must match:
    /// [`Transport::Udp`](floe_turn::Transport::Udp) for a datagram socket, `Tcp` or
    /// `Tls` for a stream).
    pub fn new(client: Client, socket: TurnSocket) -> TurnDriver {
        TurnDriver {
            client,
            socket,
            buf: vec![0u8; READ_BUFFER],
        }
    }

    /// The client, to read its state.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client, to call it (allocate, create permissions, poll events...); flush
    /// afterwards.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The socket.
    pub fn socket(&self) -> &TurnSocket {
        &self.socket
    }

    /// The client and the socket back.
    pub fn into_parts(self) -> (Client, TurnSocket) {
        (self.client, self.socket)
    }

    /// Sends every transmit the client has queued. Not cancel-safe (a stream write may
    /// be cut short): await it to the end.
    pub async fn flush(&mut self) -> Result<bool, DriverError> {
        let mut sent = false;
        while let Some(t) = self.client.poll_transmit() {
            self.transmit(&t).await?;
            sent = true;
        }
        Ok(sent)
    }

    /// Sends one transmit of the client's.
    pub async fn transmit(&mut self, t: &Transmit) -> Result<(), DriverError> {
        self.socket
            .send(&t.data, t.destination)
            .await
            .map_err(DriverError::Send)
    }

    /// Sends `data` to `peer` through the relay (ChannelData on a bound channel, else a
    /// Send indication, RFC 8656 §10 and §12).
    pub async fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Result<(), DriverError> {
        let t = self
            .client
            .send_to(peer, data)
            .map_err(DriverError::Encode)?;
        self.transmit(&t).await
    }

    /// Waits for the client's next timer or the next read from the server, whichever
    /// comes first, and hands it to the client; data relayed from peers goes to
    /// `on_data`, borrowed. Cancel-safe: nothing is lost if another branch of a
    /// `select!` wins. Flush afterwards: the client may have queued transmits and
    /// events.
    pub async fn wait(
        &mut self,
        on_data: impl FnMut(SocketAddr, &[u8]),
    ) -> Result<(), DriverError> {
        let timer = self
            .client
            .poll_timeout()
            .map(tokio::time::Instant::from_std);
        let read = tokio::select! {
            () = sleep_until(timer) => None,
            r = self.socket.recv(&mut self.buf) => Some(r),
        };
        let now = Instant::now();
        let n = match read {
            None => {
                self.client.handle_timeout(now);
                return Ok(());
            }
            Some(r) => r.map_err(DriverError::Receive)?,
        };
        let bytes = self.buf.get(..n).unwrap_or_default();
        if self.socket.is_stream() {
            if n == 0 {
                return Err(DriverError::Closed);
            }
            self.client
                .handle_stream_receive(now, bytes, on_data)
                .map_err(DriverError::Framing)
        } else {
            self.client.handle_receive(now, bytes, on_data);
            Ok(())
        }
    }

    /// The next event of the client's ([`Client::poll_event`]).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.client.poll_event()
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use floe_turn::client::ClientConfig;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::turn::{connect_stream, StreamOptions};

    /// A driver on a TCP connection to a listener that does `server` with its end.
    async fn over_tcp<F, Fut>(server: F) -> TurnDriver
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            server(s).await;
        });
        let (stream, local) = connect_stream(addr, &StreamOptions::default())
            .await
            .unwrap();
        let config = ClientConfig::new(local, addr, floe_turn::Transport::Tcp, "u", "p");
        TurnDriver::new(Client::new(config, 1), TurnSocket::Stream(stream))
    }

    async fn wait_for_error(d: &mut TurnDriver) -> DriverError {
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Err(e) = d.wait(|_, _| {}).await {
                    return e;
                }
            }
        });
        waited.await.expect("an error within 5 s")
    }

    #[tokio::test]
    async fn a_stream_the_server_closes_is_a_closed_error() {
        // Nothing sent first: a close after unread bytes would be a reset instead.
        let mut d = over_tcp(|s| async move { drop(s) }).await;
        assert!(matches!(wait_for_error(&mut d).await, DriverError::Closed));
    }

    #[tokio::test]
    async fn garbage_on_the_stream_is_a_framing_error() {
        let mut d = over_tcp(|mut s| async move {
            // Not STUN (no magic cookie), not ChannelData (0x40-0x7f): RFC 7983 says
            // neither, and the framing cannot be trusted past it.
            s.write_all(&[0xff; 64]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .await;
        assert!(matches!(
            wait_for_error(&mut d).await,
            DriverError::Framing(_)
        ));
    }
}
