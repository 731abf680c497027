//! The `tag=value; tag=value` lists that DKIM (RFC 6376 section 3.2), DMARC, MTA-STS and
//! TLS-RPT records are written in. Tag names are compared case-insensitively and returned
//! lower-cased; values are trimmed. A duplicate tag or a part without `=` is an error.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("{0:?} is not a tag=value pair")]
    NotATag(String),
    #[error("tag {0:?} appears more than once")]
    Duplicate(String),
    #[error("tag name {0:?} is not valid (letters, digits and '_')")]
    BadName(String),
}

/// Parses a tag list. Empty parts (a trailing `;`) are allowed.
pub fn parse(s: &str) -> Result<Vec<(String, String)>, TagError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in s.split(';') {
        let part = part.trim_matches(|c: char| c.is_ascii_whitespace());
        if part.is_empty() {
            continue;
        }
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| TagError::NotATag(short(part)))?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty()
            || !name.starts_with(|c: char| c.is_ascii_alphabetic())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(TagError::BadName(short(&name)));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(TagError::Duplicate(name));
        }
        out.push((name, value.trim().to_string()));
    }
    Ok(out)
}

/// The value of `name` in a parsed list.
pub fn get<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// At most 60 characters of `s`, for messages about hostile input.
pub fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tag_lists() {
        let t = parse(" v=DKIM1 ;K=rsa; p = AB CD ;").unwrap();
        assert_eq!(
            t,
            vec![
                ("v".into(), "DKIM1".into()),
                ("k".into(), "rsa".into()),
                ("p".into(), "AB CD".into())
            ]
        );
        assert_eq!(get(&t, "k"), Some("rsa"));
        assert_eq!(get(&t, "x"), None);
        assert_eq!(parse("a=1; a=2"), Err(TagError::Duplicate("a".into())));
        assert!(matches!(parse("a=1; junk"), Err(TagError::NotATag(_))));
        assert!(matches!(parse("=1"), Err(TagError::BadName(_))));
        assert!(matches!(parse("a-b=1"), Err(TagError::BadName(_))));
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("p=").unwrap(), vec![("p".into(), "".into())]);
        assert!(short(&"x".repeat(100)).ends_with('…'));
    }
}
