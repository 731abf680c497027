//! Tokens of the structured header values of RFC 8601 (`Authentication-Results`), RFC 8617
//! (`ARC-Authentication-Results`) and RFC 7208 (`Received-SPF`): words, quoted strings, `;`
//! and `=`, with CFWS (blanks and comments, nested to any depth) dropped. A token records
//! whether CFWS stood before it, so `"john doe"@example.com` reads as one value.
//!
//! One pass, no recursion: a comment is a depth counter, an unclosed comment or quoted string
//! runs to the end of the input, and a stray `)` is skipped.

use crate::canary::text::truncate;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    /// A run of anything but blanks, `(`, `)`, `"`, `;` and `=`.
    Word(&'a str),
    /// The content of a quoted string, unescaped (cut at [`super::MAX_VALUE_LEN`]).
    Quoted(String),
    Semi,
    Eq,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: Kind<'a>,
    /// No blank or comment between this token and the one before.
    pub glued: bool,
}

#[derive(Clone)]
pub(crate) struct Lexer<'a> {
    s: &'a str,
    i: usize,
    peeked: Option<Option<Token<'a>>>,
}

impl<'a> Lexer<'a> {
    pub fn new(s: &'a str) -> Lexer<'a> {
        Lexer {
            s,
            i: 0,
            peeked: None,
        }
    }

    pub fn peek(&mut self) -> Option<&Token<'a>> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan());
        }
        self.peeked.as_ref().and_then(Option::as_ref)
    }

    pub fn peek_kind(&mut self) -> Option<&Kind<'a>> {
        self.peek().map(|t| &t.kind)
    }

    /// Drops tokens up to and including the next `;` (error recovery).
    pub fn skip_past_semi(&mut self) {
        for t in self.by_ref() {
            if t.kind == Kind::Semi {
                break;
            }
        }
    }

    /// Skips blanks and comments; true when any were skipped.
    fn skip_cfws(&mut self) -> bool {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut depth = 0usize;
        while let Some(&c) = b.get(self.i) {
            match c {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                b'\\' if depth > 0 => self.i += 1,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ if depth > 0 => {}
                _ => break,
            }
            self.i += 1;
        }
        self.i = self.i.min(b.len());
        self.i > start
    }

    fn scan(&mut self) -> Option<Token<'a>> {
        let glued = !self.skip_cfws();
        let b = self.s.as_bytes();
        let c = *b.get(self.i)?;
        let kind = match c {
            b';' => {
                self.i += 1;
                Kind::Semi
            }
            b'=' => {
                self.i += 1;
                Kind::Eq
            }
            b'"' => Kind::Quoted(self.quoted()),
            _ => {
                let start = self.i;
                while let Some(&c) = b.get(self.i) {
                    if matches!(
                        c,
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'"' | b';' | b'='
                    ) {
                        break;
                    }
                    self.i += 1;
                }
                // Every stop byte is ASCII, so both ends are char boundaries.
                Kind::Word(self.s.get(start..self.i).unwrap_or(""))
            }
        };
        Some(Token { kind, glued })
    }

    /// At an opening quote: reads to the closing one, unescaping quoted-pairs.
    fn quoted(&mut self) -> String {
        let b = self.s.as_bytes();
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = b.get(self.i) {
            self.i += 1;
            let c = match c {
                b'"' => break,
                b'\\' => match b.get(self.i) {
                    Some(&n) => {
                        self.i += 1;
                        n
                    }
                    None => break,
                },
                c => c,
            };
            if out.len() < super::MAX_VALUE_LEN {
                out.push(c);
            }
        }
        truncate(&String::from_utf8_lossy(&out), super::MAX_VALUE_LEN).to_string()
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        match self.peeked.take() {
            Some(t) => t,
            None => self.scan(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind<'_>> {
        Lexer::new(s).map(|t| t.kind).collect()
    }

    #[test]
    fn words_quotes_and_separators() {
        use Kind::*;
        assert_eq!(
            kinds("mx.example 1; spf=pass (a (nested) comment) smtp.mailfrom=\"a\\\"b\"@x.org"),
            [
                Word("mx.example"),
                Word("1"),
                Semi,
                Word("spf"),
                Eq,
                Word("pass"),
                Word("smtp.mailfrom"),
                Eq,
                Quoted("a\"b".into()),
                Word("@x.org"),
            ]
        );
        let glued: Vec<bool> = Lexer::new("a=\"q\"@d (c)e f").map(|t| t.glued).collect();
        assert_eq!(glued, [true, true, true, true, false, false]);
    }

    #[test]
    fn unbalanced_and_deep_input_ends_cleanly() {
        assert_eq!(kinds("a (unclosed ; b=c"), [Kind::Word("a")]);
        assert_eq!(kinds("a ) b"), [Kind::Word("a"), Kind::Word("b")]);
        assert_eq!(kinds("\"open ; x"), [Kind::Quoted("open ; x".into())]);
        assert_eq!(kinds("(\\"), []);
        assert_eq!(kinds("\"\\"), [Kind::Quoted(String::new())]);
        let deep = format!("{}x{} y", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(kinds(&deep), [Kind::Word("y")]);
        let long = format!("\"{}\"", "é".repeat(1000));
        match &kinds(&long)[..] {
            [Kind::Quoted(q)] => assert!(q.len() <= super::super::MAX_VALUE_LEN),
            other => panic!("{other:?}"),
        }
    }
}
