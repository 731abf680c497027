//! Small value types used by the configuration schema: durations written as `"30s"`, ports,
//! label-safe names and secrets that never print themselves.
//!
//! Each type has its own `Deserialize` so that a wrong value produces a message that says what
//! is expected ("expected an integer 1-65535"), not serde's generic wording.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A duration written the Prometheus way: `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Parses a Prometheus-style duration. Units: ms, s, m, h, d, w, y; several may be combined in
/// decreasing order (`1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    let bad = || format!("expected a duration like \"30s\", \"5m\" or \"1h30m\", got {s:?}");
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (rank, (unit, ms)) = UNITS
            .iter()
            .enumerate()
            .find(|(_, (u, _))| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .ok_or_else(bad)?;
        // Order must decrease: "1h30m" is fine, "30m1h" and "1s1s" are not.
        let order = [0, 1, 2, 3, 6, 4, 5][rank];
        if last_rank != usize::MAX && order <= last_rank {
            return Err(bad());
        }
        last_rank = order;
        rest = &rest[unit.len()..];
        total_ms = n
            .checked_mul(*ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} is too long"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way it would be written in the configuration.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like \"30s\", \"5m\" or \"1h30m\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Dur, E> {
                Err(E::custom(
                    "expected a duration string with a unit, like \"30s\" or \"5m\"",
                ))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Dur, E> {
                Err(E::custom(
                    "expected a duration string with a unit, like \"30s\" or \"5m\"",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// A TCP/UDP port, 1-65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer 1-65535")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(Port(p)),
                    _ => Err(E::custom(format!("expected an integer 1-65535, got {v}"))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Err(E::custom(format!(
                    "expected an integer 1-65535, got the string {v:?}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A name that becomes a label value: 1-64 characters of `A-Z a-z 0-9 _ . -`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!(
            "expected a name of 1-64 characters, got {} characters",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "expected a name of letters, digits, '_', '.' or '-', found {c:?} in {s:?}"
        ));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_name(&s).map_err(de::Error::custom)?;
        Ok(Name(s))
    }
}

/// A secret value: a password, API key, token. Its `Debug` and `Display` print `***`, so it
/// cannot leak through a log line or an error message by accident. Read the value with
/// [`Secret::expose`] at the one place that sends it over the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Arc::from(s.into()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads a secret from where the configuration says it is: a plain string,
/// `{ env = "NAME" }` or `{ file = "/run/secrets/x" }` (trailing newlines removed). Resolved
/// when the configuration is loaded, so a missing variable or file is a configuration error
/// with a position, and a reload picks up a rotated file.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "expected a string, { env = \"NAME\" } or { file = \"/path\" }";
        impl<'de> Visitor<'de> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Secret, E> {
                Ok(Secret::new(s))
            }
            // A secret of the wrong type is refused without repeating it.
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom(format!("{EXPECTED}, got a number (quote it)")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom(format!("{EXPECTED}, got a number (quote it)")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(format!("{EXPECTED}, got a number (quote it)")))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom(format!("{EXPECTED}, got a boolean")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(EXPECTED));
                };
                let value: String = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "{EXPECTED}: only one key is allowed"
                    )));
                }
                match key.as_str() {
                    "env" => match std::env::var(&value) {
                        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                        Ok(_) => Err(de::Error::custom(format!(
                            "environment variable {value} is empty"
                        ))),
                        Err(_) => Err(de::Error::custom(format!(
                            "environment variable {value} is not set"
                        ))),
                    },
                    "file" => {
                        let path = PathBuf::from(&value);
                        match std::fs::read_to_string(&path) {
                            Ok(v) => {
                                let v = v.trim_end_matches(['\r', '\n']);
                                if v.is_empty() {
                                    Err(de::Error::custom(format!("secret file {value} is empty")))
                                } else {
                                    Ok(Secret::new(v))
                                }
                            }
                            Err(e) => Err(de::Error::custom(format!(
                                "cannot read secret file {value}: {}",
                                io_reason(&e)
                            ))),
                        }
                    }
                    other => Err(de::Error::custom(format!(
                        "{EXPECTED}, found key {other:?}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An I/O error's reason without the OS error number noise.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A path written in the file at `file`: as it is when absolute, else relative to the directory
/// of that file. Every path the configuration (and `--web.config.file`) resolves against itself
/// goes through here.
/// (`exporter.state_dir` and secrets read from `{ file = "..." }` are used as written, relative
/// to the working directory, as they always were.)
pub fn relative_to(file: &Path, path: &Path) -> PathBuf {
    match file.parent() {
        // `join` keeps an absolute `path` as it is.
        Some(dir) => dir.join(path),
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("1w"), Duration::from_secs(604_800));
        assert_eq!(ok("1m500ms"), Duration::from_millis(60_500));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "1.5s",
            "-1s",
            "30m1h",
            "1s1s",
            "5 m",
            "1000000000000000h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .contains("expected a duration like")
        );
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn names_are_label_safe() {
        assert!(check_name("brevo-eu_1.a").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").unwrap_err().contains("' '"));
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
