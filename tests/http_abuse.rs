//! Slow and abusive HTTP clients are bounded: silent and slow-header connections are closed
//! after `--web.header-timeout`, more clients than `--web.max-connections` wait their turn
//! instead of exhausting the process, and oversized requests are refused. Through all of it
//! the exporter keeps answering scrapes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Exporter, TempDir};

fn exporter(dir: &TempDir, flags: &[&str]) -> Exporter {
    let cfg = dir.path().join("dx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[exporter]\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    Exporter::start(&cfg, flags)
}

/// Reads until the server closes; returns what it sent and how long that took.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    s.set_read_timeout(Some(limit)).unwrap();
    let start = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("still open after {limit:?}")
            }
            Err(_) => break,
        }
    }
    (all, start.elapsed())
}

#[test]
fn silent_and_slow_clients_are_cut_off_after_the_header_timeout() {
    let dir = TempDir::new("abuse-slow");
    let e = exporter(&dir, &["--web.header-timeout", "1s"]);
    // Says nothing at all.
    let mut silent = TcpStream::connect(&e.addr).unwrap();
    // Starts a request and trickles the headers.
    let mut slow = TcpStream::connect(&e.addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..20 {
            if slow.write_all(b"X-A: b\r\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        read_until_closed(&mut slow, Duration::from_secs(10)).1
    });
    let (_, silent_took) = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(
        silent_took < Duration::from_secs(3),
        "a silent connection was held {silent_took:?}"
    );
    let slow_took = trickle.join().unwrap();
    assert!(
        slow_took < Duration::from_secs(5),
        "a slow-header connection was held {slow_took:?}"
    );
    assert_eq!(e.get("/-/healthy").0, 200);
}

#[test]
fn more_clients_than_the_limit_wait_and_scrapes_still_succeed() {
    let dir = TempDir::new("abuse-many");
    let e = exporter(
        &dir,
        &["--web.max-connections", "4", "--web.header-timeout", "1s"],
    );
    // Fill every slot (and more) with silent connections.
    let hogs: Vec<TcpStream> = (0..24)
        .map(|_| TcpStream::connect(&e.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", e.child.id()))
        .unwrap()
        .count();
    assert!(
        fds < 30,
        "the exporter holds {fds} descriptors: connections beyond the limit must wait in the backlog"
    );
    // A scrape waits for a slot and is answered once the hogs time out.
    let start = Instant::now();
    let s = e.scrape();
    assert!(s.value("deliverability_config_last_reload_successful", &[]) == Some(1.0));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "scrape took {:?}",
        start.elapsed()
    );
    drop(hogs);
}

#[test]
fn oversized_requests_are_refused() {
    let dir = TempDir::new("abuse-big");
    let e = exporter(&dir, &[]);
    let mut s = TcpStream::connect(&e.addr).unwrap();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(huge.as_bytes());
    let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("deliverability_build_info"),
        "an oversized request must not be served"
    );
    // A body is never read: a huge POST to /-/reload is answered without it.
    let mut s = TcpStream::connect(&e.addr).unwrap();
    let _ =
        s.write_all(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n");
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(took < Duration::from_secs(5));
    assert_eq!(e.get("/-/healthy").0, 200);
}
