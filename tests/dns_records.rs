//! The DNS record checks against the real Unbound of a private stack instance, serving the
//! test zones of scripts/stack.d/zones/dns-checks.conf: SPF at 9, 10 and 11 lookups, an
//! include loop, three void lookups, two SPF records, a redirect, +all; DKIM keys of 1024 and
//! 2048 bits, ed25519, revoked, behind a CNAME; DMARC inherited from the organizational domain,
//! two records, a bad tag, external rua with and without authorization; MX and null MX;
//! MTA-STS with the policy served by a local HTTPS server (a test CA made with openssl) and an
//! MX that doesn't match it; TLS-RPT. Every case is judged by the metrics it records.
//!
//! Each case is its own test; the tests running at the same time share one stack instance
//! (`common::Shared`), taken down when the last of them ends, also when a case fails. Nothing
//! is sent anywhere but 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Shared, Stack, TempDir};
use deliverability_exporter::config::{DnsConfig, Dur};
use deliverability_exporter::dns::mta_sts::FetchOptions;
use deliverability_exporter::dns::records::{self, DomainInput};
use deliverability_exporter::dns::spf::{self, Qualifier, Reason, SpfResult};
use deliverability_exporter::metrics::Metrics;
use deliverability_exporter::resolver::Resolver;
use prometheus::core::Collector;
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
        .map(|f| (f.check.to_string(), f.reason.to_string()))
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

/// The stack and the MTA-STS test certificates, shared by the cases running at the same time.
struct Env {
    stack: Stack,
    _certs: TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

static ENV: Shared<Env> = Shared::new();

/// Runs one case against the shared stack's Unbound.
fn case<F, Fut>(f: F)
where
    F: FnOnce(Resolver, Arc<Env>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let env = ENV.get(|| {
        let stack = Stack::start("dnsrec", &[]);
        let certs = TempDir::new("dnsrec-certs");
        let (ca, cert, key) = make_certs(certs.path());
        Env {
            stack,
            _certs: certs,
            ca,
            cert,
            key,
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dns = resolver(env.stack.port("DX_DNS_PORT"));
    rt.block_on(f(dns, env.clone()));
}

#[test]
fn spf_lookup_limit_at_9_10_11_lookups() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn spf_include_loop() {
    case(|dns, _env| async move {
        let dns = &dns;
        let (m, f) = check(dns, &input("loop.dc.test", &[], &["192.0.2.1"], None)).await;
        assert!(has(&f, "spf", "include_loop"), "{f:?}");
        assert_eq!(
            m.dns
                .spf_result
                .with_label_values(&["loop.dc.test", "192.0.2.1", "permerror"])
                .get(),
            1
        );
    });
}

#[test]
fn spf_void_lookup_limit() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn spf_two_records() {
    case(|dns, _env| async move {
        let dns = &dns;
        let (m, f) = check(dns, &input("twospf.dc.test", &[], &["192.0.2.1"], None)).await;
        assert!(has(&f, "spf", "multiple_records"), "{f:?}");
        assert_eq!(
            m.dns
                .spf_pass
                .with_label_values(&["twospf.dc.test", "192.0.2.1"])
                .get(),
            0
        );
    });
}

#[test]
fn spf_redirect() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn spf_plus_all() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn spf_check_host_on_a_good_domain() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn dkim_keys_sizes_revoked_cname_and_missing() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn dmarc_inherited_and_own_policy() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn dmarc_two_records_and_bad_tag() {
    case(|dns, _env| async move {
        let dns = &dns;
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
            .find(|f| f.check == "dmarc")
            .unwrap();
        assert_eq!(msg.reason, "syntax");
        assert!(
            msg.message.contains("p=\"rejekt\""),
            "the tag is named: {}",
            msg.message
        );
    });
}

#[test]
fn mx_and_null_mx() {
    case(|dns, _env| async move {
        let dns = &dns;
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
    });
}

#[test]
fn mta_sts_good_policy() {
    case(|dns, env| async move {
        let dns = &dns;
        let port = policy_server(&env.cert, &env.key).await;
        let ca = env.ca.as_path();
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
        let mx: Vec<(String, i64)> = m
            .dns
            .mta_sts_mx_mismatch
            .collect()
            .iter()
            .flat_map(|f| f.get_metric().to_vec())
            .map(|s| {
                let host = s.get_label().iter().find(|p| p.name() == "mx").unwrap();
                (host.value().to_string(), s.get_gauge().get_value() as i64)
            })
            .collect();
        assert_eq!(mx.len(), 2, "each MX of good.dc.test compared: {mx:?}");
        assert!(mx.iter().all(|(_, v)| *v == 0), "{mx:?}");
        assert_eq!(
            m.dns
                .check_success
                .with_label_values(&["good.dc.test", "mta_sts"])
                .get(),
            1
        );
    });
}

#[test]
fn mta_sts_policy_not_matching_mx() {
    case(|dns, env| async move {
        let dns = &dns;
        let port = policy_server(&env.cert, &env.key).await;
        let ca = env.ca.as_path();
        let opts = |ca: Option<&Path>| {
            Some(FetchOptions {
                port,
                ca_file: ca.map(Path::to_path_buf),
                timeout: Duration::from_secs(5),
            })
        };
        let (m, f) = check(dns, &input("stsbad.dc.test", &[], &[], opts(Some(ca)))).await;
        assert!(has(&f, "mta_sts", "mx_mismatch"), "{f:?}");
        assert_eq!(
            m.dns
                .mta_sts_mx_mismatch
                .with_label_values(&["stsbad.dc.test", "mx.elsewhere.dc.test"])
                .get(),
            1,
            "the MX the policy does not list (alerts/dns.yml reads this family)"
        );
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
    });
}

#[test]
fn mta_sts_untrusted_certificate_and_no_record() {
    case(|dns, env| async move {
        let dns = &dns;
        let port = policy_server(&env.cert, &env.key).await;
        let ca = env.ca.as_path();
        let opts = |ca: Option<&Path>| {
            Some(FetchOptions {
                port,
                ca_file: ca.map(Path::to_path_buf),
                timeout: Duration::from_secs(5),
            })
        };
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
    });
}

/// The `destination` values of `deliverability_dmarc_rua_authorized` for a domain.
fn destinations(m: &Metrics, domain: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for fam in m.dns.dmarc_rua_authorized.collect() {
        for s in fam.get_metric() {
            let l = |n: &str| {
                s.get_label()
                    .iter()
                    .find(|p| p.name() == n)
                    .map(|p| p.value().to_string())
            };
            if l("domain").as_deref() == Some(domain) {
                out.push((l("destination").unwrap(), s.get_gauge().get_value() as i64));
            }
        }
    }
    out
}

#[test]
fn dmarc_external_destination_authorized() {
    case(|dns, _env| async move {
        let (m, f) = check(&dns, &input("extauth.dc.test", &[], &[], None)).await;
        assert!(!f.iter().any(|(c, _)| c == "dmarc"), "{f:?}");
        assert_eq!(
            destinations(&m, "extauth.dc.test"),
            vec![("reports.dc-ext.test".to_string(), 1)]
        );
        assert_eq!(
            m.dns
                .check_success
                .with_label_values(&["extauth.dc.test", "dmarc"])
                .get(),
            1
        );
    });
}

/// RFC 7489 §7.1: receivers apply a record whose external destination is not authorized (they
/// only send it no reports). The finding is counted, the destination shows 0, and the record
/// check stays successful — for the domain and for a subdomain inheriting its record.
#[test]
fn dmarc_unauthorized_external_destination_is_a_warning() {
    case(|dns, _env| async move {
        for domain in ["noauth.dc.test", "sub.noauth.dc.test"] {
            let (m, f) = check(&dns, &input(domain, &[], &[], None)).await;
            assert!(has(&f, "dmarc", "unauthorized_destination"), "{f:?}");
            assert_eq!(
                destinations(&m, domain),
                vec![("reports.dc-ext.test".to_string(), 0)],
                "{domain}"
            );
            assert_eq!(
                m.dns
                    .check_success
                    .with_label_values(&[domain, "dmarc"])
                    .get(),
                1,
                "{domain}: the record is applied"
            );
            assert_eq!(
                m.dns
                    .check_errors
                    .with_label_values(&[domain, "dmarc", "unauthorized_destination"])
                    .get(),
                1,
                "{domain}: the finding is counted"
            );
            assert_eq!(
                m.dns
                    .dmarc_policy
                    .with_label_values(&[domain, "none"])
                    .get(),
                1,
                "{domain}"
            );
        }
    });
}

/// The destination's DNS refuses the authorization lookup (Unbound `refuse` zone): that is a
/// DNS error, not "unauthorized": no 0 is recorded for the destination, the reason is
/// `dns_error`, and the record check stays successful.
#[test]
fn dmarc_destination_lookup_refused_is_dns_error_not_unauthorized() {
    case(|dns, _env| async move {
        let d = "authrefused.dc.test";
        let (m, f) = check(&dns, &input(d, &[], &[], None)).await;
        assert!(has(&f, "dmarc", "dns_error"), "{f:?}");
        assert!(!has(&f, "dmarc", "unauthorized_destination"), "{f:?}");
        assert_eq!(destinations(&m, d), vec![], "unknown is not 0");
        assert_eq!(
            m.dns.check_success.with_label_values(&[d, "dmarc"]).get(),
            1
        );
        assert_eq!(
            m.dns
                .check_errors
                .with_label_values(&[d, "dmarc", "dns_error"])
                .get(),
            1
        );
        assert_eq!(
            m.dns.dmarc_policy.with_label_values(&[d, "reject"]).get(),
            1
        );
    });
}
