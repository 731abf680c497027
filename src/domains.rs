//! Domain names as the checks compare them: normalised (trimmed, lower-case, no trailing dot)
//! and reduced to their organizational domain, which receivers find with the Public Suffix List
//! (or RFC 9990's DNS tree walk). The exporter carries no copy of the list:
//! [`organizational_domain`] knows the generic rule (one label below the top-level domain) plus
//! a built-in table of the multi-label public suffixes that mail commonly comes from (`co.uk`,
//! `com.au`, `co.jp`, `gob.mx`, ...). For a domain under a suffix missing from the table the
//! result can be one label too short, which makes two unrelated registrations under that suffix
//! look aligned; for the exporter's purposes (a receiver's verdict on the owner's own mail, the
//! owner's own From domain) that only matters for suffixes the owner does not use.
//! [`first_address`] reads the first address of a header such as `From:`.

/// Multi-label public suffixes (the ICANN section of the Public Suffix List that mail comes
/// from, and a few private ones shared by unrelated senders), lower-case.
#[rustfmt::skip]
const MULTI_LABEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "sch.uk", "ac.uk", "gov.uk",
    "nhs.uk", "police.uk", "com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
    "co.nz", "net.nz", "org.nz", "govt.nz", "ac.nz", "school.nz", "geek.nz", "co.jp", "ne.jp",
    "or.jp", "ac.jp", "go.jp", "gr.jp", "ad.jp", "ed.jp", "lg.jp", "co.kr", "or.kr", "ne.kr",
    "go.kr", "ac.kr", "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "com.hk", "net.hk",
    "org.hk", "edu.hk", "gov.hk", "com.tw", "net.tw", "org.tw", "edu.tw", "gov.tw", "com.sg",
    "net.sg", "org.sg", "edu.sg", "gov.sg", "com.my", "net.my", "org.my", "edu.my", "gov.my",
    "co.id", "or.id", "ac.id", "go.id", "web.id", "co.in", "net.in", "org.in", "firm.in", "gen.in",
    "ind.in", "ac.in", "edu.in", "gov.in", "nic.in", "res.in", "com.pk", "net.pk", "org.pk",
    "com.ph", "net.ph", "org.ph", "co.th", "in.th", "or.th", "ac.th", "go.th", "com.vn", "net.vn",
    "org.vn", "co.il", "org.il", "net.il", "ac.il", "gov.il", "com.tr", "net.tr", "org.tr",
    "gen.tr", "edu.tr", "gov.tr", "com.sa", "net.sa", "org.sa", "com.eg", "ae.org", "co.ae",
    "net.ae", "org.ae", "gov.ae", "com.br", "net.br", "org.br", "gov.br", "edu.br", "art.br",
    "blog.br", "com.mx", "net.mx", "org.mx", "gob.mx", "edu.mx", "com.ar", "net.ar", "org.ar",
    "gob.ar", "gov.ar", "com.co", "net.co", "org.co", "gov.co", "edu.co", "com.pe", "net.pe",
    "org.pe", "gob.pe", "cl.cl", "com.ec", "com.uy", "com.ve", "co.ve", "com.bo", "com.py",
    "com.do", "com.gt", "com.pa", "co.cr", "fin.ec", "co.za", "org.za", "net.za", "gov.za",
    "ac.za", "web.za", "co.ke", "or.ke", "ac.ke", "go.ke", "com.ng", "org.ng", "gov.ng", "edu.ng",
    "co.tz", "co.ug", "co.zw", "com.gh", "com.ma", "co.ma", "co.at", "or.at", "gv.at", "ac.at",
    "com.pl", "net.pl", "org.pl", "gov.pl", "edu.pl", "com.es", "org.es", "nom.es", "gob.es",
    "edu.es", "com.pt", "org.pt", "gov.pt", "com.gr", "org.gr", "gov.gr", "com.cy", "com.mt",
    "co.hu", "com.ua", "org.ua", "net.ua", "gov.ua", "com.ru", "org.ru", "net.ru", "msk.ru",
    "spb.ru", "co.rs", "org.rs", "com.hr", "co.it", "gov.it", "asso.fr", "gouv.fr", "com.fr",
    "co.no", "priv.no", "co.je", "co.gg", "co.im", "k12.ca.us", "fed.us", "dni.us", "isa.us",
    "nsn.us", "amazonses.com", "sendgrid.net", "mailgun.org", "herokuapp.com", "github.io",
    "onmicrosoft.com", "blogspot.com", "appspot.com", "azurewebsites.net", "cloudapp.net",
];

/// Normalises a domain for storing: trimmed, lower-case, without a trailing dot.
pub fn normalize_domain(d: &str) -> String {
    trim_domain(d).to_ascii_lowercase()
}

/// Trimmed and without a trailing dot, case kept (for comparisons without allocating).
pub(crate) fn trim_domain(d: &str) -> &str {
    let d = d.trim();
    d.strip_suffix('.').unwrap_or(d)
}

fn suffixes() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| MULTI_LABEL_SUFFIXES.iter().copied().collect())
}

/// Whether `s` (any case) is in the table of multi-label public suffixes.
fn is_multi_label_suffix(s: &str) -> bool {
    let mut buf = [0u8; 64];
    if s.len() > buf.len() {
        return false;
    }
    let lower = &mut buf[..s.len()];
    lower.copy_from_slice(s.as_bytes());
    lower.make_ascii_lowercase();
    std::str::from_utf8(lower).is_ok_and(|l| suffixes().contains(l))
}

/// The organizational domain of `domain` (trimmed, any case): the public suffix plus one
/// label. A bare public suffix or single label is its own organizational domain.
pub fn organizational_domain(domain: &str) -> &str {
    let domain = trim_domain(domain);
    // Start offsets of the last four labels, last first.
    let mut starts = [0usize; 4];
    let mut n = 0;
    let mut end = domain.len();
    while n < 4 {
        match domain[..end].rfind('.') {
            Some(i) => {
                starts[n] = i + 1;
                n += 1;
                end = i;
            }
            None => {
                starts[n] = 0;
                n += 1;
                break;
            }
        }
    }
    // starts[k] is where the suffix of k+1 labels begins; n labels exist (up to 4).
    if n <= 2 {
        return domain;
    }
    for suffix_labels in [3usize, 2] {
        if n > suffix_labels && is_multi_label_suffix(&domain[starts[suffix_labels - 1]..]) {
            return &domain[starts[suffix_labels]..];
        }
        if n == suffix_labels && starts[suffix_labels - 1] == 0 && is_multi_label_suffix(domain) {
            return domain;
        }
    }
    &domain[starts[1]..]
}

/// The first address of an address-list header value (`Name <a@b>`, `a@b`, a group), as
/// mailparse reads it; the value is cut at 2,048 bytes first.
pub fn first_address(value: &str) -> Option<String> {
    let mut end = value.len().min(2048);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    mailparse::addrparse(&value[..end])
        .ok()?
        .iter()
        .find_map(|a| match a {
            mailparse::MailAddr::Single(s) => Some(s.addr.clone()),
            mailparse::MailAddr::Group(g) => g.addrs.first().map(|s| s.addr.clone()),
        })
}
