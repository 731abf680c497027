//! `/runbooks`: docs/runbooks.md, built into the binary and served as one HTML page, so the
//! `runbook_url` of every shipped alert (`http://<exporter>/runbooks#<alertname in lower case>`)
//! opens wherever the exporter is reachable, at the version that raised the alert. Headings get
//! GitHub-style anchors (`## DeliverabilityProviderDown` → `#deliverabilityproviderdown`).

use std::sync::OnceLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

/// The runbooks as written in the repository.
pub const MARKDOWN: &str = include_str!("../docs/runbooks.md");

/// The anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn level(l: HeadingLevel) -> u8 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Renders Markdown to an HTML fragment whose headings carry `id` anchors. Raw HTML in the
/// source is shown as text, never passed through.
pub fn render_markdown(md: &str) -> String {
    let mut events = Vec::new();
    let mut heading: Option<(u8, Vec<Event>)> = None;
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Heading { level: l, .. }) => heading = Some((level(l), Vec::new())),
            Event::End(TagEnd::Heading(_)) => {
                if let Some((l, inner)) = heading.take() {
                    let text: String = inner
                        .iter()
                        .filter_map(|e| match e {
                            Event::Text(t) | Event::Code(t) => Some(t.to_string()),
                            _ => None,
                        })
                        .collect();
                    events.push(Event::Html(
                        format!("<h{l} id=\"{}\">", crate::landing::esc(&slug(&text))).into(),
                    ));
                    events.extend(inner);
                    events.push(Event::Html(format!("</h{l}>\n").into()));
                }
            }
            Event::Html(t) | Event::InlineHtml(t) => {
                let e = Event::Text(t);
                match &mut heading {
                    Some((_, inner)) => inner.push(e),
                    None => events.push(e),
                }
            }
            e => match &mut heading {
                Some((_, inner)) => inner.push(e),
                None => events.push(e),
            },
        }
    }
    let mut out = String::with_capacity(md.len() * 2);
    html::push_html(&mut out, events.into_iter());
    out
}

/// The whole page, rendered once.
pub fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Deliverability Exporter — runbooks</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:60em;padding:0 1em;color:#222;line-height:1.45}}
code{{font-size:.95em;background:#f3f3f3;padding:0 .2em}} pre{{background:#f3f3f3;padding:.6em;overflow-x:auto}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}
h2{{border-top:1px solid #ddd;padding-top:.8em;margin-top:1.6em}} :target{{background:#fff4d6}}
</style></head><body>
<p><a href="/">← Deliverability Exporter</a> · version {}</p>
{}</body></html>
"#,
            crate::metrics::VERSION,
            render_markdown(MARKDOWN)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_get_the_anchors_alerts_link_to() {
        assert_eq!(
            slug("DeliverabilityProviderDown"),
            "deliverabilityproviderdown"
        );
        assert_eq!(slug("What to do first"), "what-to-do-first");
        let h = render_markdown("## DeliverabilitySMTPAuthFailing\n\ntext `code`\n");
        assert!(
            h.contains(
                "<h2 id=\"deliverabilitysmtpauthfailing\">DeliverabilitySMTPAuthFailing</h2>"
            ),
            "{h}"
        );
        assert!(h.contains("<code>code</code>"), "{h}");
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let h = render_markdown("a <script>alert(1)</script> b\n\n<b>x</b>\n");
        assert!(!h.contains("<script>") && !h.contains("<b>"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
    }

    #[test]
    fn every_alert_of_the_shipped_rules_has_its_section() {
        let page = page();
        for f in ["canary", "dns", "exporter", "reports"] {
            let path = format!("{}/alerts/{f}.yml", env!("CARGO_MANIFEST_DIR"));
            let rules = std::fs::read_to_string(&path).unwrap();
            for line in rules.lines() {
                if let Some(name) = line.trim().strip_prefix("- alert: ") {
                    let id = format!("id=\"{}\"", slug(name));
                    assert!(page.contains(&id), "{path}: {name} has no section");
                }
            }
        }
    }
}
