//! Bytes an SMTP server sends after STARTTLS into `tls::ServerHelloSniffer`, which reads the
//! negotiated TLS version from the ServerHello. The first byte sets the size of the chunks the
//! rest is fed in (reads split anywhere); the sniffer is armed after a plaintext reply.
#![no_main]

use deliverability_exporter::tls::ServerHelloSniffer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut s = ServerHelloSniffer::default();
    s.feed(rest);
    assert_eq!(s.version(), None, "not armed yet");
    s.arm();
    s.feed(b"220 2.0.0 Ready to start TLS\r\n");
    for part in rest.chunks(usize::from(chunk) + 1) {
        s.feed(part);
    }
    let _ = s.version();
});
