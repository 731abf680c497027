//! Sharding: several instances run one configuration file, each owning a deterministic share
//! of the canary routes (`--shard.count N --shard.index I`).
//!
//! Shares are cut **by seed**: an instance keeps the seeds whose name hashes to its index and
//! sends canaries through every provider to those seeds only, so it opens IMAP connections for
//! its own seeds and no other. Cutting by provider would make every instance watch every seed
//! (N times the IMAP connections, each canary looked for by instances that never sent it);
//! cutting by route would do nearly the same as soon as a shard holds more routes than there
//! are providers. By seed, a seed's watchers, its canaries and its series live on one instance.
//!
//! The hash is Prometheus' relabel `hashmod`: the MD5 of the seed's configured name, its last
//! 8 bytes read as a big-endian integer, modulo the shard count. A seed keeps its shard as long
//! as its name and the count stay the same, whatever else the configuration adds or removes.
//!
//! The checks that are not per route (DNS records, DNS blacklists, DMARC and TLS reports) run on
//! shard 0 only: two instances reading one report mailbox would each count its reports.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::Config;

/// Which share of the seeds this instance owns: shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Default for Shard {
    /// The whole configuration: shard 0 of 1.
    fn default() -> Shard {
        Shard::WHOLE
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} of {}", self.index, self.count)
    }
}

impl Shard {
    /// One instance owning everything (the default).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`, as given by `--shard.index` and `--shard.count`; an error
    /// worded for the user when the pair is not one.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err(
                "--shard.count must be at least 1 (1, the default, is a single instance owning every seed)"
                    .into(),
            );
        }
        if index >= count {
            return Err(format!(
                "--shard.index {index} is out of range for --shard.count {count}: shards are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this instance owns the seed named `seed`.
    pub fn owns(&self, seed: &str) -> bool {
        hashmod(seed, u64::from(self.count)) == u64::from(self.index)
    }

    /// Whether the checks that are not per route (DNS, DNSBL, reports) run here: on shard 0.
    pub fn runs_shared_checks(&self) -> bool {
        self.index == 0
    }

    /// `config` cut down to this shard: only the seeds it owns (in their configured order),
    /// and `config.shard` set to it. Providers, domains and report sources are kept as they are;
    /// which checks run is decided from `config.shard` when they are scheduled.
    pub fn apply(&self, mut config: Config) -> Config {
        config.seeds.retain(|s| self.owns(&s.name));
        config.shard = *self;
        config
    }

    /// Where this shard keeps its state inside the configured `state_dir`: shard 0 (and a
    /// single instance) in `state_dir` itself, shard I in `state_dir/shard-I`. So shards on one
    /// host can share one configuration file, and shard 0 keeps the report ledger and the DNS
    /// change log it had before sharding.
    pub fn state_dir(&self, root: &Path) -> PathBuf {
        if self.index == 0 {
            root.to_path_buf()
        } else {
            root.join(format!("shard-{}", self.index))
        }
    }

    /// One line on what this shard owns of `whole` (the configuration before [`Shard::apply`]).
    pub fn describe(&self, whole: &Config) -> String {
        let owned: Vec<&str> = whole
            .seeds
            .iter()
            .filter(|s| self.owns(&s.name))
            .map(|s| s.name.as_str())
            .collect();
        format!(
            "{self}: {} of {} seeds [{}], {} routes; {}",
            owned.len(),
            whole.seeds.len(),
            owned.join(", "),
            owned.len() * whole.providers.len(),
            if self.runs_shared_checks() {
                "canaries, DNS, DNSBL and reports"
            } else {
                "canaries only (DNS, DNSBL and reports run on shard 0)"
            }
        )
    }
}

/// Prometheus' relabel `hashmod` of `value`: the last 8 bytes of its MD5 digest as a big-endian
/// integer, modulo `modulus` (which must not be 0).
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..]);
    u64::from_be_bytes(tail) % modulus
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last 8 bytes of each MD5 as a big-endian integer, and the hashmod for 2, 3, 7 and
    /// 1000, computed with Python's hashlib:
    /// `int.from_bytes(hashlib.md5(s.encode()).digest()[8:], 'big') % n`.
    const PYTHON: [(&str, u64, [u64; 4]); 7] = [
        ("", 16825458760271544958, [0, 1, 1, 958]),
        ("s1", 14169939562788615774, [0, 0, 0, 774]),
        ("seed1", 7783892649302018151, [1, 0, 0, 151]),
        ("gmail-1", 5054648296019529215, [1, 2, 1, 215]),
        ("outlook.com", 14995050072600010672, [0, 1, 0, 672]),
        ("seed-ü", 2617556152512198211, [1, 1, 6, 211]),
        ("a", 3585878926028121697, [1, 1, 2, 697]),
    ];

    #[test]
    fn hashmod_matches_prometheus_as_computed_by_python() {
        for (value, tail, mods) in PYTHON {
            assert_eq!(hashmod(value, u64::MAX), tail % u64::MAX, "{value:?}");
            for (n, want) in [2, 3, 7, 1000].into_iter().zip(mods) {
                assert_eq!(hashmod(value, n), want, "hashmod({value:?}, {n})");
            }
        }
        // Nothing is left out when the modulus is 1.
        assert!(PYTHON.iter().all(|(v, _, _)| hashmod(v, 1) == 0));
    }

    #[test]
    fn flags_are_validated_with_the_reason() {
        assert_eq!(Shard::new(0, 1), Ok(Shard::WHOLE));
        assert_eq!(Shard::default(), Shard::WHOLE);
        let s = Shard::new(2, 3).unwrap();
        assert_eq!((s.index(), s.count()), (2, 3));
        assert_eq!(s.to_string(), "shard 2 of 3");
        let e = Shard::new(0, 0).unwrap_err();
        assert!(e.contains("--shard.count must be at least 1"), "{e}");
        let e = Shard::new(2, 2).unwrap_err();
        assert_eq!(
            e,
            "--shard.index 2 is out of range for --shard.count 2: shards are numbered 0 to 1"
        );
        let e = Shard::new(u32::MAX, 1).unwrap_err();
        assert!(e.contains("numbered 0 to 0"), "{e}");
        assert!(Shard::new(u32::MAX - 1, u32::MAX).is_ok());
    }

    fn config(seeds: &[&str]) -> Config {
        let mut text = String::from(
            "[[providers]]\nname = \"p1\"\nhost = \"smtp.example.com\"\nfrom = \"c@example.com\"\n\
             [[providers]]\nname = \"p2\"\nhost = \"smtp.example.net\"\nfrom = \"c@example.com\"\n",
        );
        for s in seeds {
            text += &format!(
                "[[seeds]]\nname = \"{s}\"\naddress = \"{s}@example.org\"\nhost = \"imap.example.org\"\npassword = \"pw\"\n"
            );
        }
        Config::from_str(Path::new("/etc/dx.toml"), &text).expect("valid configuration")
    }

    #[test]
    fn each_seed_is_kept_by_exactly_one_shard_as_hashmod_says() {
        let names: Vec<String> = (1..=40).map(|k| format!("seed{k}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let whole = config(&refs);
        assert_eq!(whole.shard, Shard::WHOLE);
        for count in [1u32, 2, 3, 5] {
            let mut seen: Vec<String> = Vec::new();
            for index in 0..count {
                let shard = Shard::new(index, count).unwrap();
                let part = shard.apply(whole.clone());
                assert_eq!(part.shard, shard);
                assert_eq!(part.providers.len(), 2, "every provider is kept");
                for s in &part.seeds {
                    assert_eq!(
                        hashmod(&s.name, count.into()),
                        u64::from(index),
                        "{}",
                        s.name
                    );
                }
                // Configured order is kept.
                let order: Vec<usize> = part
                    .seeds
                    .iter()
                    .map(|s| names.iter().position(|n| *n == s.name).unwrap())
                    .collect();
                assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
                seen.extend(part.seeds.iter().map(|s| s.name.clone()));
            }
            seen.sort();
            let mut all = names.clone();
            all.sort();
            assert_eq!(seen, all, "count {count}: every seed on exactly one shard");
        }
        // Python's split of seed1..seed8 over 2 shards.
        let two = Shard::new(1, 2).unwrap().apply(config(&[
            "seed1", "seed2", "seed3", "seed4", "seed5", "seed6", "seed7", "seed8",
        ]));
        let kept: Vec<&str> = two.seeds.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(kept, ["seed1", "seed2", "seed4", "seed7"]);
    }

    #[test]
    fn a_seed_keeps_its_shard_when_others_are_added() {
        let before = Shard::new(0, 3)
            .unwrap()
            .apply(config(&["a", "b", "c", "d"]));
        let after = Shard::new(0, 3)
            .unwrap()
            .apply(config(&["x", "a", "b", "y", "c", "d", "z"]));
        for s in &before.seeds {
            assert!(after.seeds.iter().any(|t| t.name == s.name), "{}", s.name);
        }
    }

    #[test]
    fn only_shard_0_runs_the_shared_checks_and_keeps_the_state_dir() {
        let root = Path::new("/var/lib/dx");
        assert!(Shard::WHOLE.runs_shared_checks());
        assert!(Shard::new(0, 4).unwrap().runs_shared_checks());
        assert!(!Shard::new(3, 4).unwrap().runs_shared_checks());
        assert_eq!(Shard::WHOLE.state_dir(root), root);
        assert_eq!(Shard::new(0, 4).unwrap().state_dir(root), root);
        assert_eq!(
            Shard::new(3, 4).unwrap().state_dir(root),
            Path::new("/var/lib/dx/shard-3")
        );
    }

    #[test]
    fn describe_names_the_seeds_owned_and_the_checks_run() {
        let whole = config(&["seed1", "seed2", "seed3", "seed4"]);
        assert_eq!(
            Shard::new(1, 2).unwrap().describe(&whole),
            "shard 1 of 2: 3 of 4 seeds [seed1, seed2, seed4], 6 routes; canaries only (DNS, DNSBL and reports run on shard 0)"
        );
        assert_eq!(
            Shard::new(0, 2).unwrap().describe(&whole),
            "shard 0 of 2: 1 of 4 seeds [seed3], 2 routes; canaries, DNS, DNSBL and reports"
        );
    }
}
