//! Runs each check on its own interval, with a deadline and shutdown; first runs come promptly
//! at start-up (and after a reload), a few seconds apart.
//!
//! A check is anything implementing [`Check`]: a name (the `check` label), an interval, a
//! deadline, and an async `run` that does the work, records its own detailed metrics and
//! returns a one-line summary or an error. The scheduler records, for every check,
//! `deliverability_check_success`, `..._duration_seconds`, `..._last_run_timestamp_seconds` and
//! `..._runs_total`, and keeps the most recent runs for the landing page. Checks don't know
//! about HTTP or about each other.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::observed::Observed;
use crate::state::StateDir;

pub use futures::future::BoxFuture;

/// What every scheduled check gets to work with.
#[derive(Clone)]
pub struct Context {
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// Cancelled on shutdown and reload; long work should stop early when it is.
    pub shutdown: CancellationToken,
    /// Where state that must survive a restart is kept.
    pub state: StateDir,
    /// What canaries learned that other checks use (sending IPs, DKIM selectors).
    pub observed: Arc<Observed>,
}

/// Why a run failed: one line, shown in logs and on the landing page. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError(pub String);

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub trait Check: Send + Sync + 'static {
    /// The value of the `check` label: a kind (`canary`, `dns`, `dnsbl`, `reports`).
    fn name(&self) -> &'static str;
    fn interval(&self) -> Duration;
    /// A run still going after this is abandoned and counted as a timeout.
    fn deadline(&self) -> Duration {
        self.interval()
    }
    /// Does the work once. `Ok` carries a one-line summary.
    fn run<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<String, CheckError>>;
    /// Long-lived work beside the runs (watchers, timers). Each future must return soon after
    /// `ctx.shutdown` is cancelled.
    fn background(&self, _ctx: &Context) -> Vec<BoxFuture<'static, ()>> {
        Vec::new()
    }
    /// For `once`: waits until the results a run started asynchronously are in (canaries
    /// delivered or lost), bounded by the check itself, and says what went wrong in them
    /// (a canary lost, a seed that could not be watched): `once` then fails the check.
    fn settle<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async { Ok(()) })
    }
}

crate::label_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RunResult {
        Success = "success",
        Failure = "failure",
        Timeout = "timeout",
    }
}

/// One finished run, for the landing page.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub check: &'static str,
    pub finished: SystemTime,
    pub duration: Duration,
    pub result: RunResult,
    pub message: String,
}

/// The most recent runs of all checks, newest last.
#[derive(Default)]
pub struct History {
    runs: Mutex<VecDeque<RunRecord>>,
}

impl History {
    pub const KEEP: usize = 100;

    pub fn push(&self, r: RunRecord) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.len() == Self::KEEP {
            runs.pop_front();
        }
        runs.push_back(r);
    }

    pub fn recent(&self) -> Vec<RunRecord> {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Runs one check once under its deadline, records the outcome, and returns it.
pub async fn run_and_record(check: &dyn Check, ctx: &Context, history: &History) -> RunRecord {
    let name = check.name();
    let started = Instant::now();
    let outcome = tokio::time::timeout(check.deadline(), check.run(ctx)).await;
    let duration = started.elapsed();
    let (result, message) = match outcome {
        Ok(Ok(summary)) => (RunResult::Success, summary),
        Ok(Err(e)) => (RunResult::Failure, e.0),
        Err(_) => (
            RunResult::Timeout,
            format!(
                "did not finish within its deadline of {}",
                crate::config::values::format_duration(check.deadline())
            ),
        ),
    };
    let m = &ctx.metrics;
    m.check_success
        .with_label_values(&[name])
        .set(i64::from(result == RunResult::Success));
    m.check_duration
        .with_label_values(&[name])
        .set(duration.as_secs_f64());
    m.check_last_run
        .with_label_values(&[name])
        .set(ctx.clock.unix());
    m.check_runs
        .with_label_values(&[name, result.as_str()])
        .inc();
    match result {
        RunResult::Success => {
            tracing::debug!(check = name, duration_seconds = duration.as_secs_f64(), summary = %message, "check finished")
        }
        _ => {
            tracing::warn!(check = name, result = result.as_str(), duration_seconds = duration.as_secs_f64(), error = %message, "check failed")
        }
    }
    let record = RunRecord {
        check: name,
        finished: ctx.clock.now(),
        duration,
        result,
        message,
    };
    history.push(record.clone());
    record
}

/// The running schedule of one configuration. Dropped or stopped on reload and shutdown.
pub struct Scheduler {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Scheduler {
    /// The step between the first runs of successive checks at start-up.
    pub const STAGGER: Duration = Duration::from_secs(2);

    /// Starts every check. Each runs promptly: the first at once, the next [`Self::STAGGER`]
    /// later, and so on (never later than its interval), so a fresh exporter has results
    /// within seconds and the checks don't all start in the same instant. Spreading the work
    /// inside a run (canary routes over `canary.jitter` of the interval) is the check's own.
    pub fn start(checks: Vec<Arc<dyn Check>>, ctx: Context, history: Arc<History>) -> Scheduler {
        let token = ctx.shutdown.child_token();
        let mut tasks = JoinSet::new();
        for check in &checks {
            ctx.metrics.init_check(check.name());
        }
        let ctx = Context {
            shutdown: token.clone(),
            ..ctx
        };
        for check in &checks {
            for task in check.background(&ctx) {
                tasks.spawn(task);
            }
        }
        for (i, check) in checks.into_iter().enumerate() {
            let ctx = ctx.clone();
            let history = history.clone();
            let first =
                (Self::STAGGER * u32::try_from(i).unwrap_or(u32::MAX)).min(check.interval());
            tasks.spawn(async move {
                let mut next = Instant::now() + first;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => {}
                        _ = ctx.shutdown.cancelled() => return,
                    }
                    tokio::select! {
                        _ = run_and_record(check.as_ref(), &ctx, &history) => {}
                        _ = ctx.shutdown.cancelled() => return,
                    }
                    next += check.interval();
                    let now = Instant::now();
                    if next < now {
                        // A run took longer than the interval: skip the missed slots.
                        next = now + check.interval();
                    }
                }
            });
        }
        Scheduler { token, tasks }
    }

    /// Stops every check, waiting up to `grace` for runs in progress to notice.
    pub async fn stop(mut self, grace: Duration) {
        self.token.cancel();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                grace_seconds = grace.as_secs_f64(),
                "checks did not stop in time; abandoning them"
            );
            self.tasks.abort_all();
        }
    }
}

/// Runs every check once, concurrently (the `once` subcommand), with their background work
/// alive until each has settled. Returns the records in the order of `checks`.
pub async fn run_once(
    checks: &[Arc<dyn Check>],
    ctx: &Context,
    history: &History,
) -> Vec<RunRecord> {
    let token = ctx.shutdown.child_token();
    let ctx = Context {
        shutdown: token.clone(),
        ..ctx.clone()
    };
    let mut tasks = JoinSet::new();
    for c in checks {
        ctx.metrics.init_check(c.name());
        for task in c.background(&ctx) {
            tasks.spawn(task);
        }
    }
    let mut records = futures::future::join_all(
        checks
            .iter()
            .map(|c| run_and_record(c.as_ref(), &ctx, history)),
    )
    .await;
    let settled = futures::future::join_all(checks.iter().map(|c| c.settle(&ctx))).await;
    // What the run started and only settled later decides too: the check fails.
    for (r, outcome) in records.iter_mut().zip(settled) {
        let Err(e) = outcome else { continue };
        tracing::warn!(check = r.check, error = %e, "check failed after its run");
        ctx.metrics
            .check_success
            .with_label_values(&[r.check])
            .set(0);
        if r.result == RunResult::Success {
            r.result = RunResult::Failure;
            r.message = e.0;
        } else {
            r.message = format!("{}; {}", r.message, e.0);
        }
    }
    token.cancel();
    if tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        name: &'static str,
        interval: Duration,
        work: Duration,
        fail: bool,
        runs: Arc<AtomicUsize>,
    }

    impl Check for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn interval(&self) -> Duration {
            self.interval
        }
        fn deadline(&self) -> Duration {
            Duration::from_secs(5)
        }
        fn run<'a>(&'a self, _: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
            Box::pin(async move {
                self.runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.work).await;
                if self.fail {
                    Err(CheckError("boom".into()))
                } else {
                    Ok("fine".into())
                }
            })
        }
    }

    fn ctx() -> Context {
        let dir = std::env::temp_dir().join(format!("dx-schedule-test-{}", std::process::id()));
        Context {
            metrics: Arc::new(Metrics::bare()),
            clock: Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1000)),
            shutdown: CancellationToken::new(),
            state: StateDir::open(&dir).unwrap(),
            observed: Default::default(),
        }
    }

    fn fake(
        name: &'static str,
        interval: u64,
        work: u64,
        fail: bool,
    ) -> (Arc<dyn Check>, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        (
            Arc::new(Fake {
                name,
                interval: Duration::from_secs(interval),
                work: Duration::from_secs(work),
                fail,
                runs: runs.clone(),
            }),
            runs,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn runs_each_check_on_its_interval_and_records_results() {
        let ctx = ctx();
        let history = Arc::new(History::default());
        let (ok, ok_runs) = fake("dns", 60, 1, false);
        let (bad, bad_runs) = fake("dnsbl", 30, 0, true);
        let s = Scheduler::start(vec![ok, bad], ctx.clone(), history.clone());
        // Series exist before any run.
        assert_eq!(
            ctx.metrics.check_success.with_label_values(&["dns"]).get(),
            0
        );
        tokio::time::sleep(Duration::from_secs(125)).await;
        assert_eq!(ok_runs.load(Ordering::SeqCst), 3, "t=0, 60, 120");
        assert_eq!(bad_runs.load(Ordering::SeqCst), 5, "t=0, 30, 60, 90, 120");
        let m = &ctx.metrics;
        assert_eq!(m.check_success.with_label_values(&["dns"]).get(), 1);
        assert_eq!(m.check_success.with_label_values(&["dnsbl"]).get(), 0);
        assert_eq!(
            m.check_runs.with_label_values(&["dnsbl", "failure"]).get(),
            5
        );
        assert_eq!(m.check_duration.with_label_values(&["dns"]).get(), 1.0);
        assert_eq!(m.check_last_run.with_label_values(&["dns"]).get(), 1000.0);
        let recent = history.recent();
        assert_eq!(recent.len(), 8);
        assert!(
            recent.iter().any(|r| r.check == "dnsbl"
                && r.message == "boom"
                && r.result == RunResult::Failure)
        );
        s.stop(Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(ok_runs.load(Ordering::SeqCst), 3, "no runs after stop");
    }

    /// A check whose run succeeds and whose settling finds a problem.
    struct SettlesBadly;

    impl Check for SettlesBadly {
        fn name(&self) -> &'static str {
            "canary"
        }
        fn interval(&self) -> Duration {
            Duration::from_secs(60)
        }
        fn run<'a>(&'a self, _: &'a Context) -> BoxFuture<'a, Result<String, CheckError>> {
            Box::pin(async { Ok("1 canaries sent".into()) })
        }
        fn settle<'a>(&'a self, _: &'a Context) -> BoxFuture<'a, Result<(), CheckError>> {
            Box::pin(async { Err(CheckError("p/s: 1 canary lost".into())) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn once_fails_a_check_whose_settling_found_a_problem() {
        let ctx = ctx();
        let (ok, _) = fake("dns", 60, 0, false);
        let checks: Vec<Arc<dyn Check>> = vec![Arc::new(SettlesBadly), ok];
        let records = run_once(&checks, &ctx, &History::default()).await;
        assert_eq!(records[0].result, RunResult::Failure);
        assert_eq!(records[0].message, "p/s: 1 canary lost");
        assert_eq!(records[1].result, RunResult::Success);
        let success = |c: &str| ctx.metrics.check_success.with_label_values(&[c]).get();
        assert_eq!((success("canary"), success("dns")), (0, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_past_its_deadline_is_a_timeout() {
        let ctx = ctx();
        let history = History::default();
        let (slow, _) = fake("reports", 60, 10, false);
        let r = run_and_record(slow.as_ref(), &ctx, &history).await;
        assert_eq!(r.result, RunResult::Timeout);
        assert_eq!(r.duration, Duration::from_secs(5));
        assert_eq!(
            ctx.metrics
                .check_success
                .with_label_values(&["reports"])
                .get(),
            0
        );
        assert_eq!(
            ctx.metrics
                .check_runs
                .with_label_values(&["reports", "timeout"])
                .get(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn first_runs_come_within_seconds_a_step_apart() {
        let ctx = ctx();
        let history = Arc::new(History::default());
        let mut counters = Vec::new();
        let mut checks = Vec::new();
        for _ in 0..4 {
            // A ten-minute interval: the first run must not wait for it.
            let (c, n) = fake("dns", 600, 0, false);
            checks.push(c);
            counters.push(n);
        }
        let runs = |c: &[Arc<AtomicUsize>]| {
            c.iter()
                .map(|n| n.load(Ordering::SeqCst))
                .collect::<Vec<_>>()
        };
        let s = Scheduler::start(checks, ctx, history);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(runs(&counters), [1, 0, 0, 0], "the first check at once");
        tokio::time::sleep(Scheduler::STAGGER).await;
        assert_eq!(runs(&counters), [1, 1, 0, 0], "the next one step later");
        tokio::time::sleep(Scheduler::STAGGER * 2).await;
        assert_eq!(runs(&counters), [1, 1, 1, 1], "all within seconds");
        tokio::time::sleep(Duration::from_secs(590)).await;
        assert_eq!(runs(&counters), [1, 1, 1, 1], "then on their interval");
        s.stop(Duration::from_secs(1)).await;
    }

    #[test]
    fn history_keeps_the_most_recent() {
        let h = History::default();
        for i in 0..(History::KEEP + 5) {
            h.push(RunRecord {
                check: "dns",
                finished: SystemTime::UNIX_EPOCH,
                duration: Duration::ZERO,
                result: RunResult::Success,
                message: i.to_string(),
            });
        }
        let r = h.recent();
        assert_eq!(r.len(), History::KEEP);
        assert_eq!(r[0].message, "5");
        assert_eq!(r.last().unwrap().message, (History::KEEP + 4).to_string());
    }
}
