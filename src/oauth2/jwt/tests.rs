use super::*;

use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

const SCOPE: &str = "https://www.googleapis.com/auth/postmaster.traffic.readonly";

fn fixture() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/postmaster/service-account.json");
    std::fs::read_to_string(path).expect("the test key fixture")
}

/// The fixture with one field's JSON value replaced (`None`: removed).
fn with_field(field: &str, value: Option<serde_json::Value>) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&fixture()).unwrap();
    let obj = v.as_object_mut().unwrap();
    match value {
        Some(x) => obj.insert(field.to_string(), x),
        None => obj.remove(field),
    };
    v.to_string()
}

fn private_key_pem() -> String {
    let v: serde_json::Value = serde_json::from_str(&fixture()).unwrap();
    v["private_key"].as_str().unwrap().to_string()
}

/// Every base64 line of the key: none may appear in an error or a Debug.
fn key_lines() -> Vec<String> {
    private_key_pem()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_string)
        .collect()
}

fn assert_no_key(text: &str) {
    for line in key_lines() {
        assert!(!text.contains(&line[..16]), "key material in {text:?}");
    }
}

fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn reads_the_key_file() {
    let sa = ServiceAccount::from_json(&fixture()).unwrap();
    assert_eq!(sa.client_email, "dx-test@dx-test.iam.gserviceaccount.com");
    assert_eq!(sa.token_uri, "https://127.0.0.1/token");
    assert_eq!(
        sa.private_key_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(sa.key.public().modulus_len(), 256, "a 2048-bit key");
    let debug = format!("{sa:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(debug.contains("dx-test@"), "{debug}");
    assert_no_key(&debug);
}

#[test]
fn the_assertion_is_signed_by_the_key_and_carries_the_claims() {
    let sa = ServiceAccount::from_json(&fixture()).unwrap();
    let now = 1_780_000_000;
    let jwt = sa.assertion(SCOPE, "", now).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    assert!(!jwt.contains('='), "unpadded base64url");

    let header = decode_part(parts[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], "0123456789abcdef0123456789abcdef01234567");

    let claims = decode_part(parts[1]);
    assert_eq!(claims["iss"], "dx-test@dx-test.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(
        claims["aud"], "https://127.0.0.1/token",
        "aud defaults to token_uri"
    );
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims.as_object().unwrap().len(), 5, "{claims}");

    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.key.public_key().as_ref());
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(signed.as_bytes(), &signature)
        .expect("a valid RS256 signature");

    // The signature covers the claims: a changed claim set no longer verifies.
    let forged_claims = URL_SAFE_NO_PAD.encode(claims.to_string().replace("3600", "7200"));
    let forged = format!("{}.{forged_claims}", parts[0]);
    assert!(public.verify(forged.as_bytes(), &signature).is_err());
}

#[test]
fn an_audience_given_replaces_the_token_uri() {
    let sa = ServiceAccount::from_json(&fixture()).unwrap();
    let jwt = sa
        .assertion(SCOPE, "https://oauth2.googleapis.com/token", 5)
        .unwrap();
    let claims = decode_part(jwt.split('.').nth(1).unwrap());
    assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
    assert_eq!(
        sa.assertion(" ", "", 5),
        Err(JwtError::Assertion("no scope"))
    );
}

#[test]
fn no_kid_without_a_private_key_id() {
    let sa = ServiceAccount::from_json(&with_field("private_key_id", None)).unwrap();
    let jwt = sa.assertion(SCOPE, "", 5).unwrap();
    let header = decode_part(jwt.split('.').next().unwrap());
    assert!(header.get("kid").is_none(), "{header}");
}

#[test]
fn token_request_body_is_the_jwt_bearer_grant() {
    assert_eq!(
        token_request_body("aa.bb.c-_"),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=aa.bb.c-_"
    );
}

#[test]
fn malformed_json_says_where_and_quotes_nothing() {
    let text = fixture();
    let broken = &text[..text.len() / 2];
    let err = ServiceAccount::from_json(broken).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("service-account key file: not JSON (line "),
        "{msg}"
    );
    assert_no_key(&msg);
    assert_eq!(
        ServiceAccount::from_json("[1, 2]").unwrap_err().to_string(),
        "service-account key file: not a JSON object"
    );
    let huge = " ".repeat(MAX_KEY_FILE + 1);
    assert!(matches!(
        ServiceAccount::from_json(&huge),
        Err(JwtError::File(_))
    ));
}

#[test]
fn a_missing_field_is_named() {
    for field in ["client_email", "private_key", "token_uri", "type"] {
        let err = ServiceAccount::from_json(&with_field(field, None)).unwrap_err();
        assert_eq!(err, JwtError::Missing(field));
        assert_eq!(
            err.to_string(),
            format!("service-account key file: no \"{field}\" field")
        );
    }
}

#[test]
fn a_bad_field_is_named_without_its_value() {
    let cases = [
        (
            "type",
            serde_json::json!("authorized_user"),
            "is not \"service_account\"",
        ),
        (
            "client_email",
            serde_json::json!("not an address"),
            "is not an e-mail address",
        ),
        (
            "token_uri",
            serde_json::json!("http://127.0.0.1/token"),
            "is not an https URL",
        ),
        ("private_key", serde_json::json!(42), "is not a string"),
        ("private_key", serde_json::json!(""), "is empty"),
    ];
    for (field, value, reason) in cases {
        let err = ServiceAccount::from_json(&with_field(field, Some(value.clone()))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("{field:?} {reason}")), "{msg}");
        if let Some(s) = value.as_str().filter(|s| !s.is_empty()) {
            assert!(!msg.contains(s), "the value is quoted: {msg}");
        }
    }
}

#[test]
fn a_key_that_is_not_pkcs8_is_refused_clearly() {
    let pem = private_key_pem();
    let pkcs1_label = pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let garbage = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(b"not a PKCS#8 structure at all")
    );
    let cases = [
        (
            pkcs1_label,
            "is a PKCS#1 key (BEGIN RSA PRIVATE KEY), not PKCS#8",
        ),
        (
            pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
            "encrypted",
        ),
        (
            pem.replace("PRIVATE KEY", "CERTIFICATE"),
            "not a PKCS#8 private key",
        ),
        (key_lines().join("\n"), "is not PEM"),
        (
            pem.replace("-----END PRIVATE KEY-----", ""),
            "has no -----END PRIVATE KEY----- line",
        ),
        (pem.replace('M', "*"), "is not base64"),
        (garbage, "is not an RSA PKCS#8 key ring accepts"),
    ];
    for (key, expect) in cases {
        let err =
            ServiceAccount::from_json(&with_field("private_key", Some(key.into()))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"private_key\""), "{msg}");
        assert!(msg.contains(expect), "{msg:?} lacks {expect:?}");
        assert_no_key(&msg);
        assert_no_key(&format!("{err:?}"));
    }
}

#[test]
fn doubly_escaped_newlines_are_read() {
    let escaped = private_key_pem().replace('\n', "\\n");
    let sa = ServiceAccount::from_json(&with_field("private_key", Some(escaped.into())));
    assert!(sa.is_ok(), "{sa:?}");
}
