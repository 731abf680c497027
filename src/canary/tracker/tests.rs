use super::*;

fn dir(tag: &str) -> StateDir {
    let d = std::env::temp_dir().join(format!("dx-tracker-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    StateDir::open(&d).unwrap()
}

fn flight(token: &str, deadline: f64) -> InFlight {
    InFlight {
        token: token.into(),
        provider: "p".into(),
        seed: "s".into(),
        sent_at: 100.0,
        data_done: 101.0,
        deadline,
        uncertain: false,
    }
}

#[test]
fn delivered_once_then_duplicate() {
    let t = Tracker::load(dir("dup"));
    t.add(flight("a", 1000.0));
    assert_eq!(
        t.sighted("a", 103.5, 103.5),
        Sighting::Delivered {
            flight: flight("a", 1000.0),
            latency: 2.5
        }
    );
    assert_eq!(t.sighted("a", 104.0, 104.0), Sighting::Duplicate);
    assert_eq!(t.sighted("zzz", 104.0, 104.0), Sighting::Unknown);
    assert!(t.is_known("a") && !t.is_known("zzz"));
}

#[test]
fn latency_is_never_zero_for_a_canary_that_arrived_after_its_reply() {
    // Noticed as it arrived.
    assert_eq!(latency(100.25, 100.75, 100.75), 0.5);
    // Seen before its final reply was read: it was there at once.
    assert_eq!(latency(100.25, 100.0, 100.0), 0.0);
    // A scan's INTERNALDATE estimate (end of its second) after the reply: that.
    assert_eq!(latency(100.25, 101.0, 160.0), 0.75);
    // One at or before the reply (server clock behind) says nothing: the time seen.
    assert_eq!(latency(100.25, 100.0, 160.0), 59.75);
    assert_eq!(latency(100.25, 100.25, 160.0), 59.75);
}

#[test]
fn lost_after_deadline_then_late() {
    let t = Tracker::load(dir("late"));
    t.add(flight("a", 200.0));
    t.add(flight("b", 300.0));
    assert_eq!(t.expire(199.0, |_| true), vec![]);
    assert_eq!(t.next_deadline(), Some(200.0));
    assert_eq!(t.expire(200.0, |_| true), vec![flight("a", 200.0)]);
    assert_eq!(t.in_flight_count(), 1);
    assert_eq!(t.lost_since(200.0), vec![("p".into(), "s".into())]);
    assert_eq!(t.lost_since(200.5), vec![]);
    // Not lost until its seed has been looked at since the deadline.
    t.add(flight("d", 210.0));
    assert_eq!(t.expire(215.0, |_| false), vec![]);
    assert_eq!(
        t.expire(216.0, |f| f.token == "d"),
        vec![flight("d", 210.0)]
    );
    assert_eq!(
        t.sighted("a", 250.0, 250.0),
        Sighting::Late {
            provider: "p".into(),
            seed: "s".into()
        }
    );
    assert_eq!(t.sighted("a", 251.0, 251.0), Sighting::Duplicate);
    // Lost tokens are forgotten after a day.
    t.expire(300.0, |_| true);
    t.add(flight("c", 400.0));
    t.expire(400.0, |_| true);
    t.expire(400.0 + KEEP_LOST_SECONDS, |_| true);
    assert_eq!(
        t.sighted(
            "c",
            400.0 + KEEP_LOST_SECONDS + 1.0,
            400.0 + KEEP_LOST_SECONDS + 1.0
        ),
        Sighting::Unknown
    );
}

#[test]
fn survives_a_restart() {
    let d = dir("restart");
    let t = Tracker::load(d.clone());
    t.add(flight("a", 1000.0));
    t.add(flight("b", 1000.0));
    assert_eq!(
        t.sighted("b", 105.0, 105.0),
        Sighting::Delivered {
            flight: flight("b", 1000.0),
            latency: 4.0
        }
    );
    t.flush();
    drop(t);
    let t = Tracker::load(d);
    assert_eq!(t.in_flight_count(), 1);
    assert!(matches!(
        t.sighted("a", 110.0, 110.0),
        Sighting::Delivered { .. }
    ));
    assert_eq!(
        t.sighted("b", 110.0, 110.0),
        Sighting::Duplicate,
        "done tokens survive too"
    );
}

#[test]
fn damaged_state_is_set_aside() {
    let d = dir("damaged");
    d.write_atomic(FILE, b"{not json").unwrap();
    let t = Tracker::load(d.clone());
    assert_eq!(t.in_flight_count(), 0);
    assert!(d.path().join("canaries.json.damaged").exists());
}

#[tokio::test]
async fn settled_waits_for_the_last_canary() {
    let t = std::sync::Arc::new(Tracker::load(dir("settle")));
    t.add(flight("a", 1000.0));
    let t2 = t.clone();
    let waiter = tokio::spawn(async move { t2.settled().await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    t.sighted("a", 101.0, 101.0);
    tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn a_canary_seen_while_being_sent_is_ours_and_counted_once_added() {
    let t = Tracker::load(dir("sending"));
    let f = flight("tok-s", 1000.0);
    {
        let _guard = t.sending("tok-s", "s");
        assert_eq!(t.sighted("tok-s", 99.0, 99.0), Sighting::Sending);
        assert!(t.awaiting("s") && !t.awaiting("other"));
        assert_eq!(t.in_flight_count(), 0, "not in flight before the send ends");
        t.add(f.clone());
    }
    match t.sighted("tok-s", 102.0, 102.0) {
        Sighting::Delivered { flight, latency } => {
            assert_eq!(flight, f);
            assert_eq!(latency, 1.0);
        }
        other => panic!("{other:?}"),
    }
    // A send that ends without the message accepted forgets the token.
    drop(t.sending("tok-f", "s"));
    assert_eq!(t.sighted("tok-f", 1.0, 1.0), Sighting::Unknown);
    assert!(!t.is_known("tok-f"));
}

#[test]
fn counts_per_route_and_seed_follow_every_change() {
    let t = Tracker::load(dir("counts"));
    let mut other = flight("b", 500.0);
    other.provider = "q".into();
    let mut elsewhere = flight("c", 1000.0);
    elsewhere.seed = "s2".into();
    t.add(flight("a", 1000.0));
    t.add(other);
    t.add(elsewhere);
    assert_eq!(
        (
            t.in_flight_of("p", "s"),
            t.in_flight_of("q", "s"),
            t.in_flight_of("p", "s2")
        ),
        (1, 1, 1)
    );
    assert!(t.awaiting("s") && t.awaiting("s2") && !t.awaiting("s3"));
    // Delivered: the route's count drops, the seed is still awaited for the other provider.
    assert!(matches!(
        t.sighted("a", 103.0, 103.0),
        Sighting::Delivered { .. }
    ));
    assert_eq!(t.in_flight_of("p", "s"), 0);
    assert!(t.awaiting("s"));
    // Lost: the last canary to the seed is gone, so the seed is no longer awaited.
    assert_eq!(t.expire(600.0, |_| true).len(), 1);
    assert_eq!(t.in_flight_of("q", "s"), 0);
    assert!(!t.awaiting("s"));
    // Dropped with its route after a reload.
    t.retain_routes(&HashSet::new());
    assert_eq!(t.in_flight_of("p", "s2"), 0);
    assert!(!t.awaiting("s2"));
    assert_eq!(t.in_flight_count(), 0);
}

#[test]
fn counts_are_rebuilt_from_the_state_file() {
    let d = dir("recount");
    let t = Tracker::load(d.clone());
    t.add(flight("a", 1000.0));
    t.add(flight("b", 1000.0));
    t.flush();
    let again = Tracker::load(d);
    assert_eq!(again.in_flight_of("p", "s"), 2);
    assert!(again.awaiting("s"));
    assert!(!again.dirty() && again.next_deadline() == Some(1000.0));
}
