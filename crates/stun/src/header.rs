//! The 20-byte STUN header: message type (method and class), length, magic cookie and
//! transaction id (RFC 8489 §5, §6).

use core::fmt;

/// The fixed magic cookie (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;
/// Largest possible message: header plus the largest 16-bit, 4-aligned length.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 0xFFFC;

/// The message class, the two class bits of the message type (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request: expects a response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response (carries ERROR-CODE).
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    /// Lower-case name, as in "success response".
    pub fn name(self) -> &'static str {
        match self {
            Class::Request => "request",
            Class::Indication => "indication",
            Class::Success => "success response",
            Class::Error => "error response",
        }
    }
}

/// A 12-bit STUN method (RFC 8489 §18.2, RFC 8656 §17, RFC 6062 §6.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656 §7).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656 §8).
    pub const REFRESH: Method = Method(0x004);
    /// Send (RFC 8656 §11).
    pub const SEND: Method = Method(0x006);
    /// Data (RFC 8656 §11).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656 §10).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656 §12).
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// Connect (RFC 6062 §4.3).
    pub const CONNECT: Method = Method(0x00A);
    /// ConnectionBind (RFC 6062 §4.4).
    pub const CONNECTION_BIND: Method = Method(0x00B);
    /// ConnectionAttempt (RFC 6062 §4.4).
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// A method from its 12-bit value; `None` if it does not fit in 12 bits.
    pub const fn new(value: u16) -> Option<Method> {
        if value <= 0x0FFF {
            Some(Method(value))
        } else {
            None
        }
    }

    /// The 12-bit value.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// The registry name, or `None` for an unassigned method.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::BINDING => "Binding",
            Method::ALLOCATE => "Allocate",
            Method::REFRESH => "Refresh",
            Method::SEND => "Send",
            Method::DATA => "Data",
            Method::CREATE_PERMISSION => "CreatePermission",
            Method::CHANNEL_BIND => "ChannelBind",
            Method::CONNECT => "Connect",
            Method::CONNECTION_BIND => "ConnectionBind",
            Method::CONNECTION_ATTEMPT => "ConnectionAttempt",
            _ => return None,
        })
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Method({:#05x})", self.0),
        }
    }
}

/// Method and class together: the 14-bit message type field (RFC 8489 §5, Figure 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The method.
    pub method: Method,
    /// The class.
    pub class: Class,
}

impl MessageType {
    /// Binding request.
    pub const BINDING_REQUEST: MessageType = MessageType::new(Method::BINDING, Class::Request);
    /// Binding success response.
    pub const BINDING_SUCCESS: MessageType = MessageType::new(Method::BINDING, Class::Success);
    /// Binding error response.
    pub const BINDING_ERROR: MessageType = MessageType::new(Method::BINDING, Class::Error);
    /// Binding indication (keepalive, RFC 8445 §11).
    pub const BINDING_INDICATION: MessageType =
        MessageType::new(Method::BINDING, Class::Indication);

    /// Method and class.
    pub const fn new(method: Method, class: Class) -> MessageType {
        MessageType { method, class }
    }

    /// The same method with another class (a request's response type).
    #[must_use]
    pub const fn with_class(self, class: Class) -> MessageType {
        MessageType {
            method: self.method,
            class,
        }
    }

    /// Encodes to the 16-bit field: M11..M7 C1 M6..M4 C0 M3..M0 (RFC 8489 §5).
    pub fn to_u16(self) -> u16 {
        let m = self.method.0;
        let c = self.class.bits();
        (m & 0x000F) | ((c & 1) << 4) | ((m & 0x0070) << 1) | ((c & 2) << 7) | ((m & 0x0F80) << 2)
    }

    /// Decodes the 16-bit field; the two top bits must already be known to be zero.
    pub fn from_u16(v: u16) -> MessageType {
        let method = (v & 0x000F) | ((v >> 1) & 0x0070) | ((v >> 2) & 0x0F80);
        let class = match ((v >> 4) & 1) | ((v >> 7) & 2) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        };
        MessageType {
            method: Method(method),
            class,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.class.name())
    }
}

/// The 96-bit transaction id (RFC 8489 §5). Clients pick it uniformly at random.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh random id from the caller's RNG (sans-IO: randomness is an input).
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> TransactionId {
        let mut id = [0u8; 12];
        rng.fill_bytes(&mut id);
        TransactionId(id)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_bits_match_rfc_8489_figure_3() {
        assert_eq!(MessageType::BINDING_REQUEST.to_u16(), 0x0001);
        assert_eq!(MessageType::BINDING_SUCCESS.to_u16(), 0x0101);
        assert_eq!(MessageType::BINDING_ERROR.to_u16(), 0x0111);
        assert_eq!(MessageType::BINDING_INDICATION.to_u16(), 0x0011);
        assert_eq!(
            MessageType::new(Method::ALLOCATE, Class::Request).to_u16(),
            0x0003
        );
        assert_eq!(
            MessageType::new(Method::DATA, Class::Indication).to_u16(),
            0x0017
        );
        assert_eq!(
            MessageType::new(Method::CHANNEL_BIND, Class::Error).to_u16(),
            0x0119
        );
    }

    #[test]
    fn every_message_type_round_trips() {
        for v in 0..=0x3FFFu16 {
            assert_eq!(MessageType::from_u16(v).to_u16(), v);
        }
    }
}
