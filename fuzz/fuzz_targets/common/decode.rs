//! Properties of `floe decode`'s judgement and rendering, shared by the decode targets.

use std::ops::ControlFlow;

use floe_inspect::verdict::{Kind, Report, Verdict};
use floe_inspect::{analyze, inspect, limits, render_json, render_text, Credentials, Event, Input};
use floe_stun::attributes::decode_known;
use floe_stun::Message;

/// Judges `bytes` with and without credentials and checks that:
/// - the verdict is deterministic (the same report twice);
/// - the report is consistent: `error` is the first problem, and a verdict is `ok`
///   exactly when nothing is wrong;
/// - a message judged clean is one floe's own code accepts: STUN re-parses with
///   `floe_stun::Message::parse` (FINGERPRINT checked) and every known attribute decodes
///   and passes its type's `validate`; ChannelData parses with floe-turn;
/// - the JSON rendering parses as JSON and says the same verdict and error.
pub fn check_message(bytes: &[u8]) {
    let pw = Credentials::ShortTerm("pw".to_owned());
    for creds in [None, Some(&pw)] {
        let r = analyze(bytes, creds);
        assert_eq!(r, analyze(bytes, creds), "verdict not deterministic");
        check_report(bytes, &r, creds.is_some());
    }
}

fn check_report(bytes: &[u8], r: &Report, with_credentials: bool) {
    assert_eq!(
        r.error.as_deref(),
        r.problems.first().map(|p| p.message.as_str())
    );
    assert_eq!(r.verdict == Verdict::Ok, r.problems.is_empty(), "{r:?}");
    if r.verdict == Verdict::Ok {
        match r.kind {
            Kind::Stun => {
                let msg = Message::parse(bytes).expect("judged ok but floe-stun refuses it");
                let tid = msg.transaction_id();
                for raw in msg.all_attributes() {
                    if let Some(any) = decode_known(&raw, &tid).expect("judged ok, attribute fails")
                    {
                        assert_eq!(limits::violation(raw.typ, raw.offset, &any), None);
                    }
                }
                // With credentials, requests and success responses must prove them.
                if with_credentials {
                    let must = matches!(
                        msg.class(),
                        floe_stun::Class::Request | floe_stun::Class::Success
                    );
                    assert!(msg.has_integrity() || !must);
                }
            }
            Kind::ChannelData => {
                floe_turn::ChannelData::parse(bytes).expect("judged ok but floe-turn refuses it");
            }
            Kind::Other => unreachable!("not STUN/TURN judged ok"),
        }
    }
    let line = render_json::message(1, None, None, r);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON output does not parse");
    let verdict = serde_json::to_value(r.verdict).unwrap();
    assert_eq!(v["verdict"], verdict);
    assert_eq!(v["error"].as_str(), r.error.as_deref());
    assert_eq!(v["size"], bytes.len());
}

/// What [`check_run`] inspects (each target uses some of these).
#[derive(Clone, Copy)]
#[allow(dead_code)]
pub enum Source<'a> {
    /// `floe decode --hex`.
    Hex(&'a str),
    /// `floe decode --pcap -`.
    Capture(&'a [u8]),
    /// `floe decode` with the input on stdin.
    Sniff(&'a [u8]),
}

/// Inspects `source` and renders every event the way `floe decode` prints it (text or
/// JSON lines); returns the exit status and the output.
fn render(source: Source<'_>, credentials: Option<&Credentials>, json: bool) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    let mut messages = 0;
    let mut sink = |e: Event<'_>| {
        match e {
            Event::Packet(p) if !json => {
                out.extend(render_text::packet_line(p).bytes().chain([b'\n']))
            }
            Event::Message {
                packet,
                framing,
                report,
            } => {
                messages += 1;
                if json {
                    out.extend(
                        render_json::message(messages, packet, framing, report)
                            .bytes()
                            .chain([b'\n']),
                    );
                } else {
                    out.extend(render_text::message(messages, framing, report).bytes());
                }
            }
            Event::Skipped { packet, why } if json => {
                out.extend(render_json::skipped(packet, why).bytes().chain([b'\n']));
            }
            Event::Skipped { why, .. } => out.extend(format!("  ({why})\n").bytes()),
            _ => {}
        }
        ControlFlow::Continue(())
    };
    let status = match source {
        Source::Hex(h) => inspect(Input::Hex(h), credentials, &mut sink),
        Source::Capture(b) => inspect(Input::Capture(&mut &b[..]), credentials, &mut sink),
        Source::Sniff(b) => inspect(Input::Sniff(&mut &b[..]), credentials, &mut sink),
    };
    (status.exit_code(), out)
}

/// Runs `floe decode`'s library half twice on `source`: the same status and output both
/// times, and with `json` every line of output is a JSON object.
pub fn check_run(source: Source<'_>, password: Option<&str>, json: bool) -> u8 {
    let credentials = password.map(|p| Credentials::ShortTerm(p.to_owned()));
    let (s1, out1) = render(source, credentials.as_ref(), json);
    let (s2, out2) = render(source, credentials.as_ref(), json);
    assert!(s1 <= 2);
    assert_eq!(s1, s2, "exit status not deterministic");
    assert!(out1 == out2, "output not deterministic");
    let text = std::str::from_utf8(&out1).expect("output is not UTF-8");
    if json {
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).expect("JSON line does not parse");
            assert!(v.is_object(), "{line}");
        }
    }
    s1
}
