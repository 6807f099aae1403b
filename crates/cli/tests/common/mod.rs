//! Running the `floe` binary from tests.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `floe` with `args` and `stdin`; returns (exit status, stdout, stderr).
pub fn floe_with_stdin(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // floe may stop reading early (bounded input): a broken pipe here is expected.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().expect("floe was killed by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `floe` with `args` and empty stdin.
pub fn floe(args: &[&str]) -> (i32, String, String) {
    floe_with_stdin(args, b"")
}

/// `floe decode --hex HEX` plus `extra` arguments.
pub fn decode_hex(hex: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["decode", "--hex", hex];
    args.extend_from_slice(extra);
    floe(&args)
}

/// Hex digits of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    floe_inspect::verdict::hex(bytes)
}

/// Bytes of hex text (test vectors with spaces and line breaks).
pub fn from_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

pub const PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1.
pub const REQUEST_2_1: &str = "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
     80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
     00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
     00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
     00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
     80 28 00 04 e5 7a 3b cf";

/// RFC 5769 §2.2.
pub const RESPONSE_2_2: &str = "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
     80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
     00 20 00 08 00 01 a1 47 e1 12 a6 43
     00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
     80 28 00 04 c0 7d 4c 96";

/// RFC 5769 §2.3.
pub const RESPONSE_2_3: &str = "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
     80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
     00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
     00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
     80 28 00 04 c8 fb 0b 4c";

/// RFC 5769 §2.4.
pub const REQUEST_2_4: &str = "00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
     00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
     00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
     00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
     00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

/// RFC 5769 §2.4's username (U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9).
pub const USERNAME_2_4: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

/// The long-term credentials of §2.4 ("TheMatrIX" is the SASLprep output the RFC used;
/// OpaqueString leaves it as it is).
pub fn long_term_2_4() -> String {
    format!("{USERNAME_2_4}:example.org:TheMatrIX")
}

/// A child process killed (and reaped) on drop, so a failing test leaves none behind.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first stdout line of `child` as JSON (`floe serve`'s `listening`, `floe relay`'s
/// allocation); the rest of stdout stays readable.
pub fn first_json_line(child: &mut std::process::Child) -> serde_json::Value {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        out.buffer().is_empty(),
        "more than one line was buffered: read it with a reader of your own"
    );
    child.stdout = Some(out.into_inner());
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// A self-signed certificate for `localhost` in a fresh directory named after `name`:
/// (directory, certificate PEM, key PEM).
pub fn self_signed(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (dir, c, k)
}

/// The value of the sample `name` (labels included, as printed) in a real HTTP scrape
/// of `floe serve --metrics`.
pub fn scrape(metrics: std::net::SocketAddr, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(metrics).ok()?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    c.read_to_string(&mut body).ok()?;
    body.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == name).then(|| v.parse().ok()).flatten()
    })
}
