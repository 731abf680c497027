//! Why a configuration is refused: [`ConfigError`] holds every [`Problem`], each printed as
//! `file:line:column: field.path: what is expected`.
//!
//! A problem found by toml or serde carries a byte span; one found later by validation names a
//! field path (`providers[1].port`), whose position is looked up in the parsed document
//! ([`Problems`] does that as problems are added). A field that is absent points at the closest
//! enclosing table, so "expected the host" lands on the `[[providers]]` line it belongs to.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::DeValue;

/// Why a configuration was refused: one or more problems, each with its position.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column of the offending value, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field path, e.g. `providers[1].port`; empty for the document itself.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub(super) fn whole_file(message: String) -> Problem {
        Problem {
            line: None,
            column: None,
            field: String::new(),
            message,
        }
    }

    pub(super) fn at_span(
        text: &str,
        span: Option<Range<usize>>,
        field: String,
        message: String,
    ) -> Problem {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Problem {
            line,
            column,
            field,
            // toml's messages sometimes end in a newline.
            message: message.trim().to_string(),
        }
    }

    /// A syntax error of the document.
    pub(super) fn syntax(text: &str, e: &toml::de::Error) -> Problem {
        Problem::at_span(text, e.span(), String::new(), e.message().to_string())
    }

    /// A value serde refused, at its own span or else at its field's.
    pub(super) fn refused(
        text: &str,
        tree: &Spanned<DeValue<'_>>,
        e: serde_path_to_error::Error<toml::de::Error>,
    ) -> Problem {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let path = if path == "." { String::new() } else { path };
        let span = inner.span().or_else(|| span_of(tree, &path));
        Problem::at_span(text, span, path, inner.message().to_string())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let (Some(l), Some(c)) = (p.line, p.column) {
                write!(f, ":{l}:{c}")?;
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The parsed document with the span of every key and value.
pub(super) fn spanned_tree(text: &str) -> Result<Spanned<DeValue<'_>>, Problem> {
    let t = toml::de::DeTable::parse(text).map_err(|e| Problem::syntax(text, &e))?;
    let span = t.span();
    Ok(Spanned::new(span, DeValue::Table(t.into_inner())))
}

/// The problems of the validation step, collected with their positions.
pub(super) struct Problems<'t> {
    text: &'t str,
    tree: &'t Spanned<DeValue<'t>>,
    list: Vec<Problem>,
}

impl<'t> Problems<'t> {
    pub(super) fn new(text: &'t str, tree: &'t Spanned<DeValue<'t>>) -> Problems<'t> {
        Problems {
            text,
            tree,
            list: Vec::new(),
        }
    }

    /// Adds a problem with the field at `field` (a path like `providers[1].port`).
    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        let span = span_of(self.tree, &field);
        self.list
            .push(Problem::at_span(self.text, span, field, message.into()));
    }

    /// The problems in the order of the file (top to bottom), if any.
    pub(super) fn into_sorted(self) -> Vec<Problem> {
        let mut list = self.list;
        list.sort_by_key(|p| (p.line, p.column));
        list
    }
}

/// Finds the span of a field path like `providers[1].port` in the parsed document. When the
/// field itself is absent, the closest enclosing table's span is returned.
fn span_of(tree: &Spanned<DeValue<'_>>, path: &str) -> Option<Range<usize>> {
    let mut cur = tree;
    let mut best = None;
    for seg in path_segments(path) {
        let next = match seg {
            Seg::Key(k) => cur.get_ref().as_table().and_then(|t| {
                t.iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(key, v)| {
                        // Point at the key for tables (their own span is the whole table).
                        if v.get_ref().is_table() {
                            (key.span(), v)
                        } else {
                            (v.span(), v)
                        }
                    })
            }),
            Seg::Index(i) => cur
                .get_ref()
                .as_array()
                .and_then(|a| a.get(i))
                .map(|v| (v.span(), v)),
        };
        match next {
            Some((span, v)) => {
                best = Some(span);
                cur = v;
            }
            None => break,
        }
    }
    best
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part
            .split_once('[')
            .map(|(k, r)| (k, Some(r)))
            .unwrap_or((part, None));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest {
            let (idx, after) = r.split_once(']').unwrap_or((r, ""));
            if let Ok(i) = idx.parse() {
                out.push(Seg::Index(i));
            }
            rest = after.strip_prefix('[');
        }
    }
    out
}
