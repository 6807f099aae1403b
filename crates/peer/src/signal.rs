//! Signalling: how two peers swap credentials and candidates. It is the application's;
//! floe defines the messages, a small trait pair, an in-memory channel for tests and JSON
//! lines over any byte stream (what `floe connect` speaks, documented in docs/connect.md).

use std::future::Future;
use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// One signalling message (JSON: `{"type":"offer",...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SignalMessage {
    /// The offerer's description; the offerer is the controlling agent.
    Offer(Description),
    /// The answerer's description.
    Answer(Description),
    /// A trickled candidate (RFC 8838), an RFC 8839 `candidate:` line.
    Candidate {
        /// The line.
        candidate: String,
    },
    /// No more candidates from the sender (RFC 8838 §4.4).
    EndOfCandidates,
    /// The sender's candidates whose address went away (floe's extension: trickle ICE has
    /// no such message). The receiver stops checking them, and recovers at once if its
    /// path used one. JSON: `{"type":"remove-candidates","candidates":["candidate:..."]}`.
    RemoveCandidates {
        /// The withdrawn `candidate:` lines, as first signalled.
        candidates: Vec<String>,
    },
}

/// Credentials and the candidates known so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// ice-ufrag.
    pub ufrag: String,
    /// ice-pwd.
    pub pwd: String,
    /// Whether the sender is an ICE-lite agent (RFC 8445 §2.5; the other side then
    /// controls).
    #[serde(default)]
    pub lite: bool,
    /// ICE options (RFC 8839 `ice-options`): `renomination` when the sender accepts and
    /// sends renominations (NOMINATION attribute, as libwebrtc and pion do).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_options: Vec<String>,
    /// `candidate:` lines.
    #[serde(default)]
    pub candidates: Vec<String>,
}

/// Sends signalling messages.
pub trait SignalSender: Send + 'static {
    /// Sends one message.
    fn send(&mut self, msg: SignalMessage) -> impl Future<Output = io::Result<()>> + Send;
}

/// Receives signalling messages; `Ok(None)` when the channel closed.
pub trait SignalReceiver: Send + 'static {
    /// The next message.
    fn recv(&mut self) -> impl Future<Output = io::Result<Option<SignalMessage>>> + Send;
}

/// One end of an in-memory signalling channel.
#[derive(Debug)]
pub struct MemorySender(mpsc::UnboundedSender<SignalMessage>);

/// The other half of an in-memory end.
#[derive(Debug)]
pub struct MemoryReceiver(mpsc::UnboundedReceiver<SignalMessage>);

/// Two connected in-memory ends: `(a_tx, a_rx), (b_tx, b_rx)`; what A sends, B receives.
pub fn memory_pair() -> (
    (MemorySender, MemoryReceiver),
    (MemorySender, MemoryReceiver),
) {
    let (a_tx, b_rx) = mpsc::unbounded_channel();
    let (b_tx, a_rx) = mpsc::unbounded_channel();
    (
        (MemorySender(a_tx), MemoryReceiver(a_rx)),
        (MemorySender(b_tx), MemoryReceiver(b_rx)),
    )
}

impl SignalSender for MemorySender {
    async fn send(&mut self, msg: SignalMessage) -> io::Result<()> {
        self.0
            .send(msg)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "signalling peer gone"))
    }
}

impl SignalReceiver for MemoryReceiver {
    async fn recv(&mut self) -> io::Result<Option<SignalMessage>> {
        Ok(self.0.recv().await)
    }
}

/// JSON lines over a writer: one message per line.
#[derive(Debug)]
pub struct JsonLinesSender<W>(pub W);

/// JSON lines from a reader. Lines are bounded (64 KiB); a malformed line is an error.
#[derive(Debug)]
pub struct JsonLinesReceiver<R>(BufReader<R>);

impl<R: AsyncRead + Unpin> JsonLinesReceiver<R> {
    /// Reads messages from `r`.
    pub fn new(r: R) -> JsonLinesReceiver<R> {
        JsonLinesReceiver(BufReader::new(r))
    }
}

/// Longest signalling line accepted.
pub const MAX_LINE: usize = 64 * 1024;

impl<W: AsyncWrite + Unpin + Send + 'static> SignalSender for JsonLinesSender<W> {
    async fn send(&mut self, msg: SignalMessage) -> io::Result<()> {
        let mut line = serde_json::to_vec(&msg).map_err(io::Error::other)?;
        line.push(b'\n');
        self.0.write_all(&line).await?;
        self.0.flush().await
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> SignalReceiver for JsonLinesReceiver<R> {
    async fn recv(&mut self) -> io::Result<Option<SignalMessage>> {
        loop {
            let mut line = Vec::new();
            let n = (&mut self.0)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Ok(None);
            }
            if line.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "signalling line longer than 64 KiB",
                ));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&line).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("malformed signalling message: {e}"),
                )
            });
        }
    }
}

use tokio::io::AsyncReadExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_the_documented_json_shape() {
        let offer = SignalMessage::Offer(Description {
            ufrag: "abcd".into(),
            pwd: "p".repeat(22),
            lite: false,
            ice_options: Vec::new(),
            candidates: vec!["candidate:1 1 udp 1 192.0.2.1 5000 typ host".into()],
        });
        let json = serde_json::to_string(&offer).unwrap();
        assert!(
            json.starts_with(r#"{"type":"offer","ufrag":"abcd","#),
            "{json}"
        );
        assert_eq!(
            serde_json::to_string(&SignalMessage::EndOfCandidates).unwrap(),
            r#"{"type":"end-of-candidates"}"#
        );
        let c: SignalMessage =
            serde_json::from_str(r#"{"type":"candidate","candidate":"candidate:x"}"#).unwrap();
        assert_eq!(
            c,
            SignalMessage::Candidate {
                candidate: "candidate:x".into()
            }
        );
        let a: SignalMessage =
            serde_json::from_str(r#"{"type":"answer","ufrag":"u","pwd":"p"}"#).unwrap();
        assert!(matches!(a, SignalMessage::Answer(d) if d.candidates.is_empty() && !d.lite));
        assert!(!json.contains("ice_options"), "omitted when empty: {json}");
        let lite: SignalMessage = serde_json::from_str(
            r#"{"type":"answer","ufrag":"u","pwd":"p","lite":true,"ice_options":["renomination","trickle"]}"#,
        )
        .unwrap();
        assert!(
            matches!(&lite, SignalMessage::Answer(d) if d.lite && d.ice_options == ["renomination", "trickle"]),
            "{lite:?}"
        );
    }

    #[tokio::test]
    async fn json_lines_round_trip_and_refuse_garbage() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (_ar, aw) = tokio::io::split(a);
        let (br, _bw) = tokio::io::split(b);
        let mut tx = JsonLinesSender(aw);
        let mut rx = JsonLinesReceiver::new(br);
        tx.send(SignalMessage::EndOfCandidates).await.unwrap();
        tx.0.write_all(b"\n{not json}\n").await.unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            Some(SignalMessage::EndOfCandidates)
        );
        assert!(rx.recv().await.is_err());
    }
}
