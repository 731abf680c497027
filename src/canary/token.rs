//! The canary token: `dx-` and 20 characters of lower-case base32 (RFC 4648 alphabet,
//! `a`–`z` and `2`–`7`), 100 random bits. It travels in the `X-Deliverability-Canary`
//! header and in the Subject, so a canary is found again even where a provider rewrites
//! Message-ID and Date; lower case because some receivers lower-case what they index.

use rand::Rng;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "X-Deliverability-Canary";
/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "dx-";
/// Base32 characters after the prefix.
pub const TOKEN_CHARS: usize = 20;
/// A token's whole length in bytes.
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + TOKEN_CHARS;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new random token.
pub fn new_token() -> String {
    let mut rng = rand::rng();
    let mut t = String::with_capacity(TOKEN_LEN);
    t.push_str(TOKEN_PREFIX);
    t.extend((0..TOKEN_CHARS).map(|_| char::from(ALPHABET[rng.random_range(0..32)])));
    t
}

/// Whether `s` is exactly one well-formed token.
pub fn is_token(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.starts_with(TOKEN_PREFIX)
        && s.bytes().skip(TOKEN_PREFIX.len()).all(is_base32)
}

/// The token in the `X-Deliverability-Canary` header's value, when it is one.
pub fn token_from_header(value: &str) -> Option<&str> {
    let v = value.trim();
    is_token(v).then_some(v)
}

/// The first token in a (decoded) Subject: the prefix, exactly [`TOKEN_CHARS`] base32
/// characters, and no letter or digit glued on either side, so `xdx-…` or a longer run is not
/// taken for a token.
pub fn token_from_subject(subject: &str) -> Option<&str> {
    find_token(subject, &mut 0)
}

/// [`token_from_subject`], counting in `examined` the candidates looked at: each occurrence of
/// the prefix once, each costing at most a token's length, so the scan is linear.
fn find_token<'a>(subject: &'a str, examined: &mut usize) -> Option<&'a str> {
    let b = subject.as_bytes();
    let mut from = 0;
    while let Some(pos) = subject.get(from..)?.find(TOKEN_PREFIX) {
        *examined += 1;
        let start = from + pos;
        let end = start + TOKEN_LEN;
        let glued_before = start > 0 && b[start - 1].is_ascii_alphanumeric();
        let glued_after = b.get(end).is_some_and(u8::is_ascii_alphanumeric);
        if let Some(candidate) = subject.get(start..end)
            && !glued_before
            && !glued_after
            && is_token(candidate)
        {
            return Some(candidate);
        }
        from = start + TOKEN_PREFIX.len();
    }
    None
}

fn is_base32(b: u8) -> bool {
    b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn new_tokens_are_well_formed_and_unique() {
        let tokens: HashSet<String> = (0..2000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 2000);
        for t in &tokens {
            assert!(is_token(t), "{t}");
        }
        // Every alphabet character turns up: the generator uses the whole alphabet.
        let seen: HashSet<u8> = tokens.iter().flat_map(|t| t.bytes().skip(3)).collect();
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn recognises_exactly_the_format() {
        assert!(is_token("dx-abcdefghijklmnop2345"));
        for bad in [
            "dx-abcdefghijklmnop234",   // 19 chars
            "dx-abcdefghijklmnop23456", // 21 chars
            "dx-abcdefghijklmnop2341",  // 1 is not base32
            "dx-ABCDEFGHIJKLMNOP2345",  // upper case
            "DX-abcdefghijklmnop2345",
            "ab-abcdefghijklmnop2345",
            "",
        ] {
            assert!(!is_token(bad), "{bad}");
        }
    }

    #[test]
    fn finds_the_token_in_the_header_value() {
        assert_eq!(
            token_from_header("  dx-abcdefghijklmnop2345 \t"),
            Some("dx-abcdefghijklmnop2345")
        );
        assert_eq!(token_from_header("<dx-abcdefghijklmnop2345>"), None);
        assert_eq!(token_from_header("<script>"), None);
    }

    #[test]
    fn finds_the_token_in_a_subject() {
        let t = Some("dx-abcdefghijklmnop2345");
        assert_eq!(
            token_from_subject("Delivery check dx-abcdefghijklmnop2345"),
            t
        );
        assert_eq!(token_from_subject("[dx-abcdefghijklmnop2345] check"), t);
        assert_eq!(
            token_from_subject("[SPAM] check dx-abcdefghijklmnop2345."),
            t
        );
        assert_eq!(
            token_from_subject("dx-short dx-abcdefghijklmnop2345 dx-zzzzzzzzzzzzzzzzzzzz"),
            t,
            "the first well-formed one wins"
        );
        assert_eq!(token_from_subject("xdx-abcdefghijklmnop2345"), None);
        assert_eq!(token_from_subject("dx-abcdefghijklmnop2345a"), None);
        assert_eq!(token_from_subject("dx-abcdefghijklmnop234"), None);
        assert_eq!(token_from_subject("Fwd: no token here"), None);
        assert_eq!(token_from_subject("dx-abcdefghijklmnop234é"), None);
        assert_eq!(token_from_subject("ééé dx-"), None);
    }

    #[test]
    fn scanning_a_long_subject_is_linear() {
        let s = "dx-".repeat(100_000);
        let mut examined = 0;
        assert_eq!(find_token(&s, &mut examined), None);
        assert_eq!(
            examined, 100_000,
            "each occurrence of the prefix looked at once"
        );
    }
}
