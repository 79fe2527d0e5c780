//! The guest protocol: what the initramfs tells the guest's init (files under
//! /etc/thpbench), and how the guest answers on its second serial port (ttyS1, a file on
//! the host). The console (ttyS0) carries kernel messages, so nothing is parsed from it.
//!
//! On the data port, each file travels as
//!
//! ```text
//! THPBENCH-BEGIN NAME SIZE SHA256
//! base64 lines
//! THPBENCH-END NAME
//! ```
//!
//! and the guest ends with `THPBENCH-EXIT RC` (thpbench's exit code). A probe boot
//! (`thpbench.mode=probe` on the cmdline) writes `THPBENCH-PROBE-OK RELEASE` and powers
//! off. The host keeps a file only when its size and sha256 match the header.

use std::collections::BTreeMap;

use base64::Engine as _;

/// The guest's init (busybox sh), installed as /init. It lives in scripts/guest/init so
/// that CI's shellcheck reads it.
pub const INIT: &str = include_str!("../../scripts/guest/init");

pub const BEGIN: &str = "THPBENCH-BEGIN";
pub const END: &str = "THPBENCH-END";
pub const EXIT: &str = "THPBENCH-EXIT";
pub const PROBE_OK: &str = "THPBENCH-PROBE-OK";
/// On the kernel cmdline: boot to init, say PROBE_OK, power off.
pub const PROBE_CMDLINE: &str = "thpbench.mode=probe";

/// The files the guest sends besides the result, and the result's own name.
pub const RESULT: &str = "result.json";
pub const SENT: [&str; 4] = [RESULT, "run.log", "guest-info.txt", "dmesg.txt"];

/// What init needs to know, written under /etc/thpbench in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSetup {
    /// The resolved workload, TOML.
    pub workload_toml: String,
    /// Extra arguments for `thpbench run` (the flags are already in the workload).
    pub run_args: Vec<String>,
    /// Module files to insmod, in order, as paths inside the guest.
    pub modules: Vec<String>,
    /// Where the scratch disk (/dev/vda, ext4) is mounted; None: no disk.
    pub scratch_mount: Option<String>,
    /// The directory thpbench runs in.
    pub cwd: String,
}

impl GuestSetup {
    /// The files init reads: (path in the initramfs, contents). Line-based, one value a
    /// line, so busybox `read` takes them without quoting rules.
    pub fn files(&self) -> Vec<(String, String)> {
        let lines = |v: &[String]| v.iter().map(|s| format!("{s}\n")).collect::<String>();
        vec![
            (
                "etc/thpbench/workload.toml".into(),
                self.workload_toml.clone(),
            ),
            ("etc/thpbench/args".into(), lines(&self.run_args)),
            ("etc/thpbench/modules".into(), lines(&self.modules)),
            (
                "etc/thpbench/scratch-mount".into(),
                self.scratch_mount.clone().unwrap_or_default(),
            ),
            ("etc/thpbench/cwd".into(), format!("{}\n", self.cwd)),
        ]
    }
}

/// One frame as init's `send` writes it (for tests and for anyone writing a guest).
pub fn encode_frame(name: &str, data: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut s = format!(
        "{BEGIN} {name} {} {}\n",
        data.len(),
        crate::digest::sha256_hex(data)
    );
    // base64(1) wraps at 76 columns.
    for chunk in b64.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("{END} {name}\n"));
    s
}

/// Why a file that the guest began to send was not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The BEGIN line does not have a name, a size and a 64-digit sha256.
    BadHeader(String),
    /// No END line: the guest stopped (crashed, timed out, was killed) while sending.
    Truncated {
        received_lines: usize,
    },
    /// The body is not base64.
    Garbled(String),
    /// Decoded, but not what the header promised.
    SizeMismatch {
        expected: u64,
        got: u64,
    },
    ShaMismatch {
        expected: String,
        got: String,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadHeader(l) => write!(f, "a malformed header line: {l:?}"),
            FrameError::Truncated { received_lines } => write!(
                f,
                "truncated: the guest stopped sending after {received_lines} lines (no {END} line)"
            ),
            FrameError::Garbled(e) => write!(f, "garbled base64: {e}"),
            FrameError::SizeMismatch { expected, got } => {
                write!(f, "damaged: {got} bytes, the header says {expected}")
            }
            FrameError::ShaMismatch { expected, got } => {
                write!(f, "damaged: sha256 {got}, the header says {expected}")
            }
        }
    }
}

/// Everything read from the data port.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DataChannel {
    /// By name: the file, or why it was not kept. A name sent twice keeps the last.
    pub files: BTreeMap<String, Result<Vec<u8>, FrameError>>,
    /// thpbench's exit code in the guest, once init got that far.
    pub exit: Option<i32>,
    /// The release a probe boot reported.
    pub probe_ok: Option<String>,
}

impl DataChannel {
    /// The file if it arrived whole.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name)?.as_ref().ok().map(Vec::as_slice)
    }
}

struct Open {
    name: String,
    size: u64,
    sha: String,
    body: String,
    lines: usize,
}

/// Parses the data port's bytes. Carriage returns (a tty's ONLCR) are dropped; anything
/// outside frames is ignored (a port may carry a line of noise before init starts).
pub fn parse(data: &[u8]) -> DataChannel {
    let text = String::from_utf8_lossy(data);
    let mut out = DataChannel::default();
    let mut open: Option<Open> = None;
    for raw in text.split('\n') {
        let line = raw.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(BEGIN).filter(|r| r.starts_with(' ')) {
            if let Some(o) = open.take() {
                // A new frame before the last one ended: the last one was cut short.
                out.files.insert(
                    o.name,
                    Err(FrameError::Truncated {
                        received_lines: o.lines,
                    }),
                );
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            match f.as_slice() {
                [name, size, sha]
                    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    match size.parse::<u64>() {
                        Ok(size) => {
                            open = Some(Open {
                                name: name.to_string(),
                                size,
                                sha: sha.to_ascii_lowercase(),
                                body: String::new(),
                                lines: 0,
                            })
                        }
                        Err(_) => {
                            out.files.insert(
                                name.to_string(),
                                Err(FrameError::BadHeader(line.to_string())),
                            );
                        }
                    }
                }
                [name, ..] => {
                    out.files.insert(
                        name.to_string(),
                        Err(FrameError::BadHeader(line.to_string())),
                    );
                }
                [] => {}
            }
        } else if let Some(name) = line.strip_prefix(END).map(str::trim) {
            if let Some(o) = open.take() {
                if o.name == name {
                    out.files.insert(o.name.clone(), decode(&o));
                } else {
                    out.files.insert(
                        o.name,
                        Err(FrameError::Truncated {
                            received_lines: o.lines,
                        }),
                    );
                }
            }
        } else if let Some(o) = open.as_mut() {
            o.body.push_str(line.trim());
            o.lines += 1;
        } else if let Some(rc) = line.strip_prefix(EXIT) {
            out.exit = rc.trim().parse().ok();
        } else if let Some(rel) = line.strip_prefix(PROBE_OK) {
            out.probe_ok = Some(rel.trim().to_string());
        }
    }
    if let Some(o) = open {
        out.files.insert(
            o.name,
            Err(FrameError::Truncated {
                received_lines: o.lines,
            }),
        );
    }
    out
}

fn decode(o: &Open) -> Result<Vec<u8>, FrameError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(o.body.as_bytes())
        .map_err(|e| FrameError::Garbled(e.to_string()))?;
    if bytes.len() as u64 != o.size {
        return Err(FrameError::SizeMismatch {
            expected: o.size,
            got: bytes.len() as u64,
        });
    }
    let got = crate::digest::sha256_hex(&bytes);
    if got != o.sha {
        return Err(FrameError::ShaMismatch {
            expected: o.sha.clone(),
            got,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const JSON: &[u8] = b"{\"runs\": [1, 2, 3], \"text\": \"a line long enough to wrap the base64 over more than one line of seventy-six\"}\n";

    #[test]
    fn a_frame_round_trips_with_noise_and_carriage_returns() {
        let mut port = String::from("garbage before init\r\n");
        port.push_str(&encode_frame(RESULT, JSON).replace('\n', "\r\n"));
        port.push_str(&encode_frame("empty.txt", b""));
        port.push_str("THPBENCH-EXIT 4\r\n");
        let ch = parse(port.as_bytes());
        assert_eq!(ch.file(RESULT), Some(JSON));
        assert_eq!(ch.file("empty.txt"), Some(&b""[..]));
        assert_eq!(ch.exit, Some(4));
        assert_eq!(ch.probe_ok, None);
    }

    #[test]
    fn truncated_and_corrupt_frames_are_named_not_kept() {
        let good = encode_frame(RESULT, JSON);
        // Cut before END: the guest died while sending.
        let cut = &good[..good.len() - 30];
        let ch = parse(cut.as_bytes());
        assert!(
            matches!(ch.files[RESULT], Err(FrameError::Truncated { received_lines }) if received_lines >= 1),
            "{ch:?}"
        );
        assert_eq!(ch.exit, None);

        // A new frame starts before the previous one ended.
        let no_end: String = good
            .lines()
            .filter(|l| !l.starts_with(END))
            .map(|l| format!("{l}\n"))
            .collect();
        let two = format!("{no_end}{}", encode_frame("run.log", b"ok\n"));
        let ch = parse(two.as_bytes());
        assert!(matches!(
            ch.files[RESULT],
            Err(FrameError::Truncated { .. })
        ));
        assert_eq!(ch.file("run.log"), Some(&b"ok\n"[..]));

        // One character of the body flipped: still base64, wrong sha256.
        let lines: Vec<&str> = good.lines().collect();
        let mut body = lines[1].to_string();
        let c = if body.starts_with('A') { "B" } else { "A" };
        body.replace_range(0..1, c);
        let flipped = format!("{}\n{body}\n{}\n", lines[0], lines[2..].join("\n"));
        assert!(matches!(
            parse(flipped.as_bytes()).files[RESULT],
            Err(FrameError::ShaMismatch { .. })
        ));

        // A body line lost in the middle (a dropped serial line): wrong size.
        let dropped = format!("{}\n{}\n", lines[0], lines[2..].join("\n"));
        assert!(matches!(
            parse(dropped.as_bytes()).files[RESULT],
            Err(FrameError::SizeMismatch { expected, .. }) if expected == JSON.len() as u64
        ));

        // Not base64 at all.
        let garbled = format!("{}\n!!!!\n{}\n", lines[0], lines.last().unwrap());
        assert!(matches!(
            parse(garbled.as_bytes()).files[RESULT],
            Err(FrameError::Garbled(_))
        ));

        // Headers without a size or with a short digest.
        for h in [
            "THPBENCH-BEGIN result.json 12\nAAAA\nTHPBENCH-END result.json\n",
            "THPBENCH-BEGIN result.json x 0000\nTHPBENCH-END result.json\n",
        ] {
            assert!(
                matches!(
                    parse(h.as_bytes()).files[RESULT],
                    Err(FrameError::BadHeader(_))
                ),
                "{h}"
            );
        }
        // An END naming another file closes nothing whole.
        let wrong_end = good.replace("THPBENCH-END result.json", "THPBENCH-END other");
        assert!(matches!(
            parse(wrong_end.as_bytes()).files[RESULT],
            Err(FrameError::Truncated { .. })
        ));
    }

    #[test]
    fn probe_and_exit_lines() {
        let ch = parse(b"THPBENCH-PROBE-OK 6.1.0-57-cloud-amd64\nTHPBENCH-EXIT 0\n");
        assert_eq!(ch.probe_ok.as_deref(), Some("6.1.0-57-cloud-amd64"));
        assert_eq!(ch.exit, Some(0));
        assert!(ch.files.is_empty());
        assert_eq!(parse(b"THPBENCH-EXIT what\n").exit, None);
    }

    /// init's own `send` (the shell function, run by sh on the host with the same
    /// coreutils/busybox applets), read back by `parse`: the two sides agree.
    #[test]
    fn inits_send_function_writes_what_parse_reads() {
        let start = INIT.find("send() {").expect("init defines send()");
        let end = start + INIT[start..].find("\n}\n").expect("send() ends") + 3;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(&file, JSON).unwrap();
        let port = dir.path().join("port");
        let script = format!(
            "DATA={}\n{}send result.json {}\nsend missing.txt {}/nothing\n",
            port.display(),
            &INIT[start..end],
            file.display(),
            dir.path().display()
        );
        let o = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ch = parse(&std::fs::read(&port).unwrap());
        assert_eq!(ch.file(RESULT), Some(JSON));
        // A file the guest does not have is not sent at all.
        assert_eq!(ch.files.len(), 1, "{ch:?}");
    }

    /// What init reads: it names each file the setup writes, and reads them as lines.
    #[test]
    fn init_reads_the_files_the_setup_writes() {
        let setup = GuestSetup {
            workload_toml: "name = \"quick\"\n".into(),
            run_args: vec!["-q".into()],
            modules: vec![
                "/lib/modules/6.1/kernel/zram.ko".into(),
                "/x/virtio_blk.ko".into(),
            ],
            scratch_mount: Some("/scratch".into()),
            cwd: "/scratch".into(),
        };
        let files: BTreeMap<String, String> = setup.files().into_iter().collect();
        for path in files.keys() {
            assert!(
                INIT.contains(&format!("/{path}")),
                "init does not read /{path}"
            );
        }
        assert_eq!(files["etc/thpbench/args"], "-q\n");
        assert_eq!(
            files["etc/thpbench/modules"],
            "/lib/modules/6.1/kernel/zram.ko\n/x/virtio_blk.ko\n"
        );
        assert_eq!(files["etc/thpbench/scratch-mount"], "/scratch");
        assert_eq!(files["etc/thpbench/cwd"], "/scratch\n");
        // init sends what the host looks for, and says EXIT and PROBE-OK in the same words.
        for name in SENT {
            assert!(INIT.contains(&format!("send {name} /tmp/{name}")), "{name}");
        }
        assert!(INIT.contains(&format!("echo \"{EXIT} $1\"")));
        assert!(INIT.contains(&format!("echo \"{PROBE_OK} $(uname -r)\"")));
        assert!(INIT.contains(PROBE_CMDLINE));
        let no_disk = GuestSetup {
            scratch_mount: None,
            ..setup
        };
        let files: BTreeMap<String, String> = no_disk.files().into_iter().collect();
        assert_eq!(files["etc/thpbench/scratch-mount"], "");
    }
}
