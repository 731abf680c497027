use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn postfix_hop() {
    let h = parse_received(
        "from mta.sender.example (mta.sender.example [198.51.100.7])\tby mx.receiver.example (Postfix) with ESMTPS id ABC123\tfor <target@receiver.example>; Mon, 01 Apr 2026 10:00:00 +0000",
    );
    assert_eq!(
        h,
        Hop {
            from_host: Some("mta.sender.example".into()),
            ip: Some(ip("198.51.100.7")),
            by_host: Some("mx.receiver.example".into()),
            with: Some("ESMTPS".into()),
            id: Some("ABC123".into()),
            date: Some(1_775_037_600),
            tls: None,
        }
    );
    assert!(h.encrypted(), "ESMTPS");
}

#[test]
fn tls_versions_as_each_server_writes_them() {
    for (value, want, encrypted) in [
        (
            "from a ([192.0.2.1]) by mx.example (Postfix) with ESMTPS id X (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)); Mon, 01 Apr 2026 10:00:00 +0000",
            Some("TLSv1.3"),
            true,
        ),
        (
            "from a (a. [192.0.2.1]) by mx.google.com with ESMTPS id x (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256); Sat, 28 Nov 2026 20:36:00 -0800 (PST)",
            Some("TLSv1.3"),
            true,
        ),
        (
            "from a (192.0.2.1) by b.outlook.com (10.0.0.1) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.1; Sun, 29 Nov 2026 04:36:00 +0000",
            Some("TLSv1.2"),
            true,
        ),
        (
            "from a ([192.0.2.1]) by mx.example with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.97) id 1; Mon, 01 Apr 2026 10:00:00 +0000",
            Some("TLSv1.3"),
            true,
        ),
        (
            "from a ([192.0.2.1]) by mx.example with ESMTPSA id 1; Mon, 01 Apr 2026 10:00:00 +0000",
            None,
            true,
        ),
        (
            "from a ([192.0.2.1]) by mx.example (Postfix) with ESMTP id 1; Mon, 01 Apr 2026 10:00:00 +0000",
            None,
            false,
        ),
        (
            "from tls.example ([192.0.2.1]) by mx.example with SMTP id TLS12; Mon, 01 Apr 2026 10:00:00 +0000",
            None,
            false,
        ),
    ] {
        let h = parse_received(value);
        assert_eq!(h.tls.as_deref(), want, "{value}");
        assert_eq!(h.encrypted(), encrypted, "{value}");
    }
}

#[test]
fn gmail_exim_microsoft_qmail_and_lmtp_hops() {
    let gmail = parse_received(
        "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com with SMTPS id a1sor123.2026.11.29.04.35.59 for <seed@gmail.com> (Google Transport Security); Sat, 28 Nov 2026 20:35:59 -0800 (PST)",
    );
    assert_eq!(gmail.ip, Some(ip("209.85.220.41")));
    assert_eq!(gmail.from_host.as_deref(), Some("mail-sor-f41.google.com"));
    assert_eq!(gmail.date, Some(1_795_926_959));

    let exim = parse_received(
        "from [203.0.113.50] (port=41234 helo=client.example) by smtp.example.net with esmtpsa (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.97) (envelope-from <a@example.net>) id 1tXyZa-000abc-2B; Sun, 29 Nov 2026 04:35:59 +0000",
    );
    assert_eq!(exim.ip, Some(ip("203.0.113.50")));
    assert_eq!(exim.with.as_deref(), Some("esmtpsa"));
    assert_eq!(exim.id.as_deref(), Some("1tXyZa-000abc-2B"));

    let ms = parse_received(
        "from AM6PR04MB1234.eurprd04.prod.outlook.com (2603:10a6:20b:ee::17) by AM6PR04MB5678.eurprd04.prod.outlook.com (2603:10a6:20b:ff::3) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8207.18; Sun, 29 Nov 2026 04:35:59 +0000",
    );
    assert_eq!(ms.ip, Some(ip("2603:10a6:20b:ee::17")), "not the by host's");
    assert_eq!(ms.with.as_deref(), Some("Microsoft"));
    assert_eq!(ms.date, Some(1_795_926_959));

    let qmail = parse_received(
        "from unknown (HELO relay) (192.0.2.9) by mail.example with SMTP; 29 Nov 2026 04:35:59 -0000",
    );
    assert_eq!(qmail.ip, Some(ip("192.0.2.9")));
    assert_eq!(qmail.from_host.as_deref(), Some("unknown"));

    let lmtp = parse_received(
        "from mx.seed.test ([127.0.0.1])\r\n\tby imap.seed.test with LMTP\r\n\tid kLmN (envelope-from <canary@dx.test>)\r\n\tfor <seed1@seed.test>; Sun, 29 Nov 2026 04:35:59 +0000",
    );
    assert_eq!(lmtp.ip, Some(ip("127.0.0.1")));
    assert_eq!(lmtp.by_host.as_deref(), Some("imap.seed.test"));

    let internal = parse_received(
        "by 2002:a05:7010:e40e:b0:6d1:2b3c:4d5e with SMTP id x9csp1; Sun, 29 Nov 2026 04:35:59 +0000",
    );
    assert_eq!(internal.ip, None, "no from clause");
    assert_eq!(
        internal.by_host.as_deref(),
        Some("2002:a05:7010:e40e:b0:6d1:2b3c:4d5e")
    );
}

#[test]
fn missing_or_broken_parts_are_none() {
    assert_eq!(parse_received(""), Hop::default());
    let no_date = parse_received("from a.example (a.example [192.0.2.1]) by b.example");
    assert_eq!(no_date.date, None);
    assert_eq!(no_date.ip, Some(ip("192.0.2.1")));
    let bad = parse_received("from x ([999.1.1.1] [not-an-ip]) by y; yesterday");
    assert_eq!((bad.ip, bad.date), (None, None));
    let unclosed = parse_received("from x ([192.0.2.1] by y; Sun, 29 Nov 2026 04:35:59 +0000");
    assert_eq!(unclosed.ip, Some(ip("192.0.2.1")));
    assert_eq!(unclosed.by_host, None, "inside the unclosed comment");
    assert_eq!(unclosed.date, None);
    let semi_in_comment =
        parse_received("from x (a; b [192.0.2.1]) by y; Sun, 29 Nov 2026 04:35:59 +0000");
    assert_eq!(semi_in_comment.date, Some(1_795_926_959));
    assert_eq!(semi_in_comment.by_host.as_deref(), Some("y"));
}

#[test]
fn public_addresses() {
    for s in [
        "209.85.220.41",
        "40.107.22.100",
        "2a00:1450:4864:20::42f",
        "::ffff:8.8.8.8",
    ] {
        assert!(is_public(ip(s)), "{s}");
    }
    for s in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "198.18.0.1",
        "192.0.0.8",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "2001:db8::1",
        "3fff::1",
        "2001:2::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::1",
    ] {
        assert!(!is_public(ip(s)), "{s}");
    }
}

fn hop(from: &str, ip_: Option<&str>, by: &str) -> Hop {
    Hop {
        from_host: Some(from.into()),
        ip: ip_.map(ip),
        by_host: Some(by.into()),
        ..Hop::default()
    }
}

#[test]
fn the_sending_ip_is_where_mail_entered_the_receiver() {
    let chain = [
        hop("localhost", Some("127.0.0.1"), "imap.receiver.example"),
        hop(
            "mx-in.receiver.example",
            Some("20.1.1.1"),
            "store.receiver.example",
        ),
        hop(
            "mta.sender.example",
            Some("34.2.2.2"),
            "mx.receiver.example",
        ),
        hop("app.sender.example", Some("10.0.0.5"), "mta.sender.example"),
    ];
    let name = Some("mx.receiver.example");
    assert_eq!(sending_ip(&chain, name), Some(ip("34.2.2.2")));
    assert_eq!(
        sending_ip(&chain, None),
        Some(ip("20.1.1.1")),
        "without a name: the topmost public address"
    );
    assert_eq!(
        sending_ip(&chain, Some("other.example")),
        Some(ip("20.1.1.1"))
    );
    let gmail = [
        Hop {
            by_host: Some("2002:a05:7010::1".into()),
            ..Hop::default()
        },
        hop(
            "mail-sor-f41.google.com",
            Some("209.85.220.41"),
            "mx.google.com",
        ),
        Hop {
            by_host: Some("mail-sor-f41.google.com".into()),
            ..Hop::default()
        },
    ];
    assert_eq!(
        sending_ip(&gmail, Some("mx.google.com")),
        Some(ip("209.85.220.41"))
    );
    let local = [hop("localhost", Some("127.0.0.1"), "mx.seed.test")];
    assert_eq!(sending_ip(&local, Some("mx.seed.test")), None);
    assert_eq!(sending_ip(&[], None), None);
    // The hop where mail entered: the SPF client's, else the lowest of the receiver's run,
    // private addresses included (the local stack's).
    let submission = Hop {
        with: Some("ESMTPSA".into()),
        ..hop("localhost", Some("127.0.0.1"), "mx.seed.test")
    };
    let stack = [
        hop("mx.seed.test", None, "imap.seed.test"),
        hop("submit.seed.test", Some("127.0.0.2"), "mx.seed.test"),
        submission,
    ];
    assert_eq!(
        receiving_hop(&stack, Some("mx.seed.test"), None).and_then(|h| h.ip),
        Some(ip("127.0.0.2"))
    );
    assert_eq!(
        receiving_hop(&stack, Some("mx.seed.test"), Some(ip("127.0.0.1"))).and_then(|h| h.ip),
        Some(ip("127.0.0.1"))
    );
    assert_eq!(receiving_hop(&stack, None, None), None);
    assert_eq!(
        receiving_hop(&chain, name, None).and_then(|h| h.ip),
        Some(ip("34.2.2.2"))
    );
    assert_eq!(receiver_domain("MX.Google.com."), "google.com");
    assert_eq!(receiver_domain("example.org"), "example.org");
}
