use super::*;

fn text(f: &Families) -> String {
    let mut out = Vec::new();
    f.encode(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn writes_what_the_prometheus_crate_writes_for_the_same_values() {
    // The same families and values through both encoders: the text is identical. Label names
    // are declared out of alphabetical order on purpose: both write them sorted by name.
    let mut ours = Families::default();
    let c = ours.counter(
        "t_sent_total",
        "Sent.\nTwo lines \\ here.",
        &["seed", "provider"],
    );
    let g = ours.gauge(
        "t_latency_seconds",
        "Latency.",
        &["provider", "seed", "placement"],
    );
    let i = ours.int_gauge("t_up", "Up.", &["seed"]);
    let h = ours.histogram(
        "t_duration_seconds",
        "Duration.",
        &["provider"],
        &[0.1, 1.0, 5.0],
    );
    let r = prometheus::Registry::new();
    let pc = prometheus::IntCounterVec::new(
        prometheus::Opts::new("t_sent_total", "Sent.\nTwo lines \\ here."),
        &["seed", "provider"],
    )
    .unwrap();
    let pg = prometheus::GaugeVec::new(
        prometheus::Opts::new("t_latency_seconds", "Latency."),
        &["provider", "seed", "placement"],
    )
    .unwrap();
    let pi = prometheus::IntGaugeVec::new(prometheus::Opts::new("t_up", "Up."), &["seed"]).unwrap();
    let ph = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("t_duration_seconds", "Duration.")
            .buckets(vec![0.1, 1.0, 5.0]),
        &["provider"],
    )
    .unwrap();
    r.register(Box::new(pc.clone())).unwrap();
    r.register(Box::new(pg.clone())).unwrap();
    r.register(Box::new(pi.clone())).unwrap();
    r.register(Box::new(ph.clone())).unwrap();
    for (p, s) in [("b", "z\"q"), ("a", "y"), ("a", "x\\n"), ("b", "a\nb")] {
        c.with_label_values(&[s, p]).inc_by(3);
        pc.with_label_values(&[s, p]).inc_by(3);
        for (pl, v) in [("spam", 0.505), ("inbox", 2.0)] {
            g.with_label_values(&[p, s, pl]).set(v);
            pg.with_label_values(&[p, s, pl]).set(v);
        }
        i.with_label_values(&[s]).set(-2);
        pi.with_label_values(&[s]).set(-2);
    }
    g.with_label_values(&["c", "c", "c"]).set(f64::INFINITY);
    pg.with_label_values(&["c", "c", "c"]).set(f64::INFINITY);
    for v in [0.05, 0.1, 0.7, 3.0, 7.5, 1e9] {
        h.with_label_values(&["p"]).observe(v);
        ph.with_label_values(&["p"]).observe(v);
    }
    let mut theirs = Vec::new();
    prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut theirs).unwrap();
    // The one difference: the crate writes infinity as Rust prints it, `inf`; we write the
    // text format's own `+Inf` (Prometheus reads both).
    let theirs = String::from_utf8(theirs)
        .unwrap()
        .replace(" inf\n", " +Inf\n");
    // The crate writes families sorted by name; ours come in definition order.
    let by_family = |t: &str| {
        let mut blocks: Vec<String> = t
            .split("# HELP ")
            .filter(|b| !b.is_empty())
            .map(String::from)
            .collect();
        blocks.sort();
        blocks
    };
    assert_eq!(
        by_family(&text(&ours)),
        by_family(&theirs),
        "ours:\n{}\ntheirs:\n{theirs}",
        text(&ours)
    );
}

#[test]
fn a_family_without_series_is_not_written_and_removed_series_go() {
    let mut f = Families::default();
    let c = f.counter("t_total", "T.", &["a"]);
    assert_eq!(text(&f), "");
    c.with_label_values(&["x"]).inc();
    c.with_label_values(&["y"]);
    assert_eq!(
        text(&f),
        "# HELP t_total T.\n# TYPE t_total counter\nt_total{a=\"x\"} 1\nt_total{a=\"y\"} 0\n"
    );
    assert!(c.remove_label_values(&["x"]));
    assert!(!c.remove_label_values(&["x"]));
    assert_eq!(c.len(), 1);
    c.reset();
    assert!(c.is_empty());
    assert_eq!(text(&f), "");
}

#[test]
fn a_series_is_shared_by_every_handle_to_it() {
    let mut f = Families::default();
    let h = f.histogram("t_seconds", "T.", &["a"], &[1.0]);
    let one = h.with_label_values(&["x"]);
    h.with_label_values(&["x"]).observe(2.0);
    one.observe(0.5);
    assert_eq!((one.get_sample_count(), one.get_sample_sum()), (2, 2.5));
}

#[test]
#[should_panic(expected = "label values")]
fn the_wrong_number_of_label_values_is_a_programming_error() {
    let mut f = Families::default();
    f.counter("t_total", "T.", &["a", "b"])
        .with_label_values(&["x"]);
}
