//! Watching workspaces: file events become batches, batches become
//! follow-ups.
//!
//! Each folder of a source that the matcher lets through gets one
//! (non-recursive) inotify watch, so nothing is watched under an ignored
//! folder such as `node_modules/`; a folder that appears gets its watches
//! as it is seen. Events go through `notify-debouncer-full` (which pairs
//! the two halves of a rename) with a short timeout, then through a quiet
//! window: a batch is cut once no event came for [`Options::quiet`], or
//! once its oldest event is [`Options::cap`] old, so a steady stream of
//! writes still flushes. An overflow of the kernel's queue (or an error
//! of the watcher) makes the next batch a full rescan.
//!
//! A batch is synced (for `mode = "sync"`) at once; its follow-up
//! (restart, rebuild, exec) runs through [`Hooks`] once the workspace has
//! been quiet for [`Options::settle`], once for all the batches before it.
//! The loop is one thread: events that arrive while a batch or a
//! follow-up runs wait in the channel and make up the next batch
//! together.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use super::SyncError;
use super::matcher::Matcher;
use super::workspace::{Report, Syncer};
use crate::client::Engine;

/// What follows a batch of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// Nothing.
    None,
    /// Restart the container.
    Restart,
    /// Rebuild its image and recreate it.
    Rebuild,
    /// Run this command in it.
    Exec(Vec<String>),
}

/// One watched workspace.
pub struct Watched {
    /// The container's key in the file.
    pub container: String,
    /// The source folder.
    pub source: PathBuf,
    /// The copy to keep in sync (`mode = "sync"`); `None` for a bind
    /// mount, where only the follow-up runs.
    pub sync: Option<Syncer>,
    /// The matcher (the syncer's own for a synced workspace).
    pub matcher: Matcher,
    /// What follows a batch.
    pub follow: Follow,
}

/// Timing of batches.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The debouncer's timeout (rename pairing).
    pub debounce: Duration,
    /// A batch is cut after this long without events.
    pub quiet: Duration,
    /// ... or once its oldest event is this old.
    pub cap: Duration,
    /// The follow-up runs once the workspace had no change for this long
    /// after a batch, so a checkout sent in several batches restarts the
    /// container once, on the whole tree.
    pub settle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(10),
            quiet: Duration::from_millis(20),
            cap: Duration::from_millis(250),
            settle: Duration::from_millis(200),
        }
    }
}

/// What the watcher tells its caller, and how follow-ups run.
pub trait Hooks {
    /// Every workspace is watched: a change made from now on is seen.
    fn watching(&mut self);
    /// A batch was synced.
    fn synced(&mut self, container: &str, report: &Report, took: Duration);
    /// Runs `follow` for `container` after a batch that changed `changed`.
    fn follow_up(
        &mut self,
        container: &str,
        follow: &Follow,
        changed: &[String],
    ) -> Result<(), String>;
    /// Something went wrong; the watch goes on.
    fn problem(&mut self, container: &str, message: &str);
}

/// A message from the debouncer: which workspace, what happened.
type Message = (usize, DebounceEventResult);

/// One workspace's state in the loop.
struct Slot {
    w: Watched,
    /// Relative paths changed since the last batch.
    pending: BTreeSet<String>,
    /// The next batch is a full rescan.
    full: bool,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Folders watched.
    watched: HashSet<PathBuf>,
    /// The source is gone: watches are made again when it is back.
    lost: bool,
    retry_at: Option<Instant>,
    /// Paths changed by batches whose follow-up has not run yet.
    follow_changed: Vec<String>,
    /// When that follow-up runs, unless more changes come.
    follow_at: Option<Instant>,
}

/// Watches `targets` until `stop` is set, syncing each batch through
/// `engine` and running its follow-up through `hooks`.
pub fn watch(
    engine: &Engine,
    targets: Vec<Watched>,
    opts: Options,
    hooks: &mut dyn Hooks,
    stop: &AtomicBool,
) -> Result<(), SyncError> {
    let (tx, rx) = mpsc::channel::<Message>();
    let mut debouncers = Vec::new();
    let mut slots: Vec<Slot> = Vec::new();
    for (i, w) in targets.into_iter().enumerate() {
        let tx = tx.clone();
        let d = new_debouncer(opts.debounce, None, move |r: DebounceEventResult| {
            let _ = tx.send((i, r));
        })
        .map_err(|e| SyncError::Watch {
            path: w.source.clone(),
            message: e.to_string(),
        })?;
        debouncers.push(d);
        slots.push(Slot {
            w,
            pending: BTreeSet::new(),
            full: false,
            first: None,
            last: None,
            watched: HashSet::new(),
            lost: false,
            retry_at: None,
            follow_changed: Vec::new(),
            follow_at: None,
        });
    }
    let started = Instant::now();
    for (i, s) in slots.iter_mut().enumerate() {
        let source = s.w.source.clone();
        add_watches(&mut debouncers[i], s, &source);
        // A change made between the caller's first sync and these
        // watches sent no event: a synced workspace is looked at once
        // more (quietly, when nothing changed). A bound one is not: its
        // follow-up would run for nothing.
        if s.w.sync.is_some() {
            s.full = true;
            s.first = Some(started);
            s.last = Some(started);
        }
    }
    hooks.watching();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = slots
            .iter()
            .filter_map(|s| deadline(s, &opts))
            .min()
            .map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(now)
            })
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(m) => take(&mut slots, m),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(m) = rx.try_recv() {
            take(&mut slots, m);
        }
        let now = Instant::now();
        for (i, s) in slots.iter_mut().enumerate() {
            if s.lost && s.w.source.is_dir() {
                s.lost = false;
                s.watched.clear();
                let source = s.w.source.clone();
                add_watches(&mut debouncers[i], s, &source);
                s.full = true;
                s.first.get_or_insert(now);
                s.last = Some(now);
            }
            // The index is written once the workspace is quiet.
            if s.first.is_none()
                && let Some(sync) = &mut s.w.sync
                && sync
                    .unsaved_for()
                    .is_some_and(|t| t >= Duration::from_secs(1))
                && let Err(e) = sync.flush()
            {
                hooks.problem(&s.w.container, &e.to_string());
            }
            let due = batch_deadline(s, &opts).is_some_and(|d| d <= now);
            if due {
                run_batch(engine, &mut debouncers[i], s, hooks, &opts);
            } else if s.first.is_none() && s.follow_at.is_some_and(|t| t <= now) {
                s.follow_at = None;
                let changed = std::mem::take(&mut s.follow_changed);
                if let Err(m) = hooks.follow_up(&s.w.container, &s.w.follow, &changed) {
                    hooks.problem(&s.w.container, &m);
                }
            }
        }
    }
    for d in debouncers {
        d.stop_nonblocking();
    }
    for s in &mut slots {
        if let Some(sync) = &mut s.w.sync
            && let Err(e) = sync.flush()
        {
            hooks.problem(&s.w.container, &e.to_string());
        }
    }
    Ok(())
}

/// When a slot next needs the loop: its pending batch or its follow-up.
fn deadline(s: &Slot, opts: &Options) -> Option<Instant> {
    match (batch_deadline(s, opts), s.follow_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When a slot's pending batch is due.
fn batch_deadline(s: &Slot, opts: &Options) -> Option<Instant> {
    if let Some(r) = s.retry_at {
        return Some(r);
    }
    let (first, last) = (s.first?, s.last?);
    Some((last + opts.quiet).min(first + opts.cap))
}

/// Notes the debouncer's events in their slot.
fn take(slots: &mut [Slot], (i, result): Message) {
    let Some(s) = slots.get_mut(i) else { return };
    let now = Instant::now();
    match result {
        Ok(events) => {
            for ev in events {
                if ev.need_rescan() {
                    s.full = true;
                }
                for p in &ev.paths {
                    let Ok(rel) = p.strip_prefix(&s.w.source) else {
                        continue;
                    };
                    let Some(rel) = rel.to_str() else { continue };
                    if rel.is_empty() {
                        // The source itself: gone, or its watch lost.
                        s.full = true;
                        continue;
                    }
                    if Matcher::is_rule_file(rel) {
                        s.full = true;
                    }
                    let is_dir = p.is_dir();
                    if s.w.matcher.ignored(rel, is_dir) {
                        continue;
                    }
                    s.pending.insert(rel.to_string());
                }
            }
        }
        Err(errors) => {
            // Overflow and watcher errors: look at everything again.
            let _ = errors;
            s.full = true;
        }
    }
    if s.full || !s.pending.is_empty() {
        s.first.get_or_insert(now);
        s.last = Some(now);
    }
}

type Debouncer = notify_debouncer_full::Debouncer<
    notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// Watches `dir` and every folder below it that the matcher lets
/// through, skipping those already watched.
fn add_watches(d: &mut Debouncer, s: &mut Slot, dir: &Path) {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if s.watched.contains(&dir) {
            continue;
        }
        if d.watch(&dir, RecursiveMode::NonRecursive).is_err() {
            if dir == s.w.source {
                s.lost = true;
            }
            continue;
        }
        s.watched.insert(dir.clone());
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in read.flatten() {
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir {
                continue;
            }
            let p = item.path();
            let Some(rel) = p.strip_prefix(&s.w.source).ok().and_then(Path::to_str) else {
                continue;
            };
            if !s.w.matcher.ignored(rel, true) {
                todo.push(p);
            }
        }
    }
}

/// Syncs a slot's pending batch and runs its follow-up.
fn run_batch(
    engine: &Engine,
    d: &mut Debouncer,
    s: &mut Slot,
    hooks: &mut dyn Hooks,
    opts: &Options,
) {
    let full = s.full;
    let scope: Vec<String> = std::mem::take(&mut s.pending).into_iter().collect();
    s.full = false;
    s.first = None;
    s.last = None;
    s.retry_at = None;
    if !s.w.source.is_dir() {
        if !s.lost {
            hooks.problem(
                &s.w.container,
                &format!(
                    "workspace source {} is gone; watching for it to come back",
                    s.w.source.display()
                ),
            );
        }
        s.lost = true;
        s.watched.clear();
        return;
    }
    // New folders get their watches before they are read, so nothing
    // made in them from now on is missed.
    for rel in &scope {
        let p = s.w.source.join(rel);
        if p.is_dir() && !s.watched.contains(&p) {
            add_watches(d, s, &p);
        }
    }
    if full && let Some(sync) = &mut s.w.sync {
        if let Err(e) = sync.reload_rules() {
            hooks.problem(&s.w.container, &e.to_string());
        }
        s.w.matcher = sync.matcher().clone();
    }
    let changed: Vec<String> = match &mut s.w.sync {
        Some(sync) => {
            let started = Instant::now();
            match sync.sync(engine, (!full).then_some(scope.as_slice())) {
                Ok(report) => {
                    hooks.synced(&s.w.container, &report, started.elapsed());
                    report.changed
                }
                Err(e) => {
                    hooks.problem(&s.w.container, &format!("{e}; trying again"));
                    // Everything again, a moment later.
                    s.full = true;
                    s.retry_at = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
            }
        }
        None => {
            if full {
                vec![".".to_string()]
            } else {
                scope
            }
        }
    };
    if changed.is_empty() || s.w.follow == Follow::None {
        return;
    }
    s.follow_changed.extend(changed);
    s.follow_at = Some(Instant::now() + opts.settle);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn slot(first: Option<Instant>, last: Option<Instant>) -> Slot {
        let dir = tempfile::tempdir().unwrap();
        Slot {
            w: Watched {
                container: "web".into(),
                source: dir.path().to_path_buf(),
                sync: None,
                matcher: Matcher::new(dir.path(), &[]).unwrap(),
                follow: Follow::Restart,
            },
            pending: BTreeSet::new(),
            full: false,
            first,
            last,
            watched: HashSet::new(),
            lost: false,
            retry_at: None,
            follow_changed: Vec::new(),
            follow_at: None,
        }
    }

    #[test]
    fn a_batch_is_cut_after_the_quiet_window_or_at_the_cap() {
        let o = Options::default();
        let t0 = Instant::now();
        // One event: due a quiet window later.
        let s = slot(Some(t0), Some(t0));
        assert_eq!(batch_deadline(&s, &o), Some(t0 + o.quiet));
        // A steady stream: the cap wins.
        let s = slot(Some(t0), Some(t0 + o.cap));
        assert_eq!(batch_deadline(&s, &o), Some(t0 + o.cap));
        // Nothing pending, nothing due; a follow-up waiting is.
        let mut s = slot(None, None);
        assert_eq!(deadline(&s, &o), None);
        s.follow_at = Some(t0 + o.settle);
        assert_eq!(deadline(&s, &o), Some(t0 + o.settle));
    }

    #[test]
    fn events_under_ignored_paths_are_not_pending() {
        let mut slots = vec![slot(None, None)];
        let root = slots[0].w.source.clone();
        let ev = |p: &str| {
            notify_debouncer_full::DebouncedEvent::new(
                notify::Event::new(notify::EventKind::Any).add_path(root.join(p)),
                Instant::now(),
            )
        };
        take(
            &mut slots,
            (
                0,
                Ok(vec![
                    ev("a.txt"),
                    ev(".git/index"),
                    ev("x.swp"),
                    ev("b/c.txt~"),
                ]),
            ),
        );
        let pending: Vec<&str> = slots[0].pending.iter().map(String::as_str).collect();
        assert_eq!(pending, ["a.txt"]);
        assert!(slots[0].first.is_some());
        // An overflow asks for a full rescan.
        take(
            &mut slots,
            (0, Err(vec![notify::Error::generic("overflow")])),
        );
        assert!(slots[0].full);
    }
}
