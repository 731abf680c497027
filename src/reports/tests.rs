//! Tests of the readers on fixtures generated here: every format quirk, every container,
//! and the hostile inputs (a gzip bomb, a zip of thousands of members, entity expansion,
//! truncated streams).

use std::io::Write;

use super::model::{Disposition, DkimResult, Policy, ReasonType, Record, Report, SpfResult};
use super::names::SourceNames;
use super::unpack::{Limits, Outcome, read_bytes};
use super::{ReadError, dmarc};

pub(crate) fn aggregate(ns: &str, prefix: &str, records: &str) -> String {
    let p = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}:")
    };
    let xmlns = if ns.is_empty() {
        String::new()
    } else if prefix.is_empty() {
        format!(" xmlns=\"{ns}\"")
    } else {
        format!(" xmlns:{prefix}=\"{ns}\"")
    };
    let body = format!(
        "<version>1.0</version>
  <report_metadata><org_name>Example Reporter</org_name><email>dmarc@reports.example.net</email>
    <report_id>r-1</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published><domain>Example.COM</domain><adkim>r</adkim><aspf>s</aspf><p>reject</p>
    <sp>quarantine</sp><np>none</np><pct>50</pct><testing>y</testing>
    <discovery_method>treewalk</discovery_method></policy_published>
  {records}"
    )
    .replace('<', &format!("<{p}"))
    .replace(&format!("<{p}/"), &format!("</{p}"));
    format!("<?xml version=\"1.0\"?>\n<{p}feedback{xmlns}>\n  {body}\n</{p}feedback>\n")
}

pub(crate) const RECORD: &str = "<record><row><source_ip>192.0.2.1</source_ip><count>5</count>
  <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
  <identifiers><header_from>example.com</header_from><envelope_from>bounce.example.com</envelope_from>
  <envelope_to>example.org</envelope_to></identifiers>
  <auth_results><dkim><domain>esp.example</domain><selector>s1</selector><result>pass</result></dkim>
  <dkim><domain>mail.example.com</domain><selector>s2</selector><result>pass</result><human_result>ok</human_result></dkim>
  <spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>pass</result></spf></auth_results></record>";

fn parse_all(xml: &[u8]) -> Result<(dmarc::Parsed, Vec<Record>), ReadError> {
    let mut records = Vec::new();
    let parsed = dmarc::parse(xml, 1000, &mut |_, r| records.push(r.clone()))?;
    Ok((parsed, records))
}

fn read(data: &[u8]) -> Outcome {
    read_bytes("input", data, &Limits::default(), &SourceNames::default())
}

fn only_dmarc(o: &Outcome) -> &super::model::AggregateReport {
    assert_eq!(o.reports.len(), 1, "{o:?}");
    match &o.reports[0].report {
        Report::Dmarc(r) => r,
        other => panic!("not DMARC: {other:?}"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn reads_every_field_of_an_rfc_9990_report() {
    let xml = aggregate("urn:ietf:params:xml:ns:dmarc-2.0", "", RECORD);
    let (p, recs) = parse_all(xml.as_bytes()).unwrap();
    let r = &p.report;
    assert_eq!(r.version.as_deref(), Some("1.0"));
    assert_eq!(r.org_name, "Example Reporter");
    assert_eq!(r.email, "dmarc@reports.example.net");
    assert_eq!(r.report_id, "r-1");
    assert_eq!((r.begin, r.end), (1_700_000_000, 1_700_086_399));
    let pol = &r.policy;
    assert_eq!(pol.domain, "example.com");
    assert_eq!(pol.p, Policy::Reject);
    assert_eq!(pol.sp, Some(Policy::Quarantine));
    assert_eq!(pol.np, Some(Policy::None));
    assert_eq!(pol.pct, Some(50));
    assert_eq!(pol.testing, Some(true));
    assert_eq!(pol.discovery_method.as_deref(), Some("treewalk"));
    assert_eq!((r.records, r.messages), (1, 5));
    let rec = &recs[0];
    assert_eq!(rec.source_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(rec.header_from, "example.com");
    assert_eq!(rec.envelope_from.as_deref(), Some("bounce.example.com"));
    assert_eq!(rec.envelope_to.as_deref(), Some("example.org"));
    assert_eq!(rec.dkim.len(), 2, "every <dkim>, not the first");
    assert_eq!(rec.dkim[1].domain, "mail.example.com");
    assert_eq!(rec.dkim[1].human_result.as_deref(), Some("ok"));
    assert_eq!(rec.spf[0].scope.as_deref(), Some("mfrom"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn namespaces_with_and_without_prefix_and_old_drafts_read_the_same() {
    let plain = parse_all(aggregate("", "", RECORD).as_bytes()).unwrap();
    let ns =
        parse_all(aggregate("urn:ietf:params:xml:ns:dmarc-2.0", "", RECORD).as_bytes()).unwrap();
    let prefixed =
        parse_all(aggregate("urn:ietf:params:xml:ns:dmarc-2.0", "dmarc", RECORD).as_bytes())
            .unwrap();
    assert_eq!(plain.1, ns.1);
    assert_eq!(plain.1, prefixed.1);
    assert_eq!(prefixed.0.report.policy.domain, "example.com");
    let old = aggregate("", "", RECORD).replace("<version>1.0</version>", "");
    let (p, _) = parse_all(old.as_bytes()).unwrap();
    assert_eq!(p.report.version, None);
    assert_eq!(p.report.messages, 5);
}

#[test]
fn lenient_where_reporters_are_sloppy() {
    let rec = "<record><row><source_ip> 2001:db8::1 </source_ip><count>8589934592</count>
      <policy_evaluated><disposition>Quarantine</disposition><dkim>PASS</dkim><spf>Fail</spf>
      <reason><type/></reason><reason><type>Local_Policy</type><comment><![CDATA[a <b> c]]></comment></reason>
      </policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers>
      <auth_results><spf><domain>example.com</domain><result>hardfail</result></spf>
      <dkim><domain>example.com</domain><result>Pass</result></dkim></auth_results></record>";
    let xml = format!(
        "\u{feff}<?xml version=\"1.0\"?>\r\n<!-- a comment -->\r\n{}",
        aggregate("", "", rec)
            .replace("<org_name>Example Reporter</org_name>", "")
            .replace("<?xml version=\"1.0\"?>\n", "")
            .replace('\n', "\r\n")
    );
    let (p, recs) = parse_all(xml.as_bytes()).unwrap();
    assert_eq!(
        p.report.org_name, "reports.example.net",
        "falls back to the email's domain"
    );
    assert_eq!(p.report.messages, 8_589_934_592, "counts past 2^32");
    let r = &recs[0];
    assert_eq!(r.disposition, Disposition::Quarantine);
    assert_eq!(r.spf[0].result, SpfResult::Other, "hardfail kept as other");
    assert_eq!(r.dkim[0].result, DkimResult::Pass);
    assert_eq!(r.reasons.len(), 2);
    assert_eq!(r.reasons[0].kind, None, "empty <type/>");
    assert_eq!(r.reasons[1].kind, Some(ReasonType::LocalPolicy));
    assert_eq!(r.reasons[1].comment.as_deref(), Some("a <b> c"));
}

#[test]
fn entities_resolve_but_doctype_and_undefined_entities_are_refused() {
    let xml = aggregate("", "", RECORD).replace("Example Reporter", "A &amp; B &#x41;");
    let (p, _) = parse_all(xml.as_bytes()).unwrap();
    assert_eq!(p.report.org_name, "A & B A");
    let bomb = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>\n{}",
        aggregate("", "", RECORD)
            .replace("<?xml version=\"1.0\"?>\n", "")
            .replace("Example Reporter", "&c;")
    );
    let e = parse_all(bomb.as_bytes()).unwrap_err();
    assert!(matches!(e, ReadError::Entities { line: 2, .. }), "{e:?}");
    assert_eq!(e.reason(), "entities");
    let external =
        "<?xml version=\"1.0\"?><!DOCTYPE feedback SYSTEM \"file:///etc/passwd\"><feedback/>";
    assert!(matches!(
        parse_all(external.as_bytes()),
        Err(ReadError::Entities { .. })
    ));
    let undefined = aggregate("", "", RECORD).replace("Example Reporter", "&xxe;");
    let e = parse_all(undefined.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("undefined entity &xxe;"), "{e}");
}

#[test]
fn truncated_and_broken_xml_name_the_position() {
    let xml = aggregate("", "", RECORD);
    let cut = &xml.as_bytes()[..xml.len() / 2];
    let e = parse_all(cut).unwrap_err();
    match &e {
        ReadError::Xml { line, message, .. } => {
            assert!(*line > 3, "{e}");
            assert!(message.contains("not closed"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let broken = xml.replace("</report_metadata>", "</nonsense>");
    let e = parse_all(broken.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains("unexpected end tag </nonsense>, expected </report_metadata>")
            && e.to_string().contains("line 6"),
        "{e}"
    );
    let e = parse_all(b"<html><body>hi</body></html>").unwrap_err();
    assert_eq!(e, ReadError::NotFeedback("html".into()));
    let e = parse_all(
        aggregate("", "", RECORD)
            .replace("<count>5</count>", "<count>-5</count>")
            .as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(e, ReadError::InvalidReport { .. }), "{e:?}");
}

#[test]
fn value_level_damage_is_repaired_with_a_warning() {
    let mut bytes = aggregate("", "", RECORD).into_bytes();
    let at = bytes.windows(11).position(|w| w == b"example.com").unwrap();
    bytes.insert(at + 3, 0x91);
    let (p, recs) = parse_all(&bytes).unwrap();
    assert_eq!(recs.len(), 1);
    assert!(p.warnings[0].contains("not UTF-8"), "{:?}", p.warnings);
    let unclosed = aggregate("", "", RECORD).replace(
        "<email>dmarc@reports.example.net</email>",
        "<email><dmarc@reports.example.net></email>",
    );
    let (p, _) = parse_all(unclosed.as_bytes()).unwrap();
    assert!(p.warnings[0].contains("not closed"), "{:?}", p.warnings);
    let latin1 = aggregate("", "", RECORD)
        .replace(
            "<?xml version=\"1.0\"?>",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        )
        .replace("Example Reporter", "Caf\u{e9}");
    let bytes: Vec<u8> = latin1.chars().map(|c| c as u32 as u8).collect();
    let (p, _) = parse_all(&bytes).unwrap();
    assert_eq!(p.report.org_name, "Caf\u{e9}");
}

#[test]
fn an_unclosed_element_with_a_non_utf_8_name_is_named_without_panicking() {
    // Found by the dmarc_aggregate fuzz target: the warning cut the repaired name (U+FFFD,
    // three bytes each) at byte 64, inside a character, and panicked.
    let xml = aggregate("", "", RECORD).into_bytes();
    let at = xml
        .windows(18)
        .position(|w| w == b"</report_metadata>")
        .unwrap();
    let mut bytes = xml[..at].to_vec();
    bytes.push(b'<');
    bytes.extend([0xff; 30]);
    bytes.push(b'>');
    bytes.extend(&xml[at..]);
    let (p, recs) = parse_all(&bytes).unwrap();
    assert_eq!(recs.len(), 1);
    let w = p
        .warnings
        .iter()
        .find(|w| w.contains("not closed before </report_metadata>"))
        .unwrap_or_else(|| panic!("{:?}", p.warnings));
    assert!(w.contains(": <\u{fffd}"), "{w}");
}

#[test]
fn record_limit_is_enforced() {
    let xml = aggregate("", "", &RECORD.repeat(3));
    let e = dmarc::parse(xml.as_bytes(), 2, &mut |_, _| {}).unwrap_err();
    assert_eq!(e, ReadError::TooManyRecords { limit: 2 });
    assert!(dmarc::parse(xml.as_bytes(), 3, &mut |_, _| {}).is_ok());
}

#[test]
fn containers_are_sniffed_not_named() {
    let xml = aggregate("", "", RECORD);
    let json = br#"{"organization-name":"Example","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"},"report-id":"t1","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},"summary":{"total-successful-session-count":3,"total-failure-session-count":1}}]}"#;
    assert_eq!(only_dmarc(&read(xml.as_bytes())).messages, 5);
    assert_eq!(only_dmarc(&read(&gzip(xml.as_bytes()))).messages, 5);
    let z = zip(&[
        ("a.xml", xml.as_bytes()),
        ("b.json.gz", &gzip(json)),
        ("dir/", b""),
    ]);
    let o = read(&z);
    assert_eq!(o.reports.len(), 2, "every member: {o:?}");
    assert!(o.reports[1].part.ends_with("member b.json.gz"));
    match &read(&gzip(json)).reports[0].report {
        Report::Tls(t) => assert_eq!((t.successful(), t.failed()), (3, 1)),
        other => panic!("{other:?}"),
    }
    // A zip inside a gzip (what GMX sends as "zip"), and trailing bytes after a gzip member.
    let mut gz_zip = gzip(&zip(&[("r.xml", xml.as_bytes())]));
    gz_zip.extend_from_slice(b"\r\n");
    assert_eq!(only_dmarc(&read(&gz_zip)).records, 1);
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn mail(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut m = String::from(
        "From: dmarc@reports.example.net\r\nTo: rua@example.com\r\nSubject: Report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\nThis is a report.\r\n",
    );
    for (ctype, disposition, data) in parts {
        m.push_str(&format!(
            "--BOUNDARY\r\nContent-Type: {ctype}\r\n{disposition}Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(data)
        ));
    }
    m.push_str("--BOUNDARY--\r\n");
    m.into_bytes()
}

#[test]
fn e_mail_attachments_with_rfc_2231_names_and_wrong_types() {
    let xml = aggregate("", "", RECORD);
    let m = mail(&[
        ("text/plain", "", b"Please find the report attached."),
        (
            "application/zip",
            "Content-Disposition: attachment;\r\n filename*0*=UTF-8''example.net%21example.com%21;\r\n filename*1=\"1700000000.xml.gz\"\r\n",
            &gzip(xml.as_bytes()),
        ),
        (
            "image/png",
            "Content-Disposition: inline; filename=\"logo.png\"\r\n",
            b"\x89PNG\r\n\x1a\n",
        ),
    ]);
    let o = read(&m);
    assert_eq!(only_dmarc(&o).messages, 5);
    assert_eq!(
        o.reports[0].part,
        "input: attachment example.net!example.com!1700000000.xml.gz"
    );
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(
        o.warnings.iter().any(|w| w.contains("logo.png")),
        "{:?}",
        o.warnings
    );

    // An mbox of two messages, one of them without a report.
    let mut mbox = b"From MAILER-DAEMON Thu Jan  1 00:00:00 2024\n".to_vec();
    mbox.extend_from_slice(&m);
    mbox.extend_from_slice(
        b"\nFrom someone Thu Jan  1 00:00:00 2024\nSubject: hello\n\nno report here\n",
    );
    let o = read(&mbox);
    assert_eq!(o.reports.len(), 1);
    assert_eq!(o.errors.len(), 1);
    assert_eq!(o.errors[0].error, ReadError::NoAttachment);
    assert!(o.errors[0].part.ends_with("message 2"));
}

/// A gzip stream that inflates to `gib` GiB of `a`: one deflate block of 1 MiB, flushed to a
/// byte boundary, repeated (its back-references only ever reach more `a`s). The trailer's CRC
/// is wrong, which a reader that stops at its budget never gets to see.
fn gzip_bomb(prefix: &[u8], gib: usize) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut first = Vec::with_capacity(64 * 1024);
    let mut data = prefix.to_vec();
    data.extend_from_slice(&vec![b'a'; 1 << 20]);
    c.compress_vec(&data, &mut first, flate2::FlushCompress::Full)
        .unwrap();
    let mut block = Vec::with_capacity(64 * 1024);
    c.compress_vec(
        &vec![b'a'; 1 << 20],
        &mut block,
        flate2::FlushCompress::Full,
    )
    .unwrap();
    let mut last = Vec::with_capacity(64);
    c.compress_vec(&[], &mut last, flate2::FlushCompress::Finish)
        .unwrap();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&first);
    for _ in 1..gib * 1024 {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&last);
    out.extend_from_slice(&[0; 8]);
    out
}

#[test]
fn a_gzip_bomb_stops_at_the_budget() {
    let bomb = gzip_bomb(b"<feedback><report_metadata><org_name>", 4);
    assert!(bomb.len() < 16 << 20, "{}", bomb.len());
    // Proof that it is a bomb: far more comes out than the budget.
    let mut sink = std::io::sink();
    let n = std::io::copy(
        &mut std::io::Read::take(flate2::read::GzDecoder::new(&bomb[..]), 64 << 20),
        &mut sink,
    )
    .unwrap();
    assert_eq!(n, 64 << 20);
    let limits = Limits {
        max_bytes: 16 << 20,
        ..Limits::default()
    };
    let o = read_bytes("bomb.xml.gz", &bomb, &limits, &SourceNames::default());
    assert!(o.reports.is_empty());
    assert_eq!(o.errors[0].error, ReadError::TooLarge { limit: 16 << 20 });
    assert_eq!(o.errors[0].error.reason(), "too_large");
    // Without XML in front it is refused from its first bytes.
    let o = read_bytes(
        "bomb.gz",
        &gzip_bomb(b"", 1),
        &limits,
        &SourceNames::default(),
    );
    assert!(matches!(o.errors[0].error, ReadError::Unrecognised(_)));
}

#[test]
fn a_zip_with_thousands_of_members_is_refused() {
    let names: Vec<String> = (0..3000).map(|i| format!("m{i}.xml")).collect();
    let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"<a/>"[..])).collect();
    let o = read(&zip(&members));
    assert_eq!(
        o.errors[0].error,
        ReadError::TooManyMembers {
            found: 3000,
            limit: 64
        }
    );
}

#[test]
fn truncated_compressed_streams_and_garbage_are_clear_errors() {
    let xml = aggregate("", "", &RECORD.repeat(50));
    let gz = gzip(xml.as_bytes());
    let o = read(&gz[..gz.len() / 2]);
    assert!(o.reports.is_empty());
    let e = &o.errors[0];
    assert!(matches!(e.error, ReadError::Gzip { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("input: gzip stream broken after "),
        "{e}"
    );
    let z = zip(&[("a.xml", xml.as_bytes())]);
    let o = read(&z[..z.len() - 30]);
    assert_eq!(
        o.errors[0].error.reason(),
        "corrupt_archive",
        "{:?}",
        o.errors
    );
    let o = read(b"\x00\x01binary garbage");
    assert!(matches!(o.errors[0].error, ReadError::Unrecognised(_)));
    let o = read(b"");
    assert_eq!(o.errors[0].error, ReadError::Empty);
    let o = read(b"\xff\xfe<\x00f\x00");
    assert!(o.errors[0].to_string().contains("UTF-16"));
}

#[test]
fn no_input_prefix_panics() {
    // Every prefix of every container kind gives a report or an error, never a panic.
    let xml = aggregate("urn:ietf:params:xml:ns:dmarc-2.0", "d", RECORD);
    let inputs = [
        xml.as_bytes().to_vec(),
        gzip(xml.as_bytes()),
        zip(&[("a.xml", xml.as_bytes())]),
        mail(&[("application/gzip", "", &gzip(xml.as_bytes()))]),
    ];
    for input in &inputs {
        for cut in (0..input.len()).step_by(7) {
            let o = read(&input[..cut]);
            assert!(o.reports.len() + o.errors.len() >= 1, "cut {cut}");
        }
    }
}

#[test]
fn tallies_name_sources_and_derive_alignment() {
    let strict_spf = RECORD; // aspf=s in the fixture: bounce.example.com does not align
    let xml = aggregate(
        "",
        "",
        &format!(
            "{strict_spf}{}",
            RECORD
                .replace("192.0.2.1", "198.51.100.9")
                .replace("mail.example.com", "other.example")
                .replace("<disposition>none", "<disposition>reject")
        ),
    );
    let names = SourceNames::new(
        &[crate::config::SourceMapEntry {
            name: crate::config::Name("brevo".into()),
            cidrs: vec!["192.0.2.0/24".into()],
        }],
        &[],
    );
    let o = read_bytes("x", xml.as_bytes(), &Limits::default(), &names);
    let r = only_dmarc(&o);
    let t: Vec<(&str, &str, bool, bool, bool, u64)> = r
        .tallies
        .iter()
        .map(|(k, n)| {
            (
                names.name(k.source),
                k.disposition.as_str(),
                k.dmarc_pass,
                k.spf_aligned,
                k.dkim_aligned,
                *n,
            )
        })
        .collect();
    assert_eq!(
        t,
        vec![
            ("unknown", "reject", false, false, false, 5),
            ("brevo", "none", true, false, true, 5),
        ]
    );
}
