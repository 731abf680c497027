//! Whole header blocks: the project's own fixtures (`tests/fixtures/headers/`, written for
//! these tests in the shapes Gmail, Microsoft 365, Stalwart, a Postfix relay with
//! SpamAssassin and the local Postfix + rspamd stack write), and every file of the shared
//! real-world samples (`../shared/samples/headers/`, skipped with a note when absent), each
//! with what a correct reader must find in it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;

/// 2026-11-29T04:35:59Z, the canaries' send time in the fixtures.
const T: i64 = 1_795_926_959;
/// 2026-04-01T10:00:00Z, the date in the shared samples.
const APRIL: i64 = 1_775_037_600;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Results as `method=result [reason=...] key=value ...`, for readable assertions.
fn render(results: &[ResInfo]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            let mut s = format!("{}={}", r.method.as_str(), r.result.as_str());
            if let Some(reason) = &r.reason {
                s.push_str(&format!(" reason={reason}"));
            }
            for p in &r.properties {
                s.push_str(&format!(" {}={}", p.key, p.value));
            }
            s
        })
        .collect()
}

/// Hops as `from [ip] by host with proto id x @date`, `-` for what is missing.
fn render_hops(hops: &[Hop]) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    hops.iter()
        .map(|h| {
            format!(
                "{} [{}] by {} with {} id {} @{}",
                o(&h.from_host),
                h.ip.map_or("-".into(), |ip| ip.to_string()),
                o(&h.by_host),
                o(&h.with),
                o(&h.id),
                h.date.map_or("-".into(), |d| d.to_string()),
            )
        })
        .collect()
}

fn spam(v: &[SpamVerdict]) -> Vec<(&'static str, Option<f64>, Option<bool>)> {
    v.iter()
        .map(|v| (v.source.as_str(), v.score, v.is_spam))
        .collect()
}

fn sigs(v: &[DkimSignature]) -> Vec<String> {
    v.iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s.domain,
                s.selector,
                s.algorithm.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/headers/",
            $name
        ))
    };
}

#[test]
fn gmail_inbox() {
    let h = parse(fixture!("gmail_inbox.eml"), Some("mx.google.com"));
    assert_eq!(h.token.as_deref(), Some("dx-k7m2p4q6r3s5t2v4w6x7"));
    assert_eq!(h.auth.authserv_id.as_deref(), Some("mx.google.com"));
    assert_eq!(h.auth.trusted_headers, 1);
    assert_eq!(
        render(&h.auth.results),
        [
            "dkim=pass header.i=@shop.example header.s=dx2026 header.b=K3mQ1a2B",
            "dkim=pass header.i=@sendinblue.com header.s=mail header.b=Zz9yX8wV",
            "spf=pass smtp.mailfrom=bounces-1234@esp-bounce.example",
            "dmarc=pass header.from=shop.example",
        ]
    );
    assert_eq!(
        sigs(&h.dkim_signatures),
        [
            "shop.example dx2026 rsa-sha256",
            "sendinblue.com mail rsa-sha256"
        ]
    );
    assert_eq!(spam(&h.spam), [], "Gmail writes no score");
    assert_eq!(
        render_hops(&h.hops),
        [
            format!(
                "- [-] by 2002:a05:7010:e40e:b0:6d1:2b3c:4d5e with SMTP id x9csp1043851mdf @{}",
                T + 2
            ),
            format!(
                "m231.esp-mail.example [185.107.232.231] by mx.google.com with ESMTPS id 6a1803df08f44-6e2c1a2b3c4si1234567d6.310.2026.11.28.20.36.00 @{}",
                T + 1
            ),
        ]
    );
    assert_eq!(h.received_at(), Some(T + 2));
    assert_eq!(h.spf_client_ip, Some(ip("185.107.232.231")));
    assert_eq!(
        sending_ip(&h.hops, Some("mx.google.com")),
        Some(ip("185.107.232.231"))
    );
    assert_eq!(h.sending_ip(), Some(ip("185.107.232.231")));
}

#[test]
fn local_stack_junk() {
    let h = parse(fixture!("local_stack_junk.eml"), Some("mx.seed.test"));
    assert_eq!(h.token.as_deref(), Some("dx-aaaabbbbccccddddeeee"));
    assert_eq!(h.auth.authserv_id.as_deref(), Some("mx.seed.test"));
    // The lower header claims the same authserv-id; the topmost one decides each method.
    assert_eq!(h.auth.trusted_headers, 2);
    assert_eq!(
        render(&h.auth.results),
        [
            "dkim=pass header.d=dx.test header.s=dx header.b=dGVzdGtl",
            "spf=pass smtp.mailfrom=canary@dx.test",
            "dmarc=pass header.from=dx.test",
        ]
    );
    assert_eq!(sigs(&h.dkim_signatures), ["dx.test dx rsa-sha256"]);
    assert_eq!(spam(&h.spam), [("rspamd", Some(14.1), Some(true))]);
    assert_eq!(
        render_hops(&h.hops),
        [
            format!("mx.seed.test [-] by imap.seed.test with LMTP id 8JxOBq9Fa2kcWgAAvKL2mQ @{T}"),
            format!("localhost [127.0.0.1] by mx.seed.test with ESMTP id 4dKq1h0m2Rz3wTn @{T}"),
            format!(
                "localhost [127.0.0.1] by smtp.dx.test with ESMTPSA id 4dKq1g6vNnz3wTm @{}",
                T - 1
            ),
        ]
    );
    assert_eq!(h.received_at(), Some(T));
    assert_eq!(h.sending_ip(), None, "all on loopback");
}

#[test]
fn outlook_junk() {
    let h = parse(fixture!("outlook_junk.eml"), None);
    assert_eq!(
        h.token.as_deref(),
        Some("dx-mnopqrstuvwxyz234567"),
        "from the base64-encoded Subject"
    );
    assert_eq!(h.auth.authserv_id, None);
    assert_eq!(h.auth.trusted_headers, 1);
    assert_eq!(
        render(&h.auth.results),
        [
            "spf=pass smtp.mailfrom=amazonses.example",
            "dkim=pass header.d=shop.example",
            "dkim=pass header.d=amazonses.example",
            "dmarc=pass action=none header.from=shop.example",
            "compauth=pass reason=100",
        ]
    );
    assert_eq!(
        sigs(&h.dkim_signatures),
        [
            "shop.example ug7nbtf4gccmlpwj322ax3p6ow6yfsug rsa-sha256",
            "amazonses.example 6gbrjpgwjskckoa6a5zn6fwqkn67xbtw rsa-sha256"
        ]
    );
    assert_eq!(spam(&h.spam), [("microsoft_scl", Some(5.0), Some(true))]);
    assert_eq!(
        render_hops(&h.hops),
        [
            format!(
                "db9p194mb1234.eurp194.prod.outlook.com [2603:10a6:10:4f1::9] by pa4p194mb5678.eurp194.prod.outlook.com with HTTPS id - @{}",
                T + 3
            ),
            format!(
                "as9pr06ca0123.eurprd06.prod.outlook.com [2603:10a6:20b:45a::21] by db9p194mb1234.eurp194.prod.outlook.com with Microsoft id 15.20.8207.18 @{}",
                T + 2
            ),
            format!(
                "ams0epf000001a0.eurprd05.prod.outlook.com [2603:10a6:20b:45a:cafe::4b] by as9pr06ca0123.outlook.office365.com with Microsoft id 15.20.8207.18 @{}",
                T + 2
            ),
            format!(
                "a3-17.smtp-out.amazonses.example [54.240.3.17] by ams0epf000001a0.mail.protection.outlook.com with Microsoft id 15.20.8207.18 @{}",
                T + 1
            ),
        ]
    );
    // Microsoft's internal hops have public addresses: the chain alone names the wrong one,
    // the SPF client IP confirmed by a hop names the right one.
    assert_eq!(sending_ip(&h.hops, None), Some(ip("2603:10a6:10:4f1::9")));
    assert_eq!(h.spf_client_ip, Some(ip("54.240.3.17")));
    assert_eq!(h.sending_ip(), Some(ip("54.240.3.17")));
}

#[test]
fn relay_with_spamassassin_and_split_results() {
    for expected in [Some("mail.corp.example"), None] {
        let h = parse(fixture!("relay_spamassassin.eml"), expected);
        assert_eq!(h.token.as_deref(), Some("dx-abcdefghijklmnop2345"));
        assert_eq!(h.auth.authserv_id.as_deref(), Some("mail.corp.example"));
        assert_eq!(h.auth.trusted_headers, 3, "{expected:?}");
        assert_eq!(
            render(&h.auth.results),
            [
                "dmarc=pass header.from=mailer.example.net",
                "spf=pass smtp.mailfrom=mailer.example.net",
                "dkim=pass header.d=mailer.example.net header.i=@mailer.example.net header.a=rsa-sha256 header.s=k1 header.b=Ab12Cd34",
                "dkim-atps=neutral",
                "arc=none",
            ],
            "{expected:?}"
        );
        assert_eq!(
            h.auth.results.last().map(|r| r.origin),
            Some(Origin::ArcAuthenticationResults)
        );
        assert_eq!(
            sigs(&h.dkim_signatures),
            ["mailer.example.net k1 rsa-sha256"]
        );
        assert_eq!(spam(&h.spam), [("spamassassin", Some(1.3), Some(false))]);
        assert_eq!(
            render_hops(&h.hops),
            [
                format!(
                    "mail.corp.example [::1] by imap.corp.example with ESMTP id 9B1F2C0123 @{}",
                    T + 6
                ),
                format!(
                    "out.mailer.example.net [2a01:4f8:c0c:1234::1] by mail.corp.example with ESMTPS id 4C2D1A0456 @{}",
                    T + 5
                ),
                format!(
                    "app.internal [10.20.30.40] by out.mailer.example.net with ESMTP id 1abc @{}",
                    T + 4
                ),
            ]
        );
        assert_eq!(h.sending_ip(), Some(ip("2a01:4f8:c0c:1234::1")));
    }
}

#[test]
fn stalwart_inbox() {
    let h = parse(fixture!("stalwart_inbox.eml"), Some("mx.stalwart.example"));
    assert_eq!(h.token.as_deref(), Some("dx-zzzzyyyyxxxxwwwwvvvv"));
    assert_eq!(
        render(&h.auth.results),
        [
            "dkim=pass header.d=provider.example header.s=202611 header.b=Xy12AbCd",
            "spf=pass smtp.mailfrom=bounce@provider.example smtp.helo=smtp.provider.example",
            "arc=none",
            "dmarc=pass header.from=provider.example policy.dmarc=reject",
            "iprev=pass policy.iprev=91.198.174.10",
        ]
    );
    assert_eq!(
        sigs(&h.dkim_signatures),
        ["provider.example 202611 ed25519-sha256"]
    );
    assert_eq!(spam(&h.spam), [("stalwart", Some(-3.9), Some(false))]);
    assert_eq!(
        render_hops(&h.hops),
        [format!(
            "smtp.provider.example [91.198.174.10] by mx.stalwart.example with ESMTPS id 3D0E7C2A1B9F4E21 @{}",
            T + 1
        )]
    );
    assert_eq!(h.sending_ip(), Some(ip("91.198.174.10")));
    let wrong_id = parse(fixture!("stalwart_inbox.eml"), Some("mx.google.com"));
    assert_eq!(wrong_id.auth.trusted_headers, 0);
    assert_eq!(
        render(&wrong_id.auth.results),
        [
            "spf=pass receiver=mx.stalwart.example client-ip=91.198.174.10 smtp.mailfrom=bounce@provider.example smtp.helo=smtp.provider.example"
        ],
        "only the Received-SPF fallback"
    );
}

/// What a correct reader finds in each shared sample, by path under the samples folder.
fn check_sample(rel: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let ar = || parse_authentication_results(text.trim());
    let h = || parse(bytes, None);
    match rel {
        "auth_results/gmail.txt" => {
            let r = ar();
            assert_eq!(r.authserv_id.as_deref(), Some("mx.google.com"));
            assert_eq!(
                render(&r.results),
                [
                    "spf=pass smtp.mailfrom=probe@example.org",
                    "dkim=pass header.i=@example.org",
                    "dmarc=pass header.from=example.org",
                ]
            );
        }
        "auth_results/minimal.txt" => {
            let r = ar();
            assert_eq!(r.authserv_id.as_deref(), Some("mail.example.org"));
            assert_eq!(
                render(&r.results),
                ["spf=softfail", "dkim=none", "dmarc=none"]
            );
        }
        "received_chains/simple.eml" => {
            let h = h();
            assert_eq!(
                render_hops(&h.hops),
                [format!(
                    "mta.sender.example [198.51.100.7] by mx.receiver.example with ESMTPS id ABC123 @{APRIL}"
                )]
            );
            assert_eq!(h.received_at(), Some(APRIL));
            // 198.51.100.0/24 is a documentation range: no public sending IP.
            assert_eq!(sending_ip(&h.hops, Some("mx.receiver.example")), None);
            assert_eq!(h.token, None);
            assert!(h.auth.results.is_empty() && h.spam.is_empty());
        }
        "received_chains/multi-hop.eml" => {
            let h = h();
            assert_eq!(
                render_hops(&h.hops),
                [
                    format!(
                        "internal.receiver.example [127.0.0.1] by mx2.receiver.example with ESMTP id DEF456 @{}",
                        APRIL + 2
                    ),
                    format!(
                        "mta.sender.example [203.0.113.9] by mx.receiver.example with ESMTPS id ABC123 @{APRIL}"
                    ),
                ]
            );
            assert_eq!(h.received_at(), Some(APRIL + 2), "the topmost hop's date");
            assert_eq!(sending_ip(&h.hops, Some("mx.receiver.example")), None);
        }
        "received_chains/ipv6.eml" => {
            let h = h();
            assert_eq!(
                render_hops(&h.hops),
                [format!(
                    "v6.sender.example [2001:db8::1] by mx.receiver.example with ESMTPS id GHI789 @{APRIL}"
                )]
            );
            assert!(!is_public(ip("2001:db8::1")));
        }
        "spam_headers/barracuda.eml" => {
            assert_eq!(spam(&h().spam), [("barracuda", Some(2.3), Some(false))]);
        }
        "spam_headers/gmail.eml" => {
            assert_eq!(spam(&h().spam), [("gmail", None, Some(false))]);
        }
        "spam_headers/microsoft.eml" => {
            assert_eq!(spam(&h().spam), [("microsoft_scl", Some(1.0), Some(false))]);
        }
        "spam_headers/rspamd.eml" => {
            // `default: False` is "not rejected", no verdict.
            assert_eq!(spam(&h().spam), [("rspamd", Some(3.5), None)]);
        }
        "spam_headers/spamassassin.eml" => {
            assert_eq!(spam(&h().spam), [("spamassassin", Some(7.2), Some(true))]);
        }
        "spam_headers/stalwart.eml" => {
            assert_eq!(spam(&h().spam), [("stalwart", Some(3.5), None)]);
        }
        other => panic!("no expectation for the shared sample {other}: add one"),
    }
}

const SAMPLES_CHECKED: [&str; 11] = [
    "auth_results/gmail.txt",
    "auth_results/minimal.txt",
    "received_chains/ipv6.eml",
    "received_chains/multi-hop.eml",
    "received_chains/simple.eml",
    "spam_headers/barracuda.eml",
    "spam_headers/gmail.eml",
    "spam_headers/microsoft.eml",
    "spam_headers/rspamd.eml",
    "spam_headers/spamassassin.eml",
    "spam_headers/stalwart.eml",
];

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read the samples folder") {
            let p = e.expect("read a samples entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shared_sample_reads_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/headers");
    if !dir.is_dir() {
        eprintln!(
            "skipped: the shared header samples are absent ({})",
            dir.display()
        );
        return;
    }
    let mut seen = BTreeSet::new();
    for path in files_under(&dir) {
        let rel = path
            .strip_prefix(&dir)
            .expect("under the samples folder")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&path).expect("read a sample");
        check_sample(&rel, &bytes);
        seen.insert(rel);
    }
    let expected: BTreeSet<String> = SAMPLES_CHECKED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        seen, expected,
        "every sample checked, every check has its sample"
    );
}
