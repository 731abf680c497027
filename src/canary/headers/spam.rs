//! Spam scores and verdicts that filters write into delivered mail, one entry per filter:
//!
//! | source | headers |
//! | --- | --- |
//! | `spamassassin` | `X-Spam-Status: Yes, score=7.1 required=5.0 tests=...`, `X-Spam-Score`, `X-Spam-Flag` |
//! | `rspamd` | `X-Spamd-Result`/`X-Rspamd-Result: default: False [3.40 / 15.00]`, `X-Rspamd-Score`, `X-Rspamd-Action`, `X-Spam: yes`, and `X-Spam-Status: Yes, score=7.50` when rspamd's other headers are there |
//! | `stalwart` | `X-Spam-Result` (`TAG (score)` list, summed; or a bracketed `[score / threshold]`), and `X-Spam-Status: Yes, score=7.50` with it |
//! | `microsoft_scl` | `X-MS-Exchange-Organization-SCL`, else `SCL:` of `X-Forefront-Antispam-Report`; the verdict from its `SFV:` or, without one, SCL ≥ 5 |
//! | `barracuda` | `X-Barracuda-Spam-Score`, `X-Barracuda-Spam-Status: Yes/No, SCORE=...` |
//! | `gmail` | `X-Gm-Spam: 0/1`: a verdict only; Gmail writes no score, so none is made up |
//! | `other` | `X-Spam-Status` in the short `Yes, score=N` form with no other header saying whose |
//!
//! The topmost header of each name is read (the receiver's own). A score is a finite number;
//! `is_spam` is set only where a header states a verdict: rspamd's `default: False` only says
//! "not rejected" and gives none.

use super::block::HeaderBlock;

/// The filter a score came from: a fixed set of label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpamSource {
    SpamAssassin,
    Rspamd,
    Stalwart,
    MicrosoftScl,
    Barracuda,
    Gmail,
    Other,
}

impl SpamSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SpamSource::SpamAssassin => "spamassassin",
            SpamSource::Rspamd => "rspamd",
            SpamSource::Stalwart => "stalwart",
            SpamSource::MicrosoftScl => "microsoft_scl",
            SpamSource::Barracuda => "barracuda",
            SpamSource::Gmail => "gmail",
            SpamSource::Other => "other",
        }
    }
}

/// One filter's view of the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpamVerdict {
    pub source: SpamSource,
    pub score: Option<f64>,
    /// The filter's stated verdict, when it states one.
    pub is_spam: Option<bool>,
}

/// Headers that show rspamd wrote the message's `X-Spam-Status`.
const RSPAMD_MARKERS: [&str; 7] = [
    "X-Spamd-Result",
    "X-Rspamd-Result",
    "X-Rspamd-Score",
    "X-Rspamd-Action",
    "X-Rspamd-Server",
    "X-Rspamd-Queue-Id",
    "X-Spamd-Bar",
];

/// Tags summed from a Stalwart `X-Spam-Result`, at most.
const MAX_TAGS: usize = 500;

/// Every filter's verdict found in the block, in [`SpamSource`] order.
pub(crate) fn verdicts(block: &HeaderBlock<'_>) -> Vec<SpamVerdict> {
    let mut acc = Acc::default();
    rspamd(block, &mut acc);
    spam_status(block, &mut acc);
    // rspamd's `X-Spam: Yes` (present on spam only) after X-Spam-Status, which says both.
    if let Some(v) = block.text("X-Spam") {
        acc.verdict(SpamSource::Rspamd, yes_no(&v));
    }
    stalwart(block, &mut acc);
    microsoft(block, &mut acc);
    barracuda(block, &mut acc);
    if let Some(v) = block.text("X-Gm-Spam") {
        acc.verdict(SpamSource::Gmail, zero_one(&v));
    }
    acc.finish()
}

/// Collects per source; the first value set for a field wins, so callers go from the most
/// to the least authoritative header.
#[derive(Default)]
struct Acc(Vec<SpamVerdict>);

impl Acc {
    fn entry(&mut self, source: SpamSource) -> &mut SpamVerdict {
        let i = match self.0.iter().position(|v| v.source == source) {
            Some(i) => i,
            None => {
                self.0.push(SpamVerdict {
                    source,
                    score: None,
                    is_spam: None,
                });
                self.0.len() - 1
            }
        };
        &mut self.0[i]
    }
    fn score(&mut self, source: SpamSource, score: Option<f64>) {
        if let Some(s) = score {
            self.entry(source).score.get_or_insert(s);
        }
    }
    fn verdict(&mut self, source: SpamSource, is_spam: Option<bool>) {
        if let Some(v) = is_spam {
            self.entry(source).is_spam.get_or_insert(v);
        }
    }
    fn finish(mut self) -> Vec<SpamVerdict> {
        self.0.sort_by_key(|v| v.source);
        self.0
    }
}

fn rspamd(block: &HeaderBlock<'_>, acc: &mut Acc) {
    use SpamSource::Rspamd;
    if let Some(action) = block.text("X-Rspamd-Action") {
        acc.verdict(Rspamd, rspamd_action(&action));
    }
    for name in ["X-Spamd-Result", "X-Rspamd-Result"] {
        if let Some(v) = block.text(name) {
            acc.score(Rspamd, bracket_score(&v));
            acc.verdict(Rspamd, default_verdict(&v));
        }
    }
    if let Some(v) = block.text("X-Rspamd-Score") {
        acc.score(Rspamd, leading_number(&v));
    }
}

/// `X-Spam-Status`, `X-Spam-Score`, `X-Spam-Flag`: SpamAssassin's, or rspamd's or
/// Stalwart's short form.
fn spam_status(block: &HeaderBlock<'_>, acc: &mut Acc) {
    let status = block.text("X-Spam-Status");
    let score = block.text("X-Spam-Score");
    let flag = block.text("X-Spam-Flag");
    if status.is_none() && score.is_none() && flag.is_none() {
        return;
    }
    let source = status_source(block, status.as_deref());
    if let Some(st) = &status {
        acc.verdict(source, yes_no(st));
        acc.score(source, tagged_number(st, &["score", "hits"]));
    }
    acc.score(source, score.as_deref().and_then(leading_number));
    acc.verdict(source, flag.as_deref().and_then(yes_no));
}

/// SpamAssassin writes `required=` and `tests=`; the short `Yes, score=N` is rspamd's or
/// Stalwart's, told apart by their other headers.
fn status_source(block: &HeaderBlock<'_>, status: Option<&str>) -> SpamSource {
    let sa = |s: &str| {
        ["required", "tests", "hits"]
            .iter()
            .any(|t| tag_at(s, t).is_some())
    };
    match status {
        Some(s) if sa(s) => SpamSource::SpamAssassin,
        _ if RSPAMD_MARKERS.iter().any(|m| block.has(m)) => SpamSource::Rspamd,
        _ if block.has("X-Spam-Result") => SpamSource::Stalwart,
        Some(_) => SpamSource::Other,
        // `X-Spam-Score` or `X-Spam-Flag` alone: SpamAssassin's `add_header` names.
        None => SpamSource::SpamAssassin,
    }
}

/// Stalwart's `X-Spam-Result: TAG (1.00), TAG (-0.50)`: the total is the sum of the tags.
/// A bracketed `default: false [3.50 / 15.00]` form is read as rspamd's is.
fn stalwart(block: &HeaderBlock<'_>, acc: &mut Acc) {
    use SpamSource::Stalwart;
    let Some(v) = block.text("X-Spam-Result") else {
        return;
    };
    if v.contains('[') {
        acc.score(Stalwart, bracket_score(&v));
        acc.verdict(Stalwart, default_verdict(&v));
        return;
    }
    let mut sum = 0.0;
    let mut tags = 0;
    for tag in v.split(',').take(MAX_TAGS) {
        let score = tag
            .split_once('(')
            .and_then(|(_, rest)| leading_number(rest));
        if let Some(s) = score {
            sum += s;
            tags += 1;
        }
    }
    if tags > 0 && f64::is_finite(sum) {
        // Stalwart prints two decimals; summing them must not add float noise.
        acc.score(Stalwart, Some((sum * 100.0).round() / 100.0));
    }
}

fn microsoft(block: &HeaderBlock<'_>, acc: &mut Acc) {
    use SpamSource::MicrosoftScl;
    let report = block.text("X-Forefront-Antispam-Report");
    let field = |name: &str| report.as_deref().and_then(|r| forefront_field(r, name));
    let scl = block
        .text("X-MS-Exchange-Organization-SCL")
        .as_deref()
        .and_then(leading_number)
        .or_else(|| field("SCL").and_then(leading_number))
        .filter(|s| (-1.0..=9.0).contains(s));
    acc.score(MicrosoftScl, scl);
    acc.verdict(MicrosoftScl, field("SFV").and_then(sfv_verdict));
    acc.verdict(MicrosoftScl, scl.map(|s| s >= 5.0));
}

fn barracuda(block: &HeaderBlock<'_>, acc: &mut Acc) {
    use SpamSource::Barracuda;
    if let Some(v) = block.text("X-Barracuda-Spam-Score") {
        acc.score(Barracuda, leading_number(&v));
    }
    if let Some(v) = block.text("X-Barracuda-Spam-Status") {
        acc.verdict(Barracuda, yes_no(&v));
        acc.score(Barracuda, tagged_number(&v, &["score"]));
    }
}

/// rspamd actions: `reject`, `add header`, `rewrite subject` are spam; `no action` and
/// `greylist` are not; `soft reject` (rate limits, temporary failures) says nothing.
fn rspamd_action(action: &str) -> Option<bool> {
    match action.trim().to_ascii_lowercase().as_str() {
        "reject" | "add header" | "add_header" | "rewrite subject" | "rewrite_subject" => {
            Some(true)
        }
        "no action" | "no_action" | "greylist" => Some(false),
        _ => None,
    }
}

/// Microsoft's spam filtering verdict (`SFV:`).
fn sfv_verdict(sfv: &str) -> Option<bool> {
    match sfv.trim().to_ascii_uppercase().as_str() {
        "SPM" | "SKS" | "BLK" | "SKB" => Some(true),
        "NSPM" | "SFE" | "SKA" | "SKN" | "SKI" => Some(false),
        _ => None,
    }
}

/// `NAME:value` in a `;`-separated Forefront report.
fn forefront_field<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    report.split(';').find_map(|part| {
        let (k, v) = part.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// rspamd's `default: True [...]`: True means the action was reject. False says nothing
/// about spam (`add header` is False too).
fn default_verdict(v: &str) -> Option<bool> {
    let rest = v.trim_start().strip_prefix("default:")?;
    rest.trim_start()
        .get(..4)
        .filter(|w| w.eq_ignore_ascii_case("true"))
        .map(|_| true)
}

/// The score in `[3.40 / 15.00]`.
fn bracket_score(v: &str) -> Option<f64> {
    let (_, rest) = v.split_once('[')?;
    leading_number(rest)
}

/// A leading `Yes`/`No`, case-insensitive.
fn yes_no(v: &str) -> Option<bool> {
    let word: String = v
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .take(4)
        .collect();
    match word.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn zero_one(v: &str) -> Option<bool> {
    match v.trim() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// The number after the first `tag=` (case-insensitive, at a word start) of any of `tags`.
fn tagged_number(v: &str, tags: &[&str]) -> Option<f64> {
    tags.iter()
        .find_map(|t| tag_at(v, t))
        .and_then(|i| leading_number(&v[i..]))
}

/// The index just after `tag=` where `tag` starts a word.
fn tag_at(v: &str, tag: &str) -> Option<usize> {
    let b = v.as_bytes();
    let n = tag.len();
    (0..b.len().saturating_sub(n)).find_map(|i| {
        let hit = b[i..i + n].eq_ignore_ascii_case(tag.as_bytes())
            && b.get(i + n) == Some(&b'=')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        hit.then_some(i + n + 1)
    })
}

/// A decimal number at the start of `v` (after blanks) and not glued to a letter: `7.1`,
/// `-0.5`, `+3`, `.5`; not `1e9`, `inf` or a 33-character run of digits.
fn leading_number(v: &str) -> Option<f64> {
    let v = v.trim_start();
    let len = v
        .bytes()
        .enumerate()
        .take_while(|&(i, b)| {
            b.is_ascii_digit() || b == b'.' || (i == 0 && matches!(b, b'+' | b'-'))
        })
        .count();
    let glued = v.as_bytes().get(len).is_some_and(u8::is_ascii_alphanumeric);
    if len > 32 || glued {
        return None;
    }
    v[..len].parse::<f64>().ok().filter(|s| s.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Vec<SpamVerdict> {
        verdicts(&HeaderBlock::parse(raw.as_bytes()))
    }

    fn one(source: SpamSource, score: Option<f64>, is_spam: Option<bool>) -> Vec<SpamVerdict> {
        vec![SpamVerdict {
            source,
            score,
            is_spam,
        }]
    }

    #[test]
    fn spamassassin() {
        let v = parse(
            "X-Spam-Flag: NO\r\nX-Spam-Score: -0.1\r\nX-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_SIGNED,\r\n\tDKIM_VALID autolearn=ham version=4.0.0\r\n\r\n",
        );
        assert_eq!(v, one(SpamSource::SpamAssassin, Some(-0.1), Some(false)));
        let old = parse("X-Spam-Status: Yes, hits=12.5 required=5.0\r\n");
        assert_eq!(old, one(SpamSource::SpamAssassin, Some(12.5), Some(true)));
        let flag_only = parse("X-Spam-Flag: YES\r\n");
        assert_eq!(flag_only, one(SpamSource::SpamAssassin, None, Some(true)));
    }

    #[test]
    fn rspamd_as_the_local_stack_writes_it() {
        let v = parse(concat!(
            "X-Spamd-Result: default: False [14.10 / 50.00];\r\n",
            "\tDX_JUNK(15.00)[];\r\n\tDMARC_POLICY_ALLOW(-0.50)[dx.test,none]\r\n",
            "X-Rspamd-Server: seed\r\n",
            "X-Rspamd-Action: add header\r\n",
            "X-Spamd-Bar: ++++++++++++++\r\n",
            "X-Spam: Yes\r\n",
            "X-Spam-Status: Yes, score=14.10\r\n\r\n",
        ));
        assert_eq!(v, one(SpamSource::Rspamd, Some(14.1), Some(true)));
        let ham = parse(
            "X-Spamd-Result: default: False [2.60 / 50.00]\r\nX-Spam-Status: No, score=2.60\r\n",
        );
        assert_eq!(ham, one(SpamSource::Rspamd, Some(2.6), Some(false)));
        let rejected = parse("X-Rspamd-Result: default: True [60.00 / 50.00]\r\n");
        assert_eq!(rejected, one(SpamSource::Rspamd, Some(60.0), Some(true)));
        let not_stated = parse("X-Rspamd-Score: 3.5 / 15.0\r\nX-Rspamd-Action: soft reject\r\n");
        assert_eq!(not_stated, one(SpamSource::Rspamd, Some(3.5), None));
    }

    #[test]
    fn stalwart_tags_are_summed() {
        let v = parse(concat!(
            "X-Spam-Result: DMARC_POLICY_ALLOW (-0.50),\r\n\tDKIM_ALLOW (-0.20),\r\n",
            "\tFROM_HAS_DN (0.00),\r\n\tMISSING_DATE (1.00),\r\n\tBAYES_SPAM (5.10)\r\n",
            "X-Spam-Status: Yes, score=5.40\r\n\r\n",
        ));
        assert_eq!(v, one(SpamSource::Stalwart, Some(5.4), Some(true)));
        let result_only = parse("X-Spam-Result: A (0.10), B (0.20)\r\n");
        assert_eq!(result_only, one(SpamSource::Stalwart, Some(0.3), None));
    }

    #[test]
    fn short_status_without_an_owner_is_other() {
        assert_eq!(
            parse("X-Spam-Status: No, score=1.20\r\n"),
            one(SpamSource::Other, Some(1.2), Some(false))
        );
    }

    #[test]
    fn microsoft() {
        let report = "X-Forefront-Antispam-Report: CIP:40.107.22.100;CTRY:IE;LANG:en;SCL:6;SRV:;IPV:NLI;SFV:SPM;H:EUR05-AM6-obe.outbound.protection.outlook.com;CAT:SPM;SFS:(13230040);DIR:INB;\r\n";
        assert_eq!(
            parse(report),
            one(SpamSource::MicrosoftScl, Some(6.0), Some(true))
        );
        let both = format!("X-MS-Exchange-Organization-SCL: -1\r\n{report}");
        assert_eq!(
            parse(&both),
            one(SpamSource::MicrosoftScl, Some(-1.0), Some(true)),
            "the organization SCL is the score, SFV the verdict"
        );
        assert_eq!(
            parse("X-MS-Exchange-Organization-SCL: 5\r\n"),
            one(SpamSource::MicrosoftScl, Some(5.0), Some(true))
        );
        assert_eq!(
            parse("X-MS-Exchange-Organization-SCL: 42\r\n"),
            vec![],
            "out of range"
        );
    }

    #[test]
    fn barracuda_and_gmail() {
        assert_eq!(
            parse(
                "X-Barracuda-Spam-Status: Yes, SCORE=8.10 using global scores of TAG_LEVEL=3.5 QUARANTINE_LEVEL=1000.0 KILL_LEVEL=7.0\r\n"
            ),
            one(SpamSource::Barracuda, Some(8.1), Some(true))
        );
        assert_eq!(
            parse("X-Gm-Spam: 1\r\nX-Gm-Phishy: 0\r\n"),
            one(SpamSource::Gmail, None, Some(true))
        );
    }

    #[test]
    fn several_filters_in_source_order() {
        let v = parse(
            "X-Gm-Spam: 0\r\nX-Spam-Status: No, score=1.0 required=5.0\r\nX-Barracuda-Spam-Score: 0.5\r\n",
        );
        let sources: Vec<&str> = v.iter().map(|v| v.source.as_str()).collect();
        assert_eq!(sources, ["spamassassin", "barracuda", "gmail"]);
    }

    #[test]
    fn junk_values_give_nothing() {
        for raw in [
            "X-Spam-Score: NaN\r\n",
            "X-Spam-Score: inf\r\n",
            "X-Rspamd-Score: 1e999\r\n",
            "X-Spam-Status: maybe\r\n",
            "X-Spam-Score: 99999999999999999999999999999999999999\r\n",
            "X-Spamd-Result: default: [\r\n",
            "X-Gm-Spam: perhaps\r\n",
            "X-Spam-Result: \r\n",
        ] {
            assert_eq!(parse(raw), vec![], "{raw:?}");
        }
        assert_eq!(leading_number("1.2.3"), None);
        assert_eq!(leading_number(" +3"), Some(3.0));
        assert_eq!(tagged_number("xscore=1 score=2", &["score"]), Some(2.0));
    }
}
