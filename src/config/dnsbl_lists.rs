//! The built-in catalogue of well-known DNS blacklists and what their answers mean, plus the
//! conversion of `[[dnsbl.custom]]` zones into the same shape. Like the provider presets, it
//! is configuration knowledge: `[dnsbl] lists` names are checked against it at load, and the
//! blacklist check (`crate::dns::dnsbl`, which re-exports it as `catalogue`) queries its zones.
//!
//! Every list has a name (the `zone` label of the metrics: stable, and never the queried zone,
//! which may embed a Spamhaus DQS key), the zone queried, whether it lists IPs or domains, and a
//! code map: exact answers (`127.0.0.2` = SBL) or bits of the last octet (SURBL, URIBL).
//! Answers that are errors rather than listings are classified in the parent module.

use std::net::Ipv4Addr;

use crate::config::{CustomZone, ZoneKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Ip,
    Domain,
}

/// What a listing answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codes {
    /// Exact answers; an answer not in the map is a listing with meaning `listed`.
    Exact(Vec<(Ipv4Addr, String)>),
    /// Bits of the last octet (127.0.0.X); bits not in the map are ignored.
    Bitmask(Vec<(u8, &'static str)>),
}

/// One zone as the check uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The `zone` label: the catalogue or custom name.
    pub name: String,
    /// The zone queried (for DQS: `<key>.zen.dq.spamhaus.net`). Never logged as is.
    pub query_zone: String,
    pub kind: ListKind,
    pub codes: Codes,
    /// Answers that mean "your query was refused/invalid" for this list in particular.
    pub error_codes: Vec<Ipv4Addr>,
    /// The name (before the zone) that must be listed (RFC 5782 section 5), if the list has one.
    pub test_entry: Option<String>,
    /// Whether IPv6 addresses are listed (queried nibble-reversed).
    pub ipv6: bool,
}

impl Zone {
    /// What a listing code means: one or more names (a bitmask can carry several).
    pub fn meanings(&self, code: Ipv4Addr) -> Vec<String> {
        match &self.codes {
            Codes::Exact(map) => vec![
                map.iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, m)| m.clone())
                    .unwrap_or_else(|| "listed".to_string()),
            ],
            Codes::Bitmask(bits) => {
                let last = code.octets()[3];
                let m: Vec<String> = bits
                    .iter()
                    .filter(|(b, _)| last & b != 0)
                    .map(|(_, n)| n.to_string())
                    .collect();
                if m.is_empty() {
                    vec!["listed".into()]
                } else {
                    m
                }
            }
        }
    }
}

struct Entry {
    name: &'static str,
    zone: &'static str,
    kind: ListKind,
    exact: &'static [([u8; 4], &'static str)],
    bits: &'static [(u8, &'static str)],
    errors: &'static [[u8; 4]],
    test: Option<&'static str>,
    ipv6: bool,
    /// The DQS zone name (`<key>.<dqs>.dq.spamhaus.net`) for Spamhaus lists.
    dqs: Option<&'static str>,
}

const SPAMHAUS_ZEN: &[([u8; 4], &str)] = &[
    ([127, 0, 0, 2], "sbl"),
    ([127, 0, 0, 3], "css"),
    ([127, 0, 0, 4], "xbl"),
    ([127, 0, 0, 5], "xbl"),
    ([127, 0, 0, 6], "xbl"),
    ([127, 0, 0, 7], "xbl"),
    ([127, 0, 0, 9], "sbl-drop"),
    ([127, 0, 0, 10], "pbl-isp"),
    ([127, 0, 0, 11], "pbl-spamhaus"),
];

const SPAMHAUS_DBL: &[([u8; 4], &str)] = &[
    ([127, 0, 1, 2], "spam"),
    ([127, 0, 1, 4], "phish"),
    ([127, 0, 1, 5], "malware"),
    ([127, 0, 1, 6], "botnet-cc"),
    ([127, 0, 1, 102], "abused-legit-spam"),
    ([127, 0, 1, 103], "abused-redirector"),
    ([127, 0, 1, 104], "abused-legit-phish"),
    ([127, 0, 1, 105], "abused-legit-malware"),
    ([127, 0, 1, 106], "abused-legit-botnet-cc"),
];

const LISTED: &[([u8; 4], &str)] = &[([127, 0, 0, 2], "listed")];

const CATALOGUE: &[Entry] = &[
    Entry {
        name: "spamhaus-zen",
        zone: "zen.spamhaus.org",
        kind: ListKind::Ip,
        exact: SPAMHAUS_ZEN,
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: true,
        dqs: Some("zen"),
    },
    Entry {
        name: "spamhaus-sbl",
        zone: "sbl.spamhaus.org",
        kind: ListKind::Ip,
        exact: SPAMHAUS_ZEN,
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: true,
        dqs: Some("sbl"),
    },
    Entry {
        name: "spamhaus-xbl",
        zone: "xbl.spamhaus.org",
        kind: ListKind::Ip,
        exact: SPAMHAUS_ZEN,
        bits: &[],
        errors: &[],
        test: Some("4.0.0.127"),
        ipv6: true,
        dqs: Some("xbl"),
    },
    Entry {
        name: "spamhaus-pbl",
        zone: "pbl.spamhaus.org",
        kind: ListKind::Ip,
        exact: SPAMHAUS_ZEN,
        bits: &[],
        errors: &[],
        test: Some("10.0.0.127"),
        ipv6: true,
        dqs: Some("pbl"),
    },
    Entry {
        name: "spamhaus-dbl",
        zone: "dbl.spamhaus.org",
        kind: ListKind::Domain,
        exact: SPAMHAUS_DBL,
        bits: &[],
        // 127.0.1.255: an IP address was queried against the domain list.
        errors: &[[127, 0, 1, 255]],
        test: Some("dbltest.com"),
        ipv6: false,
        dqs: Some("dbl"),
    },
    Entry {
        name: "barracuda",
        zone: "b.barracudacentral.org",
        kind: ListKind::Ip,
        exact: LISTED,
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "spamcop",
        zone: "bl.spamcop.net",
        kind: ListKind::Ip,
        exact: LISTED,
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "uceprotect-1",
        zone: "dnsbl-1.uceprotect.net",
        kind: ListKind::Ip,
        exact: &[([127, 0, 0, 2], "level-1")],
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "uceprotect-2",
        zone: "dnsbl-2.uceprotect.net",
        kind: ListKind::Ip,
        exact: &[([127, 0, 0, 2], "level-2")],
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "uceprotect-3",
        zone: "dnsbl-3.uceprotect.net",
        kind: ListKind::Ip,
        exact: &[([127, 0, 0, 2], "level-3")],
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "psbl",
        zone: "psbl.surriel.com",
        kind: ListKind::Ip,
        exact: LISTED,
        bits: &[],
        errors: &[],
        test: Some("2.0.0.127"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "surbl",
        zone: "multi.surbl.org",
        kind: ListKind::Domain,
        exact: &[],
        bits: &[
            (8, "phishing"),
            (16, "malware"),
            (64, "abuse"),
            (128, "cracked"),
        ],
        errors: &[],
        test: Some("test.surbl.org"),
        ipv6: false,
        dqs: None,
    },
    Entry {
        name: "uribl",
        zone: "multi.uribl.com",
        kind: ListKind::Domain,
        exact: &[],
        bits: &[(2, "black"), (4, "grey"), (8, "red")],
        errors: &[],
        test: Some("test.uribl.com"),
        ipv6: false,
        dqs: None,
    },
];

/// Names of every catalogue list, for messages.
pub fn names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|e| e.name).collect()
}

fn find_entry(name: &str) -> Option<&'static Entry> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    CATALOGUE.iter().find(|e| e.name == n || e.zone == n)
}

/// Whether `name` is a catalogue list (by name or zone).
pub fn is_known(name: &str) -> bool {
    find_entry(name).is_some()
}

/// The catalogue list `name` (by name or zone); Spamhaus lists go to the DQS zone when a key
/// is given.
pub fn lookup(name: &str, dqs_key: Option<&str>) -> Option<Zone> {
    let e = find_entry(name)?;
    let query_zone = match (e.dqs, dqs_key) {
        (Some(dqs), Some(key)) => format!("{key}.{dqs}.dq.spamhaus.net"),
        _ => e.zone.to_string(),
    };
    let codes = if e.bits.is_empty() {
        Codes::Exact(
            e.exact
                .iter()
                .map(|(c, m)| (Ipv4Addr::from(*c), m.to_string()))
                .collect(),
        )
    } else {
        Codes::Bitmask(e.bits.to_vec())
    };
    Some(Zone {
        name: e.name.to_string(),
        query_zone,
        kind: e.kind,
        codes,
        error_codes: e.errors.iter().map(|c| Ipv4Addr::from(*c)).collect(),
        test_entry: e.test.map(str::to_string),
        ipv6: e.ipv6,
    })
}

/// A `[[dnsbl.custom]]` zone. Codes that don't parse were refused by config validation.
pub fn custom(z: &CustomZone) -> Zone {
    let kind = match z.kind {
        ZoneKind::Ip => ListKind::Ip,
        ZoneKind::Domain => ListKind::Domain,
    };
    Zone {
        name: z.name.0.clone(),
        query_zone: z.zone.trim_end_matches('.').to_ascii_lowercase(),
        kind,
        codes: Codes::Exact(
            z.codes
                .iter()
                .filter_map(|(c, m)| Some((c.parse().ok()?, m.clone())))
                .collect(),
        ),
        error_codes: Vec::new(),
        test_entry: z.test_entry.then(|| match kind {
            ListKind::Ip => "2.0.0.127".to_string(),
            ListKind::Domain => "test".to_string(),
        }),
        ipv6: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn spamhaus_zen_codes() {
        let z = lookup("spamhaus-zen", None).unwrap();
        assert_eq!(z.query_zone, "zen.spamhaus.org");
        assert_eq!(z.meanings(ip("127.0.0.2")), vec!["sbl"]);
        assert_eq!(z.meanings(ip("127.0.0.3")), vec!["css"]);
        assert_eq!(z.meanings(ip("127.0.0.4")), vec!["xbl"]);
        assert_eq!(z.meanings(ip("127.0.0.10")), vec!["pbl-isp"]);
        assert_eq!(z.meanings(ip("127.0.0.11")), vec!["pbl-spamhaus"]);
        assert_eq!(z.meanings(ip("127.0.0.99")), vec!["listed"]);
        assert!(z.ipv6);
        assert_eq!(
            lookup("zen.spamhaus.org.", None).unwrap().name,
            "spamhaus-zen"
        );
    }

    #[test]
    fn dqs_key_changes_the_queried_zone_only() {
        let z = lookup("spamhaus-dbl", Some("abc123")).unwrap();
        assert_eq!(z.query_zone, "abc123.dbl.dq.spamhaus.net");
        assert_eq!(z.name, "spamhaus-dbl");
        assert_eq!(z.kind, ListKind::Domain);
        assert_eq!(z.meanings(ip("127.0.1.2")), vec!["spam"]);
        assert_eq!(z.meanings(ip("127.0.1.104")), vec!["abused-legit-phish"]);
        assert_eq!(z.error_codes, vec![ip("127.0.1.255")]);
        assert_eq!(z.test_entry.as_deref(), Some("dbltest.com"));
        // Non-Spamhaus lists ignore the key.
        assert_eq!(
            lookup("spamcop", Some("abc123")).unwrap().query_zone,
            "bl.spamcop.net"
        );
    }

    #[test]
    fn bitmask_lists() {
        let s = lookup("surbl", None).unwrap();
        assert_eq!(s.meanings(ip("127.0.0.24")), vec!["phishing", "malware"]);
        assert_eq!(s.meanings(ip("127.0.0.64")), vec!["abuse"]);
        let u = lookup("multi.uribl.com", None).unwrap();
        assert_eq!(u.meanings(ip("127.0.0.14")), vec!["black", "grey", "red"]);
        assert_eq!(u.meanings(ip("127.0.0.2")), vec!["black"]);
        assert_eq!(u.meanings(ip("127.0.0.16")), vec!["listed"]);
    }

    #[test]
    fn uceprotect_levels_and_unknown_names() {
        for l in 1..=3 {
            let z = lookup(&format!("uceprotect-{l}"), None).unwrap();
            assert_eq!(z.query_zone, format!("dnsbl-{l}.uceprotect.net"));
            assert_eq!(z.meanings(ip("127.0.0.2")), vec![format!("level-{l}")]);
        }
        assert!(lookup("no-such-list", None).is_none());
        assert!(is_known("barracuda") && is_known("b.barracudacentral.org"));
        assert!(names().contains(&"spamhaus-zen"));
    }

    #[test]
    fn custom_zones() {
        let z = CustomZone {
            name: crate::config::Name("mine".into()),
            zone: "BL.Example.NET.".into(),
            kind: ZoneKind::Domain,
            codes: [("127.0.0.3".to_string(), "bad".to_string())].into(),
            test_entry: true,
        };
        let c = custom(&z);
        assert_eq!(c.query_zone, "bl.example.net");
        assert_eq!(c.test_entry.as_deref(), Some("test"));
        assert_eq!(c.meanings(ip("127.0.0.3")), vec!["bad"]);
        assert_eq!(c.meanings(ip("127.0.0.2")), vec!["listed"]);
    }
}
