use super::*;
use crate::resolver::FakeDns;

// Public keys generated with openssl for these tests (private halves discarded).
const RSA1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDLOmoUJFfqI02cgdQObE1i6DhnLVHtfl16/ynBEBNqYF6PzXKPRXiPEQTvm03rbj+4rgGLREMxj7sQXBWQaJpqZ6M0Wlww1YVQ4XDqsdbztlsVOgl8rKSYn9yLQCUzwHWqAV7i68GAJppQ7Y4Fs868ygWpKx5B+WDss2bCZvsn8QIDAQAB";
const RSA2048: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAo4c+9J+Dxj9Axq1Zxr85eYLOZF30gJ9xVG39fx5JniI9n27/01DPQxgJodGg97eUqFvfBy10mpecjbOZDViUpK4IpKWGjAE7BwqHiuMbSkmBN1I6f5xfJrl69pUXvpaT8eSAdRb9DCGC6wStAxgTMnWmyY2PSd+5xjMoTVBfMbpB+y1RRyUcXZ2E8ZNJ/teg328ppx7GR7oeYvHtnx9yB2JUaOBy5mYPEyGHhXdhtG1bBzpIlSnjhA4nGvxhbnLZ0Rpd9mq3CFso3JqCHQTwwkbeEjNpJ0W+JbKCbCVGG/ObSsr0YyerNuG1ol23Cxl1rlp8cH2DRPjbMyHxFf+dgQIDAQAB";
const RSA2048_PKCS1: &str = "MIIBCgKCAQEAo4c+9J+Dxj9Axq1Zxr85eYLOZF30gJ9xVG39fx5JniI9n27/01DPQxgJodGg97eUqFvfBy10mpecjbOZDViUpK4IpKWGjAE7BwqHiuMbSkmBN1I6f5xfJrl69pUXvpaT8eSAdRb9DCGC6wStAxgTMnWmyY2PSd+5xjMoTVBfMbpB+y1RRyUcXZ2E8ZNJ/teg328ppx7GR7oeYvHtnx9yB2JUaOBy5mYPEyGHhXdhtG1bBzpIlSnjhA4nGvxhbnLZ0Rpd9mq3CFso3JqCHQTwwkbeEjNpJ0W+JbKCbCVGG/ObSsr0YyerNuG1ol23Cxl1rlp8cH2DRPjbMyHxFf+dgQIDAQAB";
const RSA512: &str = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMp+gh6a+iVH8ZEcVFznsxvRhidsfs0MnmDVZ2gtDghi10pkqtkUAgSbAqyjWzVFycDPKdqebqkIOQj4KfnS9YMCAwEAAQ==";
const ED25519: &str = "up3g2yVAYP3BIlOhXx40+dprfHGauEB1LPU4stb3UUQ=";

#[test]
fn key_sizes_and_types() {
    let k = parse(&format!("v=DKIM1; k=rsa; p={RSA1024}")).unwrap();
    assert_eq!(
        (k.key_type, k.bits, k.revoked, k.testing),
        (KeyType::Rsa, 1024, false, false)
    );
    let k = parse(&format!("p={RSA2048}")).unwrap();
    assert_eq!((k.key_type, k.bits), (KeyType::Rsa, 2048));
    let k = parse(&format!("k=rsa; p={RSA2048_PKCS1}")).unwrap();
    assert_eq!(k.bits, 2048, "bare RSAPublicKey");
    let k = parse(&format!("v=DKIM1; k=ed25519; p={ED25519}")).unwrap();
    assert_eq!((k.key_type, k.bits), (KeyType::Ed25519, 256));
    assert_eq!(parse(&format!("p={RSA512}")).unwrap().bits, 512);
}

#[test]
fn base64_may_be_folded() {
    let (a, b) = RSA2048.split_at(100);
    let k = parse(&format!("v=DKIM1; p={a} \t {b}")).unwrap();
    assert_eq!(k.bits, 2048);
}

#[test]
fn revoked_testing_and_flags() {
    let k = parse("v=DKIM1; k=rsa; p=").unwrap();
    assert!(k.revoked);
    assert_eq!(k.bits, 0);
    let k = parse(&format!("v=DKIM1; t=y:s; p={RSA1024}")).unwrap();
    assert!(k.testing && k.strict);
}

#[test]
fn errors_are_named() {
    assert_eq!(parse("v=DKIM1; k=rsa"), Err(DkimError::NoKey));
    assert_eq!(
        parse("v=DKIM2; p="),
        Err(DkimError::Version("DKIM2".into()))
    );
    assert_eq!(
        parse("k=rsa; v=DKIM1; p="),
        Err(DkimError::Version("DKIM1".into())),
        "v must come first"
    );
    assert_eq!(
        parse("k=dsa; p=AAAA"),
        Err(DkimError::KeyType("dsa".into()))
    );
    assert_eq!(parse("p=!!!"), Err(DkimError::Base64));
    assert!(matches!(
        parse("k=ed25519; p=AAAA"),
        Err(DkimError::BadKey(_))
    ));
    assert!(matches!(
        parse(&format!("k=rsa; p={ED25519}")),
        Err(DkimError::BadKey(_))
    ));
    assert!(matches!(parse("p=; p="), Err(DkimError::Tags(_))));
    let e = parse("k=dsa; p=AAAA").unwrap_err().to_string();
    assert!(e.contains("expected rsa or ed25519"), "{e}");
}

#[test]
fn der_walk_survives_garbage() {
    for bytes in [
        &[][..],
        &[0x30],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0x30, 0x80],
        &[0x30, 0x03, 0x02, 0x01, 0x00],
        &[0x30, 0x05, 0x02, 0x01, 0x00, 0x02, 0x00],
        &[0x02, 0x01, 0x01],
    ] {
        let _ = rsa_bits(bytes);
    }
    assert!(matches!(
        rsa_bits(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x03]),
        Err(DkimError::BadKey(_))
    ));
    // Modulus 0x01_00 with a leading zero byte: 9 bits.
    assert_eq!(
        rsa_bits(&[0x30, 0x08, 0x02, 0x03, 0x00, 0x01, 0x00, 0x02, 0x01, 0x03]),
        Ok(9)
    );
}

#[tokio::test]
async fn selector_checks() {
    let dns = FakeDns::new()
        .txt(
            "s1._domainkey.example.com",
            &format!("v=DKIM1; k=rsa; p={RSA2048}"),
        )
        .txt("old._domainkey.example.com", "v=DKIM1; p=")
        .txt(
            "weak._domainkey.example.com",
            &format!("v=DKIM1; p={RSA512}"),
        )
        .txt(
            "two._domainkey.example.com",
            &format!("v=DKIM1; p={RSA1024}"),
        )
        .txt(
            "two._domainkey.example.com",
            &format!("v=DKIM1; p={RSA2048}"),
        )
        .txt("bad._domainkey.example.com", "v=DKIM1; k=rsa; p=@@@");
    let r = check_selector(&dns, "example.com", "s1").await;
    assert_eq!(r.problem, None);
    assert_eq!(r.key.unwrap().bits, 2048);
    let reason = |r: SelectorReport| r.problem.map(|p| p.0);
    assert_eq!(
        reason(check_selector(&dns, "example.com", "old").await),
        Some(Reason::Revoked)
    );
    assert_eq!(
        reason(check_selector(&dns, "example.com", "weak").await),
        Some(Reason::WeakKey)
    );
    assert_eq!(
        reason(check_selector(&dns, "example.com", "two").await),
        Some(Reason::MultipleRecords)
    );
    assert_eq!(
        reason(check_selector(&dns, "example.com", "bad").await),
        Some(Reason::Syntax)
    );
    assert_eq!(
        reason(check_selector(&dns, "example.com", "none").await),
        Some(Reason::NoRecord)
    );
}
