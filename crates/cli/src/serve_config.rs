//! `floe serve --config FILE` and `--print-config`.
//!
//! The file is TOML whose keys are the long flag names, with `-` or `_`: every flag has
//! a key. A key becomes that flag before the command-line arguments: a string, integer
//! or float is its value, `true` sets a switch (`false` leaves it unset), and an array
//! repeats a repeatable flag (`user = ["alice:secret", "bob:builder"]`). A flag given on
//! the command line overrides the file's key entirely, lists included. The file is read
//! again on SIGHUP, for what can change without a restart.

use std::ffi::{OsStr, OsString};

use clap::{ArgAction, ArgMatches, Command};

/// The `--config` value among `raw` (the arguments after `serve`), if any.
fn config_path(raw: &[OsString]) -> Option<OsString> {
    let mut it = raw.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().cloned();
        }
        if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(v.into());
        }
    }
    None
}

/// Whether `flag` (e.g. `--user`) appears among `raw`.
fn given(raw: &[OsString], flag: &str) -> bool {
    raw.iter().any(|a| {
        a == flag
            || a.to_str()
                .and_then(|s| s.strip_prefix(flag))
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// The file's settings as flags, followed by `raw`: what clap then parses. Without
/// `--config`, `raw` unchanged.
pub fn expand(raw: &[OsString]) -> Result<Vec<OsString>, String> {
    let Some(path) = config_path(raw) else {
        return Ok(raw.to_vec());
    };
    let shown = std::path::Path::new(&path).display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("--config {shown}: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e| format!("--config {shown}: {e}"))?;
    let mut args: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        let flag = format!("--{}", key.replace('_', "-"));
        if flag == "--config" || flag == "--print-config" {
            return Err(format!("--config {shown}: {key} cannot be set in the file"));
        }
        if given(raw, &flag) {
            continue;
        }
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                _ => Err(format!(
                    "--config {shown}: {key}: expected a string or a number"
                )),
            }
        };
        match value {
            toml::Value::Boolean(true) => args.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    args.push(flag.clone().into());
                    args.push(scalar(item)?.into());
                }
            }
            other => {
                args.push(flag.into());
                args.push(scalar(other)?.into());
            }
        }
    }
    args.extend(raw.iter().cloned());
    Ok(args)
}

/// The effective configuration as a TOML file `--config` would read back (passwords
/// and secrets redacted).
pub fn print(command: &Command, matches: &ArgMatches) -> String {
    let mut table = toml::Table::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "config" | "print-config" | "help" | "version") {
            continue;
        }
        let id = arg.get_id().as_str();
        let value = match arg.get_action() {
            ArgAction::SetTrue => toml::Value::Boolean(matches.get_flag(id)),
            action => {
                let Some(raw) = matches.get_raw(id) else {
                    continue;
                };
                let values: Vec<toml::Value> = raw.map(|v| scalar_of(long, v)).collect();
                if matches!(action, ArgAction::Append) {
                    toml::Value::Array(values)
                } else {
                    let Some(v) = values.into_iter().next() else {
                        continue;
                    };
                    v
                }
            }
        };
        table.insert(long.to_owned(), value);
    }
    format!("# floe serve: the effective configuration (passwords and secrets redacted)\n{table}")
}

fn scalar_of(long: &str, raw: &OsStr) -> toml::Value {
    let s = raw.to_string_lossy();
    match long {
        "user" => {
            let name = s.split_once(':').map_or(&*s, |(n, _)| n);
            toml::Value::String(format!("{name}:<redacted>"))
        }
        "rest-secret" => toml::Value::String("<redacted>".into()),
        "redis" => toml::Value::String(floe_server::redact_url(&s)),
        _ => s.parse::<i64>().map_or_else(
            |_| toml::Value::String(s.into_owned()),
            toml::Value::Integer,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_keys_become_flags_before_the_command_line_which_overrides_them() {
        let dir = std::env::temp_dir().join(format!("floe-serve-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("serve.toml");
        std::fs::write(
            &file,
            "realm = \"file\"\nuser = [\"a:1\", \"b:2\"]\ntcp = true\nmax_bps = 8000\nallow-loopback-peers = false\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let out = expand(&os(&["--config", f, "--realm", "cli"])).unwrap();
        let out: Vec<String> = out
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert!(
            !out.iter().any(|a| a == "file"),
            "the command line overrides: {out:?}"
        );
        for want in ["--user", "a:1", "b:2", "--tcp", "--max-bps", "8000"] {
            assert!(out.iter().any(|a| a == want), "{want}: {out:?}");
        }
        assert!(!out.iter().any(|a| a == "--allow-loopback-peers"));
        // A list on the command line replaces the file's list.
        let out = expand(&os(&[&format!("--config={f}"), "--user", "c:3"])).unwrap();
        assert!(!out.iter().any(|a| a == "a:1"), "{out:?}");
        // Errors name the file.
        std::fs::write(&file, "nested = { a = 1 }\n").unwrap();
        assert!(expand(&os(&["--config", f]))
            .unwrap_err()
            .contains("serve.toml"));
        std::fs::write(&file, "config = \"x\"\n").unwrap();
        assert!(expand(&os(&["--config", f])).is_err());
        assert!(expand(&os(&["--config", "/nonexistent/floe.toml"])).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
