//! The DNS record checks against the real Unbound of a private stack instance, serving the
//! test zones of scripts/stack.d/zones/dns-checks.conf: SPF at 9, 10 and 11 lookups, an
//! include loop, three void lookups, two SPF records, a redirect, +all; DKIM keys of 1024 and
//! 2048 bits, ed25519, revoked, behind a CNAME; DMARC inherited from the organizational domain,
//! two records, a bad tag, external rua with and without authorization; MX and null MX;
//! MTA-STS with the policy served by a local HTTPS server (a test CA made with openssl) and an
//! MX that doesn't match it; TLS-RPT. Every case is judged by the metrics it records.
//!
//! All cases share one stack instance (one test function) so the instance is always taken
//! down, also when a case fails. Nothing is sent anywhere but 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Stack, TempDir};
use deliverability_exporter::config::{DnsConfig, Dur};
use deliverability_exporter::dns::mta_sts::FetchOptions;
use deliverability_exporter::dns::records::{self, DomainInput};
use deliverability_exporter::dns::resolver::Resolver;
use deliverability_exporter::dns::spf::{self, Qualifier, Reason, SpfResult};
use deliverability_exporter::metrics::Metrics;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn resolver(port: u16) -> Resolver {
    let cfg = DnsConfig {
        nameservers: vec![format!("127.0.0.1:{port}").parse().unwrap()],
        timeout: Dur(Duration::from_secs(2)),
        attempts: 1,
        interval: Dur(Duration::from_secs(60)),
    };
    Resolver::new(&cfg, 16).expect("resolver")
}

fn input(domain: &str, selectors: &[&str], ips: &[&str], sts: Option<FetchOptions>) -> DomainInput {
    DomainInput {
        domain: domain.into(),
        selectors: selectors.iter().map(|s| s.to_string()).collect(),
        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
        mta_sts: sts,
    }
}

/// Checks a domain and records it into fresh metrics.
async fn check(dns: &Resolver, i: &DomainInput) -> (Metrics, Vec<(String, String)>) {
    let m = Metrics::bare();
    let r = records::check_domain(dns, i).await;
    let f = records::record(&m.dns, &r, None, 1.0)
        .into_iter()
        .map(|(c, r, _)| (c.to_string(), r.to_string()))
        .collect();
    (m, f)
}

fn has(f: &[(String, String)], check: &str, reason: &str) -> bool {
    f.iter().any(|(c, r)| c == check && r == reason)
}

/// A CA and a server certificate for the MTA-STS policy hosts, made with openssl.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (installed with the stack)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=dx dns test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=mta-sts.good.dc.test",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:mta-sts.good.dc.test,DNS:mta-sts.stsbad.dc.test\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "leaf.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

/// An HTTPS server on 127.0.0.1 serving a policy per SNI name; returns its port.
async fn policy_server(cert: &Path, key: &Path) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let ok_path = req.starts_with(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n");
                let body = match sni.as_str() {
                    "mta-sts.good.dc.test" => {
                        "version: STSv1\r\nmode: enforce\r\nmx: mx1.good.dc.test\r\nmx: *.good.dc.test\r\nmax_age: 86400\r\n"
                    }
                    _ => {
                        "version: STSv1\r\nmode: testing\r\nmx: mx1.stsbad.dc.test\r\nmax_age: 604800\r\n"
                    }
                };
                let resp = if ok_path {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[test]
fn dns_record_checks_against_the_local_unbound() {
    let stack = Stack::start("dnsrec", &[]);
    let port = stack.port("DX_DNS_PORT");
    let tmp = TempDir::new("dnsrec-certs");
    let (ca, cert, key) = make_certs(tmp.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dns = resolver(port);
        spf_cases(&dns).await;
        dkim_cases(&dns).await;
        dmarc_cases(&dns).await;
        mx_cases(&dns).await;
        let https = policy_server(&cert, &key).await;
        mta_sts_cases(&dns, https, &ca).await;
    });
}

async fn spf_cases(dns: &Resolver) {
    for (n, ok) in [(9, true), (10, true), (11, false)] {
        let d = format!("spf{n}.dc.test");
        let rep = spf::analyze(dns, &d).await;
        assert_eq!(rep.lookups, n, "{d}: {rep:?}");
        assert_eq!(rep.ok(), ok, "{d}: {:?}", rep.problems);
        // The last include allows 192.0.2.<n>: reaching it passes, except past the limit.
        let ip = format!("192.0.2.{n}");
        let (m, f) = check(dns, &input(&d, &[], &[&ip, "192.0.2.9"], None)).await;
        assert_eq!(m.dns.spf_lookups.with_label_values(&[&d]).get(), n as i64);
        assert_eq!(
            m.dns.check_success.with_label_values(&[&d, "spf"]).get(),
            i64::from(ok),
            "{d}"
        );
        assert_eq!(has(&f, "spf", "lookup_limit"), !ok, "{d}: {f:?}");
        assert_eq!(
            m.dns.spf_pass.with_label_values(&[&d, &ip]).get(),
            i64::from(ok),
            "{d}"
        );
        if !ok {
            assert_eq!(
                m.dns
                    .spf_result
                    .with_label_values(&[&d, &ip, "permerror"])
                    .get(),
                1
            );
        }
        // Receivers stop at the first match: the 9th include passes before the limit is hit.
        assert_eq!(
            m.dns.spf_pass.with_label_values(&[&d, "192.0.2.9"]).get(),
            1,
            "{d}"
        );
    }

    let (m, f) = check(dns, &input("loop.dc.test", &[], &["192.0.2.1"], None)).await;
    assert!(has(&f, "spf", "include_loop"), "{f:?}");
    assert_eq!(
        m.dns
            .spf_result
            .with_label_values(&["loop.dc.test", "192.0.2.1", "permerror"])
            .get(),
        1
    );

    let (m, f) = check(dns, &input("void.dc.test", &[], &["192.0.2.1"], None)).await;
    assert!(has(&f, "spf", "void_limit"), "{f:?}");
    assert_eq!(
        m.dns
            .spf_void_lookups
            .with_label_values(&["void.dc.test"])
            .get(),
        3
    );
    assert_eq!(
        m.dns
            .spf_pass
            .with_label_values(&["void.dc.test", "192.0.2.1"])
            .get(),
        0,
        "permerror before ip4"
    );

    let (m, f) = check(dns, &input("twospf.dc.test", &[], &["192.0.2.1"], None)).await;
    assert!(has(&f, "spf", "multiple_records"), "{f:?}");
    assert_eq!(
        m.dns
            .spf_pass
            .with_label_values(&["twospf.dc.test", "192.0.2.1"])
            .get(),
        0
    );

    let (m, f) = check(
        dns,
        &input(
            "redirect.dc.test",
            &[],
            &["198.51.100.7", "203.0.113.1"],
            None,
        ),
    )
    .await;
    assert!(
        !f.iter().any(|(c, r)| c == "spf" && r != "ip_not_permitted"),
        "{f:?}"
    );
    assert_eq!(
        m.dns
            .spf_all
            .with_label_values(&["redirect.dc.test", "softfail"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .spf_pass
            .with_label_values(&["redirect.dc.test", "198.51.100.7"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .spf_result
            .with_label_values(&["redirect.dc.test", "203.0.113.1", "softfail"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .spf_lookups
            .with_label_values(&["redirect.dc.test"])
            .get(),
        1
    );

    let (m, f) = check(dns, &input("plusall.dc.test", &[], &[], None)).await;
    assert!(has(&f, "spf", "pass_all"), "{f:?}");
    assert_eq!(
        m.dns
            .spf_all
            .with_label_values(&["plusall.dc.test", "pass"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .check_success
            .with_label_values(&["plusall.dc.test", "spf"])
            .get(),
        0
    );

    let rep = spf::analyze(dns, "good.dc.test").await;
    assert!(rep.ok(), "{:?}", rep.problems);
    assert_eq!(rep.all, Some(Qualifier::Fail));
    assert_eq!(
        spf::check_host(dns, "127.0.0.1".parse().unwrap(), "good.dc.test").await,
        SpfResult::Pass
    );
    assert_eq!(
        spf::check_host(dns, "203.0.113.9".parse().unwrap(), "good.dc.test").await,
        SpfResult::Fail
    );
    assert!(
        spf::analyze(dns, "loop.dc.test")
            .await
            .problems
            .iter()
            .any(|p| p.reason == Reason::IncludeLoop)
    );
}

async fn dkim_cases(dns: &Resolver) {
    let sels = ["k1024", "k2048", "ed", "revoked", "esp", "missing"];
    let (m, f) = check(dns, &input("good.dc.test", &sels, &["127.0.0.1"], None)).await;
    let d = &m.dns;
    assert_eq!(
        d.dkim_bits
            .with_label_values(&["good.dc.test", "k1024", "rsa"])
            .get(),
        1024
    );
    assert_eq!(
        d.dkim_bits
            .with_label_values(&["good.dc.test", "k2048", "rsa"])
            .get(),
        2048
    );
    assert_eq!(
        d.dkim_testing
            .with_label_values(&["good.dc.test", "k2048"])
            .get(),
        1
    );
    assert_eq!(
        d.dkim_testing
            .with_label_values(&["good.dc.test", "k1024"])
            .get(),
        0
    );
    assert_eq!(
        d.dkim_bits
            .with_label_values(&["good.dc.test", "ed", "ed25519"])
            .get(),
        256
    );
    assert_eq!(
        d.dkim_revoked
            .with_label_values(&["good.dc.test", "revoked"])
            .get(),
        1
    );
    assert_eq!(
        d.dkim_revoked
            .with_label_values(&["good.dc.test", "k2048"])
            .get(),
        0
    );
    assert_eq!(
        d.dkim_bits
            .with_label_values(&["good.dc.test", "esp", "rsa"])
            .get(),
        2048,
        "CNAME followed"
    );
    assert!(
        has(&f, "dkim", "revoked") && has(&f, "dkim", "no_record"),
        "{f:?}"
    );
    assert_eq!(
        d.check_success
            .with_label_values(&["good.dc.test", "dkim"])
            .get(),
        0
    );
    let r = records::check_domain(dns, &input("good.dc.test", &["esp"], &[], None)).await;
    assert_eq!(r.dkim[0].cnames, vec!["s1.keys.esp.dc.test".to_string()]);
    let (m, f) = check(
        dns,
        &input("good.dc.test", &["k2048", "ed"], &["127.0.0.1"], None),
    )
    .await;
    assert!(f.is_empty(), "good.dc.test with good selectors: {f:?}");
    for c in ["spf", "dkim", "dmarc", "mx", "tls_rpt"] {
        assert_eq!(
            m.dns
                .check_success
                .with_label_values(&["good.dc.test", c])
                .get(),
            1,
            "{c}"
        );
    }
}

async fn dmarc_cases(dns: &Resolver) {
    let (m, f) = check(dns, &input("mail.good.dc.test", &[], &[], None)).await;
    let d = &m.dns;
    assert!(!f.iter().any(|(c, _)| c == "dmarc"), "{f:?}");
    assert_eq!(
        d.dmarc_inherited
            .with_label_values(&["mail.good.dc.test"])
            .get(),
        1
    );
    assert_eq!(
        d.dmarc_policy
            .with_label_values(&["mail.good.dc.test", "quarantine"])
            .get(),
        1,
        "the parent's sp"
    );
    assert_eq!(
        d.dmarc_policy
            .with_label_values(&["mail.good.dc.test", "reject"])
            .get(),
        0
    );
    let (m, _) = check(dns, &input("good.dc.test", &[], &[], None)).await;
    assert_eq!(
        m.dns
            .dmarc_policy
            .with_label_values(&["good.dc.test", "reject"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .dmarc_subdomain_policy
            .with_label_values(&["good.dc.test", "quarantine"])
            .get(),
        1
    );
    assert_eq!(
        m.dns.dmarc_pct.with_label_values(&["good.dc.test"]).get(),
        100
    );
    assert_eq!(
        m.dns
            .dmarc_inherited
            .with_label_values(&["good.dc.test"])
            .get(),
        0
    );
    assert_eq!(
        m.dns
            .dmarc_rua_authorized
            .with_label_values(&["good.dc.test", "good.dc.test"])
            .get(),
        1
    );

    let (m, f) = check(dns, &input("twodmarc.dc.test", &[], &[], None)).await;
    assert!(has(&f, "dmarc", "multiple_records"), "{f:?}");
    assert_eq!(
        m.dns
            .dmarc_policy
            .with_label_values(&["twodmarc.dc.test", "none"])
            .get(),
        0
    );
    let r = records::check_domain(dns, &input("badtag.dc.test", &[], &[], None)).await;
    let msg = r
        .findings()
        .into_iter()
        .find(|(c, _, _)| *c == "dmarc")
        .unwrap();
    assert_eq!(msg.1, "syntax");
    assert!(
        msg.2.contains("p=\"rejekt\""),
        "the tag is named: {}",
        msg.2
    );

    let (m, f) = check(dns, &input("extauth.dc.test", &[], &[], None)).await;
    assert!(!has(&f, "dmarc", "unauthorized_destination"), "{f:?}");
    assert_eq!(
        m.dns
            .dmarc_rua_authorized
            .with_label_values(&["extauth.dc.test", "reports.dc-ext.test"])
            .get(),
        1
    );
    let (m, f) = check(dns, &input("noauth.dc.test", &[], &[], None)).await;
    assert!(has(&f, "dmarc", "unauthorized_destination"), "{f:?}");
    assert_eq!(
        m.dns
            .dmarc_rua_authorized
            .with_label_values(&["noauth.dc.test", "reports.dc-ext.test"])
            .get(),
        0
    );
    assert_eq!(
        m.dns
            .check_success
            .with_label_values(&["noauth.dc.test", "dmarc"])
            .get(),
        0
    );
}

async fn mx_cases(dns: &Resolver) {
    let (m, f) = check(dns, &input("good.dc.test", &[], &[], None)).await;
    assert_eq!(
        m.dns.mx_records.with_label_values(&["good.dc.test"]).get(),
        2
    );
    assert!(!f.iter().any(|(c, _)| c == "mx"), "{f:?}");
    let (m, f) = check(dns, &input("nullmx.dc.test", &[], &[], None)).await;
    assert!(has(&f, "mx", "null_mx"), "{f:?}");
    assert_eq!(
        m.dns
            .mx_records
            .with_label_values(&["nullmx.dc.test"])
            .get(),
        0
    );
    assert_eq!(
        m.dns
            .check_success
            .with_label_values(&["nullmx.dc.test", "mx"])
            .get(),
        0
    );
    let (_, f) = check(dns, &input("spf9.dc.test", &[], &[], None)).await;
    assert!(
        has(&f, "mx", "no_mx") && has(&f, "tls_rpt", "no_record"),
        "{f:?}"
    );
}

async fn mta_sts_cases(dns: &Resolver, port: u16, ca: &Path) {
    let opts = |ca: Option<&Path>| {
        Some(FetchOptions {
            port,
            ca_file: ca.map(Path::to_path_buf),
            timeout: Duration::from_secs(5),
        })
    };
    let (m, f) = check(
        dns,
        &input("good.dc.test", &["ed"], &["127.0.0.1"], opts(Some(ca))),
    )
    .await;
    assert!(f.is_empty(), "{f:?}");
    assert_eq!(
        m.dns
            .mta_sts_mode
            .with_label_values(&["good.dc.test", "enforce"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .mta_sts_max_age
            .with_label_values(&["good.dc.test"])
            .get(),
        86400.0
    );
    assert_eq!(
        m.dns
            .check_success
            .with_label_values(&["good.dc.test", "mta_sts"])
            .get(),
        1
    );

    let (m, f) = check(dns, &input("stsbad.dc.test", &[], &[], opts(Some(ca)))).await;
    assert!(has(&f, "mta_sts", "mx_mismatch"), "{f:?}");
    assert_eq!(
        m.dns
            .mta_sts_mode
            .with_label_values(&["stsbad.dc.test", "testing"])
            .get(),
        1
    );
    assert_eq!(
        m.dns
            .check_success
            .with_label_values(&["stsbad.dc.test", "mta_sts"])
            .get(),
        0
    );

    // Without the test CA the certificate is not trusted.
    let (m, f) = check(dns, &input("good.dc.test", &["ed"], &[], opts(None))).await;
    assert!(has(&f, "mta_sts", "certificate"), "{f:?}");
    assert_eq!(
        m.dns
            .mta_sts_mode
            .with_label_values(&["good.dc.test", "enforce"])
            .get(),
        0
    );
    // No record at all.
    let (_, f) = check(dns, &input("nullmx.dc.test", &[], &[], opts(Some(ca)))).await;
    assert!(has(&f, "mta_sts", "no_record"), "{f:?}");
}
