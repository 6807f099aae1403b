//! `floe user-key`: a TURN user's RFC 8489 §9.2.2 long-term keys, printed as the
//! `redis-cli` commands that add the user to a fleet's Redis (docs/fleet.md), so no
//! password is ever stored. The MD5 key is what coturn's `turnadmin -k` prints and
//! stores; the SHA-256 key serves clients that choose PASSWORD-ALGORITHM SHA-256.

use std::fmt::Write as _;
use std::io::{BufRead, Write};

use clap::Args;
use floe_turn::server::StoredKey;

/// Arguments of `floe user-key`.
#[derive(Debug, Clone, Args)]
pub struct UserKeyArgs {
    /// The user name.
    #[arg(long)]
    pub user: String,
    /// The realm (`floe serve --realm`).
    #[arg(long, default_value = "floe")]
    pub realm: String,
    /// The password; default: the first line of standard input (kept out of `ps`).
    #[arg(long)]
    pub password: Option<String>,
}

/// Prints the commands; returns the exit status.
pub fn run(args: &UserKeyArgs, stdin: &mut impl BufRead, out: &mut impl Write) -> u8 {
    let password = match &args.password {
        Some(p) => p.clone(),
        None => {
            let mut line = String::new();
            if stdin.read_line(&mut line).is_err() {
                eprintln!("floe user-key: cannot read the password from standard input");
                return 2;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let key = match StoredKey::from_password(&args.user, &args.realm, &password) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("floe user-key: {e}");
            return 2;
        }
    };
    let prefix = format!("turn/realm/{}/user/{}", args.realm, args.user);
    let hex = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
    };
    let mut lines = String::new();
    if let Some(md5) = key.md5 {
        let _ = writeln!(lines, "SET {prefix}/key {}", hex(&md5));
    }
    if let Some(sha) = key.sha256 {
        let _ = writeln!(lines, "SET {prefix}/key-sha256 {}", hex(&sha));
    }
    match out.write_all(lines.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_coturns_key_and_the_sha256_key() {
        let args = UserKeyArgs {
            user: "ninefingers".into(),
            realm: "north.gov".into(),
            password: None,
        };
        let mut out = Vec::new();
        let status = run(&args, &mut &b"youhavetoberealistic\n"[..], &mut out);
        assert_eq!(status, 0);
        let out = String::from_utf8(out).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("SET turn/realm/north.gov/user/ninefingers/key bc807ee29df3c9ffa736523fb2c4e8ee")
        );
        let sha = lines.next().unwrap();
        assert!(sha.starts_with("SET turn/realm/north.gov/user/ninefingers/key-sha256 "));
        assert_eq!(sha.rsplit(' ').next().unwrap().len(), 64);
    }
}
