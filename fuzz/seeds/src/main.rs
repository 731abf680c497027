//! Writes the seed corpus of every fuzz target: `seed_corpus OUT_DIR REPO_DIR [SAMPLES_DIR]`.
//! A crate of its own, built without the fuzzers' instrumentation (which only links into a
//! libFuzzer binary).
//!
//! Seeds come from three places: the repository's fixtures (`tests/fixtures/`,
//! `examples/`), the shared real-world samples when given (reports as sent by Google,
//! Microsoft and others, header blocks of real providers), and inputs made here for what
//! neither has (every container wrapped around a small report, DNS records, DER keys). Each
//! target gets them in its own input format, in `OUT_DIR/<target>/seed-<hash>`; files already
//! there (what earlier runs found) are kept. Inputs larger than [`MAX_SEED`] are left out:
//! the fuzzer would spend its time re-reading them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[path = "../../src/spam.rs"]
#[allow(dead_code)]
mod spam;
use spam::spam_input;

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
const TARGETS: &[&str] = &[
    "canary_headers",
    "config",
    "der_keys",
    "dkim_record",
    "dmarc_aggregate",
    "dmarc_record",
    "dns_misc",
    "header_values",
    "postmaster_api",
    "spam_headers",
    "snds_csv",
    "spf_record",
    "tlsrpt_report",
    "tls_sniffer",
    "unpack",
];

/// Largest seed written.
const MAX_SEED: usize = 256 * 1024;

/// Seeds per target, deduplicated by content.
#[derive(Default)]
struct Corpus(BTreeMap<&'static str, BTreeMap<u64, Vec<u8>>>);

impl Corpus {
    fn add(&mut self, target: &'static str, data: impl Into<Vec<u8>>) {
        let data = data.into();
        if data.len() <= MAX_SEED {
            self.0.entry(target).or_default().insert(fnv1a(&data), data);
        }
    }

    fn write(&self, out: &Path) -> std::io::Result<()> {
        for (target, seeds) in &self.0 {
            let dir = out.join(target);
            std::fs::create_dir_all(&dir)?;
            for (hash, data) in seeds {
                std::fs::write(dir.join(format!("seed-{hash:016x}")), data)?;
            }
            println!("{target}: {} seeds", seeds.len());
        }
        Ok(())
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every file under `dir`, sorted (none when it is not there).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(MAX_SEED as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn zip(members: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        w.start_file(*name, opts).expect("in memory");
        w.write_all(data).expect("in memory");
    }
    w.finish().expect("in memory").into_inner()
}

fn unzip(data: &[u8]) -> Vec<Vec<u8>> {
    let Ok(mut a) = zip::ZipArchive::new(std::io::Cursor::new(data)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..a.len() {
        if let Ok(m) = a.by_index(i) {
            let mut v = Vec::new();
            if m.take(MAX_SEED as u64 + 1).read_to_end(&mut v).is_ok() {
                out.push(v);
            }
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn base64_lines(data: &[u8]) -> String {
    let b = base64(data);
    b.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned() + "\r\n")
        .collect()
}

/// The header block of a message: everything before the first empty line.
fn header_block(msg: &[u8]) -> &[u8] {
    for sep in [&b"\r\n\r\n"[..], b"\n\n"] {
        if let Some(i) = msg.windows(sep.len()).position(|w| w == sep) {
            return &msg[..i + sep.len()];
        }
    }
    msg
}

/// `Name: value` on the first line.
fn starts_with_field(text: &[u8]) -> bool {
    let n = text
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    n > 0 && text.get(n) == Some(&b':')
}

/// The header fields of a block, unfolded: (name, value).
fn fields(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

// ---- made here -----------------------------------------------------------------------------

const RECORD: &str = "<record><row><source_ip>192.0.2.1</source_ip><count>5</count>\
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf>\
<reason><type>forwarded</type><comment>list</comment></reason></policy_evaluated></row>\
<identifiers><header_from>example.com</header_from><envelope_from>bounce.example.com</envelope_from>\
<envelope_to>example.org</envelope_to></identifiers><auth_results><dkim><domain>esp.example</domain>\
<selector>s1</selector><result>pass</result></dkim><dkim><domain>mail.example.com</domain>\
<selector>s2</selector><result>pass</result><human_result>ok</human_result></dkim>\
<spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>pass</result></spf>\
</auth_results></record>";

fn aggregate(prefix: &str, ns: &str, version: bool, records: &str) -> String {
    let body = format!(
        "{}<report_metadata><org_name>Example Reporter</org_name>\
<email>dmarc@reports.example.net</email><extra_contact_info>https://example.net/dmarc</extra_contact_info>\
<report_id>r-1</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>\
<error>none</error></report_metadata>\
<policy_published><domain>Example.COM</domain><adkim>r</adkim><aspf>s</aspf><p>reject</p>\
<sp>quarantine</sp><np>none</np><pct>50</pct><fo>1</fo><testing>y</testing>\
<discovery_method>treewalk</discovery_method></policy_published>{records}",
        if version {
            "<version>1.0</version>"
        } else {
            ""
        }
    );
    let (open, close) = if prefix.is_empty() {
        ("<".to_string(), "</".to_string())
    } else {
        (format!("<{prefix}:"), format!("</{prefix}:"))
    };
    let body = body
        .replace("</", "\u{1}")
        .replace('<', &open)
        .replace('\u{1}', &close);
    let xmlns = match (ns, prefix) {
        ("", _) => String::new(),
        (ns, "") => format!(" xmlns=\"{ns}\""),
        (ns, p) => format!(" xmlns:{p}=\"{ns}\""),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{open}feedback{xmlns}>{body}{close}feedback>\n"
    )
}

fn made_reports() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let many: String = (0..101)
        .map(|i| RECORD.replace("192.0.2.1", &format!("198.51.100.{}", i % 250)))
        .collect();
    let xml: Vec<Vec<u8>> = vec![
        aggregate("", "", true, RECORD).into(),
        aggregate("", "urn:ietf:params:xml:ns:dmarc-2.0", true, &RECORD.repeat(2)).into(),
        aggregate("dmarc", "urn:ietf:params:xml:ns:dmarc-2.0", true, RECORD).into(),
        aggregate("", "", false, RECORD).into(),
        aggregate("", "", true, "").into(),
        aggregate("", "", true, &many).into(),
        // Hostile or damaged.
        b"<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY a \"aaaa\">]><feedback>&a;</feedback>"
            .to_vec(),
        aggregate("", "", true, RECORD)
            .replace("example.org", "ex\u{fffd}mple&amp;&#x41;&unknown;.org")
            .into(),
        aggregate("", "", true, RECORD)
            .replace("<email>dmarc@reports.example.net</email>", "<email>a<addr>b</email>")
            .into(),
        aggregate("", "", true, RECORD)
            .split_at(700)
            .0
            .as_bytes()
            .to_vec(),
        b"<feedback><record><row><source_ip>\xff\xfe2001:db8::1</source_ip><count>18446744073709551615</count></row></record></feedback>".to_vec(),
        b"<?xml version=\"1.0\"?><feedback><![CDATA[x]]><?pi x?><!-- c --><record/></feedback>".to_vec(),
    ];
    let json: Vec<Vec<u8>> = vec![
        br#"{"organization-name":"Company-X","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-01T23:59:59Z"},"contact-info":"sts-reporting@company-x.example","report-id":"5065427c-23d3-47ca-b6e0-946ea0e8c4be","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example","max_age: 86400"],"policy-domain":"company-y.example","mx-host":["*.mail.company-y.example"]},"summary":{"total-successful-session-count":5326,"total-failure-session-count":303},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"2001:db8:abcd:0012::1","receiving-mx-hostname":"mx1.mail.company-y.example","failed-session-count":100},{"result-type":"starttls-not-supported","sending-mta-ip":"2001:db8:abcd:0013::1","receiving-mx-hostname":"mx2.mail.company-y.example","receiving-ip":"203.0.113.56","failed-session-count":200,"additional-information":"https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"},{"result-type":"validation-failure","sending-mta-ip":"198.51.100.62","receiving-ip":"203.0.113.58","receiving-mx-hostname":"mx-backup.mail.company-y.example","failed-session-count":3,"failure-reason-code":"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"}]}]}"#.to_vec(),
        br#"{"organization-name":"Microsoft Corporation","date-range":{"start-datetime":"2024-04-01T00:00:00","end-datetime":"2024-04-01T23:59:59"},"contact-info":null,"report-id":"133565","policies":[{"policy":{"policy-type":"no-policy-found","policy-domain":"Example.COM.","mx-host":"mx.example.com"},"summary":{"total-successful-session-count":"12","total-failure-session-count":0}}]}"#.to_vec(),
        br#"{"organization-name":"x","date-range":{"start-datetime":"9999-12-31T23:59:60+14:00","end-datetime":"1970-01-01T00:00:00.5-00:30"},"report-id":"","policies":[]}"#.to_vec(),
        br#"{"policies":[{"policy":{"policy-type":"tlsa","policy-string":[],"policy-domain":""},"summary":{},"failure-details":[{"result-type":"unknown-thing","failed-session-count":-1}]}]} trailing"#.to_vec(),
    ];
    (xml, json)
}

fn mail(headers: &str, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut m = format!(
        "From: noreply-dmarc-support@google.com\r\nTo: dmarc@example.com\r\n\
Subject: Report domain: example.com Submitter: google.com Report-ID: <123>\r\n\
Date: Sat, 28 Nov 2026 20:36:01 -0800\r\nMessage-ID: <x@example.net>\r\nMIME-Version: 1.0\r\n{headers}\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\nThis is a report.\r\n"
    )
    .into_bytes();
    for (ctype, disposition, body) in parts {
        m.extend_from_slice(b"--b1\r\n");
        m.extend_from_slice(
            format!(
                "Content-Type: {ctype}\r\n{disposition}Content-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        m.extend_from_slice(base64_lines(body).as_bytes());
    }
    m.extend_from_slice(b"--b1--\r\n");
    m
}

fn made_containers(xml: &[u8], json: &[u8]) -> Vec<Vec<u8>> {
    let gz = gzip(xml);
    let zipped = zip(
        &[("google.com!example.com!1700000000!1700086399.xml", xml)],
        true,
    );
    let both = zip(
        &[
            ("a.xml", xml),
            ("b.json", json),
            ("dir/", b""),
            ("c.xml.gz", &gz),
        ],
        false,
    );
    let eml = mail(
        "",
        &[
            ("text/plain", "", b"Hello"),
            (
                "application/gzip; name=\"r.xml.gz\"",
                "Content-Disposition: attachment; filename=\"r.xml.gz\"\r\n",
                &gz,
            ),
            ("application/zip", "", &zipped),
            ("application/tlsrpt+json", "", json),
        ],
    );
    let tls_gz_mail = mail(
        "TLS-Report-Domain: example.com\r\nTLS-Report-Submitter: google.com\r\n",
        &[("application/tlsrpt+gzip", "", &gzip(json))],
    );
    let forwarded = {
        let mut m = b"From: a@example.com\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n".to_vec();
        m.extend_from_slice(&eml);
        m.extend_from_slice(b"\r\n--o--\r\n");
        m
    };
    let mut mbox = b"From MAILER-DAEMON Sat Nov 28 20:36:01 2026\n".to_vec();
    mbox.extend_from_slice(&eml);
    mbox.extend_from_slice(b"\n\nFrom MAILER-DAEMON Sat Nov 28 20:36:02 2026\n");
    mbox.extend_from_slice(&tls_gz_mail);
    let single = {
        let mut m = b"From: a@example.com\r\nContent-Type: application/xml\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".to_vec();
        m.extend_from_slice(xml);
        m
    };
    let mut bomb = vec![0u8; 64 * 1024];
    bomb.extend_from_slice(xml);
    vec![
        gz.clone(),
        gzip(json),
        gzip(&gz),
        gzip(&zipped),
        zipped,
        both,
        zip(&[("x.zip", &zip(&[("y.gz", &gz)], true))], true),
        gzip(&bomb),
        eml,
        tls_gz_mail,
        forwarded,
        mbox,
        single,
        [b"\xef\xbb\xbf".as_slice(), xml].concat(),
        b"\xff\xfe<\x00".to_vec(),
        b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
        gz[..gz.len() / 2].to_vec(),
    ]
}

const SPF: &[&str] = &[
    "v=spf1 -all",
    "v=spf1 include:_spf.google.com include:spf.protection.outlook.com ~all",
    "v=spf1 +a -a:mail.example.com/24 ~mx:example.net//64 ?mx/26//48 ptr ptr:example.org \
ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}._spf.example.com redirect=_spf.example.com \
exp=explain.example.com unknown=x",
    "v=spf1 ip4:192.0.2.1 ip6:::ffff:192.0.2.1/128 a:%{d1r}.%{l}.%{o}._%{h}.example.com -all",
    "v=spf1 include:%{ir}.%{v}.%{_}.example.com%% %- all",
    "v=spf1 redirect=a.example redirect=b.example",
    "v=spf1 ip4:192.0.2.0/033 a/99 mx//129 -",
    "v=spf10 -all",
];

const DKIM: &[&str] = &[
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "v=DKIM1; p=",
    "v=DKIM1; k=rsa; t=y:s; h=sha256; s=email; n=notes; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKkD",
    "k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC; x=1",
    "v=DKIM2; p=abc",
    "v=DKIM1; k=dsa; p=abc",
    "v=DKIM1; p=not base64!",
];

const DMARC: &[&str] = &[
    "v=DMARC1; p=reject; sp=quarantine; np=none; adkim=s; aspf=r; pct=50; fo=0:1:d:s; rf=afrf; \
ri=86400; rua=mailto:dmarc@example.com,mailto:agg@reports.example.net!10m; \
ruf=mailto:forensic@example.com; t=y; psd=n",
    "v=DMARC1; p=none",
    "v=DMARC1; p=quarantine; pct=101; adkim=x; rua=https://example.com",
    "v=DMARC1;p=reject;rua=mailto:a@b",
    "p=none; v=DMARC1",
    "v=DMARC1; p=none; p=reject",
    "a.b.c.d.e.f.g.h.i.example.com\nv=DMARC1; p=none",
];

const MISC: &[&str] = &[
    "v=STSv1; id=20240101T000000;",
    "v=STSv1; id=",
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n\
host.example.net",
    "version: STSv1\nmode: testing\nmx: *.mail.example.com\nmax_age: 86400\next: x\n",
    "version: STSv1\nmode: none\nmax_age: 31557600\n",
    "version: STSv1\nversion: STSv1\nmode: bogus\nmax_age: 99999999999\n",
    "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://reports.example.com/v1",
    "v=TLSRPTv1; rua=ftp://x",
    "a=1; b = 2 ;; c=; 9x=1; a=3",
];

/// DER of an RSA public key with a `bits`-bit modulus, as SubjectPublicKeyInfo or PKCS#1.
fn rsa_key(bits: usize, spki: bool) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let n = content.len();
        if n < 0x80 {
            v.push(n as u8);
        } else if n < 0x100 {
            v.extend([0x81, n as u8]);
        } else {
            v.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        v.extend_from_slice(content);
        v
    }
    let mut modulus = vec![0x00, 0xc5];
    modulus.extend(std::iter::repeat_n(0x5a, bits / 8 - 1));
    let pkcs1 = tlv(0x30, &[tlv(0x02, &modulus), tlv(0x02, &[1, 0, 1])].concat());
    if !spki {
        return pkcs1;
    }
    let alg = tlv(
        0x30,
        &[
            tlv(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    tlv(
        0x30,
        &[alg, tlv(0x03, &[&[0u8][..], &pkcs1].concat())].concat(),
    )
}

/// A few certificates of the system's trust store, as DER.
fn system_certs() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in files(Path::new("/etc/ssl/certs")).into_iter().take(200) {
        let Ok(pem) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Some(b64) = pem
            .split("-----BEGIN CERTIFICATE-----")
            .nth(1)
            .and_then(|s| s.split("-----END CERTIFICATE-----").next())
        else {
            continue;
        };
        let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(der) = unbase64(&b64) {
            out.push(der);
        }
        if out.len() >= 3 {
            break;
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for c in s.chunks(4) {
        let mut n = 0u32;
        for (i, &b) in c.iter().enumerate() {
            n |= val(b)? << (18 - 6 * i);
        }
        for i in 0..c.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

// ---- main ----------------------------------------------------------------------------------

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (Some(out), Some(repo)) = (args.first(), args.get(1)) else {
        eprintln!("usage: seed_corpus OUT_DIR REPO_DIR [SAMPLES_DIR]");
        std::process::exit(2);
    };
    let samples = args.get(2).filter(|p| p.is_dir());
    let mut c = Corpus::default();

    // Reports: made here, then the samples, as they are (unpack) and unwrapped (the readers).
    let (xml, json) = made_reports();
    for x in &xml {
        c.add("dmarc_aggregate", x.clone());
        c.add("unpack", x.clone());
    }
    for j in &json {
        c.add("tlsrpt_report", j.clone());
        c.add("unpack", j.clone());
    }
    for m in made_containers(&xml[1], &json[0]) {
        c.add("unpack", m);
    }
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for dir in [repo.join("tests/fixtures")].iter().chain(samples) {
        for p in files(dir) {
            let Ok(data) = std::fs::read(&p) else {
                continue;
            };
            let name = p.to_string_lossy().to_ascii_lowercase();
            if name.ends_with("readme.md") {
                continue;
            }
            c.add("unpack", data.clone());
            let mut inner = vec![];
            if name.ends_with(".gz") {
                inner.extend(gunzip(&data));
            } else if name.ends_with(".zip") {
                inner.extend(unzip(&data));
            } else {
                inner.push(data.clone());
            }
            for i in inner {
                match i.trim_ascii_start().first() {
                    Some(b'<') => c.add("dmarc_aggregate", i),
                    Some(b'{') => c.add("tlsrpt_report", i),
                    _ => {}
                }
            }
            if name.ends_with(".eml") || name.ends_with(".txt") {
                messages.push(data);
            }
        }
    }

    // Header blocks and their values.
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for m in &messages {
        if starts_with_field(m) {
            blocks.push(header_block(m).to_vec());
        } else {
            // A bare Authentication-Results value (the samples' auth_results/*.txt).
            blocks.push([b"Authentication-Results: ".as_slice(), m].concat());
        }
    }
    blocks.push(
        b"Authentication-Results: mx.seed.test; spf=pass smtp.mailfrom=a@b.example; dkim=pass \
header.d=b.example header.s=s1; dmarc=pass header.from=b.example; arc=none\r\n\
ARC-Authentication-Results: i=1; mx.seed.test; spf=softfail\r\n\
Received-SPF: pass (mx.seed.test: domain of a@b.example designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1; envelope-from=a@b.example; helo=mail.b.example;\r\n\
Received: from mail.b.example (mail.b.example [192.0.2.1]) by mx.seed.test (Postfix) with ESMTPS id 4Xz for <s@seed.test>; Sun, 29 Nov 2026 04:35:59 +0000\r\n\
DKIM-Signature: v=1; a=ed25519-sha256; d=b.example; s=s1; h=from; b=x\r\n\
X-Deliverability-Canary: dx-abcdefghijklmnop2345\r\n\
Subject: =?UTF-8?B?ZHgtYWJjZGVmZ2hpamtsbW5vcDIzNDU=?=\r\n\
X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99,DKIM_SIGNED autolearn=no version=4.0.0\r\n\
X-Spamd-Result: default: False [3.40 / 15.00]; R_SPF_ALLOW(-0.20)[+ip4:192.0.2.1]\r\n\
X-Spam-Result: DMARC_POLICY_ALLOW (-0.50), DKIM_ALLOW (-0.20)\r\n\
X-Forefront-Antispam-Report: CIP:40.107.22.100;CTRY:IE;SCL:6;SFV:SPM;CAT:SPM\r\n\
X-MS-Exchange-Organization-SCL: 5\r\n\
X-Barracuda-Spam-Score: 4.2\r\nX-Barracuda-Spam-Status: No, SCORE=4.2 using global scores of TAG_LEVEL=3.5\r\n\
X-Gm-Spam: 1\r\n\r\n"
            .to_vec(),
    );
    for (i, b) in blocks.iter().enumerate() {
        let mut seed = vec![i as u8];
        seed.extend_from_slice(b);
        c.add("canary_headers", seed);
        c.add("spam_headers", spam_input(b));
        for (name, value) in fields(b) {
            if [
                "authentication-results",
                "arc-authentication-results",
                "received-spf",
                "received",
                "dkim-signature",
                "date",
            ]
            .contains(&name.to_ascii_lowercase().as_str())
            {
                c.add("header_values", value);
            }
        }
    }

    // DNS records and keys.
    for s in SPF {
        c.add("spf_record", *s);
    }
    for s in DKIM {
        c.add("dkim_record", *s);
    }
    for s in DMARC {
        c.add("dmarc_record", *s);
    }
    for s in MISC {
        c.add("dns_misc", *s);
    }
    for (bits, spki) in [(1024, true), (2048, true), (512, false), (4096, false)] {
        let der = rsa_key(bits, spki);
        c.add("dkim_record", format!("v=DKIM1; k=rsa; p={}", base64(&der)));
        c.add("der_keys", der);
    }
    for der in system_certs() {
        c.add("der_keys", der);
    }

    // ServerHello records (TLS 1.3 with supported_versions, TLS 1.2 without), whole and
    // fed in small chunks.
    for (legacy, ext) in [
        ([3u8, 3], &[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04][..]),
        ([3, 3], &[][..]),
        ([3, 1], &[0xff, 0x01, 0x00, 0x01, 0x00][..]),
    ] {
        let mut hello = legacy.to_vec();
        hello.extend([0u8; 32]);
        hello.push(0); // session id
        hello.extend([0x13, 0x01, 0x00]);
        hello.extend((ext.len() as u16).to_be_bytes());
        hello.extend(ext);
        let mut rec = vec![0x16, 0x03, 0x03, 0, 0, 0x02, 0, 0, 0];
        rec.extend(&hello);
        for chunk in [255u8, 7, 0] {
            c.add("tls_sniffer", [&[chunk][..], &rec].concat());
        }
    }

    // Postmaster Tools' answers (the fixtures written from its documentation).
    for p in files(&repo.join("tests/fixtures/postmaster")) {
        if p.extension().is_some_and(|e| e == "json")
            && !p.ends_with("service-account.json")
            && let Ok(data) = std::fs::read(&p)
        {
            c.add("postmaster_api", data);
        }
    }

    // SNDS's CSV files (data, IP status), its HTML error page and an empty day.
    for p in files(&repo.join("tests/fixtures/snds")) {
        if p.extension().is_some_and(|e| e != "md")
            && let Ok(data) = std::fs::read(&p)
        {
            c.add("snds_csv", data);
        }
    }

    // Past findings: tests/fixtures/fuzz-regressions/<target>-<what>.<ext>, into their target.
    for p in files(&repo.join("tests/fixtures/fuzz-regressions")) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let target = name.as_deref().and_then(|n| {
            TARGETS
                .iter()
                .find(|t| n.starts_with(&format!("{t}-")))
                .copied()
        });
        if let (Some(target), Ok(data)) = (target, std::fs::read(&p)) {
            c.add(target, data);
        }
    }

    // Configuration.
    for p in files(&repo.join("examples")) {
        if let Ok(text) = std::fs::read_to_string(&p) {
            // The target skips inputs that could name a secret file.
            let kept: String = text
                .lines()
                .filter(|l| !l.to_ascii_lowercase().contains("file"))
                .map(|l| format!("{l}\n"))
                .collect();
            c.add("config", kept);
        }
    }

    if let Err(e) = c.write(out) {
        eprintln!("seed_corpus: cannot write {}: {e}", out.display());
        std::process::exit(1);
    }
}
