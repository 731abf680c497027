//! The parts of a message that may hold a report: the leaves of its MIME tree, their file
//! names, and which of them are candidates.

pub(super) fn collect_leaves<'a>(
    m: &'a mailparse::ParsedMail<'a>,
    out: &mut Vec<&'a mailparse::ParsedMail<'a>>,
    depth: usize,
) {
    if m.subparts.is_empty() || depth > 8 {
        out.push(m);
    } else {
        for s in &m.subparts {
            collect_leaves(s, out, depth + 1);
        }
    }
}

/// The part's file name: Content-Disposition `filename` (RFC 2231 continuations and
/// charsets decoded by mailparse), else Content-Type `name`.
pub(super) fn attachment_name(p: &mailparse::ParsedMail<'_>) -> Option<String> {
    let d = p.get_content_disposition();
    d.params
        .get("filename")
        .or_else(|| p.ctype.params.get("name"))
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
}

/// Whether a part of a multipart message may hold a report: an attachment, a named part,
/// or any type but the message text.
pub(super) fn is_candidate(p: &mailparse::ParsedMail<'_>) -> bool {
    let d = p.get_content_disposition();
    if p.ctype.mimetype == "text/html" {
        return false;
    }
    if d.disposition == mailparse::DispositionType::Attachment || attachment_name(p).is_some() {
        return true;
    }
    !matches!(
        p.ctype.mimetype.as_str(),
        "text/plain"
            | "text/html"
            | "text/enriched"
            | "text/rfc822-headers"
            | "message/delivery-status"
            | "message/feedback-report"
            | "message/disposition-notification"
    ) && !p.ctype.mimetype.starts_with("multipart/")
}
