//! Labelled metric families written straight to the text format: the canary families, whose
//! series grow with providers × seeds.
//!
//! The `prometheus` crate encodes by first gathering every series into protobuf structures
//! (each label pair a fresh pair of strings) and sorting them: 1.3 µs of the 1.65 µs a series
//! cost at 10,000 routes (`cargo bench --bench scrape`). Here each series keeps its label set
//! rendered once, when it is created, in a map ordered by label values; a scrape writes name,
//! labels and value, and holds one family's read lock at a time, so canary bookkeeping never
//! waits for a whole scrape. The API is the crate's (`with_label_values`, `inc`, `set`,
//! `observe`, `remove_label_values`), so the code that records is the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A family: name, help, label names and its series, ordered by label values.
pub struct Family<C> {
    name: &'static str,
    help: String,
    kind: &'static str,
    labels: Vec<&'static str>,
    /// The label positions in the order of their names: series are written, and ordered, with
    /// their labels sorted by name, as the `prometheus` crate does.
    order: Vec<usize>,
    make: Box<dyn Fn() -> C + Send + Sync>,
    series: RwLock<BTreeMap<String, Arc<Series<C>>>>,
}

/// One series: its label set as written (`a="1",b="2"`) and its value.
pub struct Series<C> {
    rendered: String,
    pub cell: C,
}

impl<C> std::ops::Deref for Series<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.cell
    }
}

/// The map key: the label values, taken in the order of their names, joined by a byte no label
/// value holds, so the map's order is the order in which the `prometheus` crate sorts them.
fn key(order: &[usize], values: &[&str]) -> String {
    let mut k = String::new();
    for (n, &i) in order.iter().enumerate() {
        if n > 0 {
            k.push('\u{0}');
        }
        k.push_str(values[i]);
    }
    k
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl<C: Send + Sync + 'static> Family<C> {
    fn new(
        name: &'static str,
        help: &str,
        kind: &'static str,
        labels: &[&'static str],
        make: impl Fn() -> C + Send + Sync + 'static,
    ) -> Family<C> {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|&i| labels[i]);
        Family {
            order,
            name,
            help: help.replace('\\', "\\\\").replace('\n', "\\n"),
            kind,
            labels: labels.to_vec(),
            make: Box::new(make),
            series: RwLock::new(BTreeMap::new()),
        }
    }

    /// The series with these label values, created (at zero) if new.
    ///
    /// # Panics
    /// When the number of values is not the number of label names: a programming error, as in
    /// the `prometheus` crate.
    pub fn with_label_values(&self, values: &[&str]) -> Arc<Series<C>> {
        assert_eq!(
            values.len(),
            self.labels.len(),
            "{}: label values {values:?} for labels {:?}",
            self.name,
            self.labels
        );
        let k = key(&self.order, values);
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
        {
            return s.clone();
        }
        let mut rendered = String::new();
        for (n, &i) in self.order.iter().enumerate() {
            if n > 0 {
                rendered.push(',');
            }
            rendered.push_str(self.labels[i]);
            rendered.push_str("=\"");
            escape_into(&mut rendered, values[i]);
            rendered.push('"');
        }
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(k)
            .or_insert_with(|| {
                Arc::new(Series {
                    rendered,
                    cell: (self.make)(),
                })
            })
            .clone()
    }

    /// Forgets a series; whether it existed.
    pub fn remove_label_values(&self, values: &[&str]) -> bool {
        if values.len() != self.labels.len() {
            return false;
        }
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(&self.order, values))
            .is_some()
    }

    /// Forgets every series.
    pub fn reset(&self) {
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes a family in the text format; nothing for a family without series (as the
/// `prometheus` crate prunes them).
pub trait Encode: Send + Sync {
    fn encode(&self, out: &mut Vec<u8>);
}

fn head<C>(f: &Family<C>, out: &mut Vec<u8>) {
    for (what, text) in [("HELP", f.help.as_str()), ("TYPE", f.kind)] {
        out.extend_from_slice(b"# ");
        out.extend_from_slice(what.as_bytes());
        out.push(b' ');
        out.extend_from_slice(f.name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
}

fn line(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &str, extra: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || !extra.is_empty() {
        out.push(b'{');
        out.extend_from_slice(labels.as_bytes());
        if !labels.is_empty() && !extra.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(extra.as_bytes());
        out.push(b'}');
    }
    out.push(b' ');
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// A float as the text format writes it (`+Inf`, `-Inf`, `NaN`; integers without a fraction).
pub fn format_f64(v: f64, s: &mut String) {
    s.clear();
    if v.is_nan() {
        s.push_str("NaN");
    } else if v.is_infinite() {
        s.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(s, "{v}");
    }
}

impl<C: Value + Send + Sync + 'static> Encode for Family<C> {
    fn encode(&self, out: &mut Vec<u8>) {
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        if series.is_empty() {
            return;
        }
        head(self, out);
        let mut v = String::new();
        for s in series.values() {
            s.cell.format(&mut v);
            line(out, self.name, "", &s.rendered, "", &v);
        }
    }
}

/// A value the text format writes as one number.
pub trait Value {
    fn format(&self, s: &mut String);
}

/// A counter of events (the `prometheus` crate's `IntCounter`).
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Value for Counter {
    fn format(&self, s: &mut String) {
        s.clear();
        let _ = write!(s, "{}", self.get());
    }
}

/// An integer gauge (`IntGauge`).
#[derive(Default)]
pub struct IntGauge(AtomicI64);

impl IntGauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Value for IntGauge {
    fn format(&self, s: &mut String) {
        s.clear();
        let _ = write!(s, "{}", self.get());
    }
}

/// A float gauge (`Gauge`).
#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl Value for Gauge {
    fn format(&self, s: &mut String) {
        format_f64(self.get(), s);
    }
}

/// A histogram with fixed buckets. The count is the sum of the buckets when written, so the
/// `+Inf` bucket and `_count` always agree.
pub struct Histogram {
    bounds: Arc<[f64]>,
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Histogram {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            bounds,
            buckets,
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    pub fn get_sample_count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub fn get_sample_sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

/// A histogram family: its bucket bounds, and their `le` labels written once.
pub struct HistogramFamily {
    family: Family<Histogram>,
    le: Vec<String>,
}

impl std::ops::Deref for HistogramFamily {
    type Target = Family<Histogram>;
    fn deref(&self) -> &Family<Histogram> {
        &self.family
    }
}

impl Encode for HistogramFamily {
    fn encode(&self, out: &mut Vec<u8>) {
        let f = &self.family;
        let series = f.series.read().unwrap_or_else(|e| e.into_inner());
        if series.is_empty() {
            return;
        }
        head(f, out);
        let mut v = String::new();
        for s in series.values() {
            let h = &s.cell;
            let mut cumulative = 0u64;
            for (i, le) in self.le.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                v.clear();
                let _ = write!(v, "{cumulative}");
                line(out, f.name, "_bucket", &s.rendered, le, &v);
            }
            format_f64(h.get_sample_sum(), &mut v);
            line(out, f.name, "_sum", &s.rendered, "", &v);
            v.clear();
            let _ = write!(v, "{cumulative}");
            line(out, f.name, "_count", &s.rendered, "", &v);
        }
    }
}

pub type IntCounterVec = Family<Counter>;
pub type IntGaugeVec = Family<IntGauge>;
pub type GaugeVec = Family<Gauge>;
pub type HistogramVec = HistogramFamily;

/// Defines the families of one group and lists them for the encoder.
#[derive(Default)]
pub struct Families(Vec<Arc<dyn Encode>>);

impl Families {
    fn add<T: Encode + 'static>(&mut self, f: T) -> Arc<T> {
        let f = Arc::new(f);
        self.0.push(f.clone());
        f
    }

    pub fn counter(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[&'static str],
    ) -> Arc<IntCounterVec> {
        self.add(Family::new(name, help, "counter", labels, Counter::default))
    }

    pub fn int_gauge(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[&'static str],
    ) -> Arc<IntGaugeVec> {
        self.add(Family::new(name, help, "gauge", labels, IntGauge::default))
    }

    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[&'static str],
    ) -> Arc<GaugeVec> {
        self.add(Family::new(name, help, "gauge", labels, Gauge::default))
    }

    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[&'static str],
        bounds: &[f64],
    ) -> Arc<HistogramVec> {
        let bounds: Arc<[f64]> = bounds.into();
        let mut le: Vec<String> = bounds
            .iter()
            .map(|b| {
                let mut s = String::new();
                format_f64(*b, &mut s);
                format!("le=\"{s}\"")
            })
            .collect();
        le.push("le=\"+Inf\"".to_string());
        let family = Family::new(name, help, "histogram", labels, move || {
            Histogram::new(bounds.clone())
        });
        self.add(HistogramFamily { family, le })
    }

    /// Writes every family with series, in the order they were defined.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for f in &self.0 {
            f.encode(out);
        }
    }
}

#[cfg(test)]
mod tests;
