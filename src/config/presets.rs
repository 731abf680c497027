//! Provider and seed presets: the host, port, TLS mode and login conventions of well-known
//! services, so a user writes `preset = "sendgrid"` and a key. Any key set by hand wins.

use super::schema::{AuthMechanism, ProviderPreset, SeedPreset, TlsMode};

/// What a provider preset fills in.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderDefaults {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: UsernameRule,
    pub auth: Vec<AuthMechanism>,
}

/// How a preset derives the SMTP login when `username` is not set.
#[derive(Debug, Clone, PartialEq)]
pub enum UsernameRule {
    /// The user must set `username`.
    Required,
    /// A fixed literal (SendGrid's `apikey`).
    Literal(&'static str),
    /// The same value as the password (Postmark's server token is both).
    SameAsPassword,
    /// The From address (Gmail, Microsoft 365).
    FromAddress,
}

const SES_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "sa-east-1",
    "us-gov-west-1",
    "us-gov-east-1",
];

/// The defaults of a provider preset. `Err` says what is wrong with `region`.
pub fn provider(
    preset: ProviderPreset,
    region: Option<&str>,
) -> Result<ProviderDefaults, (Field, String)> {
    let plain_login = vec![AuthMechanism::Plain, AuthMechanism::Login];
    let d = |host: String, username| ProviderDefaults {
        host,
        port: 587,
        tls: TlsMode::Starttls,
        username,
        auth: plain_login.clone(),
    };
    let no_region = |name: &str| -> Result<(), (Field, String)> {
        match region {
            Some(_) => Err((
                Field::Region,
                format!("preset {name:?} has no regions; remove `region`"),
            )),
            None => Ok(()),
        }
    };
    Ok(match preset {
        ProviderPreset::Brevo => {
            no_region("brevo")?;
            d("smtp-relay.brevo.com".into(), UsernameRule::Required)
        }
        ProviderPreset::Ses => {
            let r = region.ok_or((
                Field::Region,
                "preset \"ses\" needs `region`, e.g. region = \"eu-west-1\"".to_string(),
            ))?;
            if !SES_REGIONS.contains(&r) {
                return Err((
                    Field::Region,
                    format!(
                        "unknown SES region {r:?}; expected one of {}",
                        SES_REGIONS.join(", ")
                    ),
                ));
            }
            d(
                format!("email-smtp.{r}.amazonaws.com"),
                UsernameRule::Required,
            )
        }
        ProviderPreset::Sendgrid => {
            no_region("sendgrid")?;
            d("smtp.sendgrid.net".into(), UsernameRule::Literal("apikey"))
        }
        ProviderPreset::Mailgun => {
            let host = match region.unwrap_or("us") {
                "us" => "smtp.mailgun.org",
                "eu" => "smtp.eu.mailgun.org",
                other => {
                    return Err((
                        Field::Region,
                        format!("unknown Mailgun region {other:?}; expected \"us\" or \"eu\""),
                    ));
                }
            };
            d(host.into(), UsernameRule::Required)
        }
        ProviderPreset::Postmark => {
            no_region("postmark")?;
            d("smtp.postmarkapp.com".into(), UsernameRule::SameAsPassword)
        }
        ProviderPreset::Gmail => {
            no_region("gmail")?;
            ProviderDefaults {
                auth: vec![
                    AuthMechanism::Xoauth2,
                    AuthMechanism::Plain,
                    AuthMechanism::Login,
                ],
                ..d("smtp.gmail.com".into(), UsernameRule::FromAddress)
            }
        }
        ProviderPreset::Microsoft365 => {
            no_region("microsoft365")?;
            ProviderDefaults {
                auth: vec![AuthMechanism::Xoauth2, AuthMechanism::Login],
                ..d("smtp.office365.com".into(), UsernameRule::FromAddress)
            }
        }
    })
}

/// Which field a preset error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Region,
}

/// The IMAP host, port and TLS mode of a seed preset.
pub fn seed(preset: SeedPreset) -> (&'static str, u16, TlsMode) {
    match preset {
        SeedPreset::Gmail => ("imap.gmail.com", 993, TlsMode::Implicit),
        SeedPreset::Outlook => ("outlook.office365.com", 993, TlsMode::Implicit),
        SeedPreset::Yahoo => ("imap.mail.yahoo.com", 993, TlsMode::Implicit),
        SeedPreset::Fastmail => ("imap.fastmail.com", 993, TlsMode::Implicit),
        SeedPreset::Icloud => ("imap.mail.me.com", 993, TlsMode::Implicit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_fill_host_port_tls_and_login_rule() {
        let sg = provider(ProviderPreset::Sendgrid, None).unwrap();
        assert_eq!(
            (sg.host.as_str(), sg.port, sg.tls),
            ("smtp.sendgrid.net", 587, TlsMode::Starttls)
        );
        assert_eq!(sg.username, UsernameRule::Literal("apikey"));
        assert_eq!(
            provider(ProviderPreset::Postmark, None).unwrap().username,
            UsernameRule::SameAsPassword
        );
        assert_eq!(
            provider(ProviderPreset::Brevo, None).unwrap().host,
            "smtp-relay.brevo.com"
        );
        assert_eq!(
            provider(ProviderPreset::Mailgun, Some("eu")).unwrap().host,
            "smtp.eu.mailgun.org"
        );
        assert_eq!(
            provider(ProviderPreset::Mailgun, None).unwrap().host,
            "smtp.mailgun.org"
        );
        assert_eq!(
            provider(ProviderPreset::Ses, Some("eu-west-1"))
                .unwrap()
                .host,
            "email-smtp.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            provider(ProviderPreset::Gmail, None).unwrap().auth[0],
            AuthMechanism::Xoauth2
        );
    }

    #[test]
    fn preset_regions_are_checked() {
        assert!(
            provider(ProviderPreset::Ses, None)
                .unwrap_err()
                .1
                .contains("needs `region`")
        );
        assert!(
            provider(ProviderPreset::Ses, Some("mars-1"))
                .unwrap_err()
                .1
                .contains("unknown SES region")
        );
        assert!(
            provider(ProviderPreset::Mailgun, Some("asia"))
                .unwrap_err()
                .1
                .contains("\"us\" or \"eu\"")
        );
        assert!(
            provider(ProviderPreset::Brevo, Some("eu"))
                .unwrap_err()
                .1
                .contains("no regions")
        );
    }

    #[test]
    fn seed_presets_use_implicit_tls() {
        assert_eq!(
            seed(SeedPreset::Gmail),
            ("imap.gmail.com", 993, TlsMode::Implicit)
        );
    }
}
