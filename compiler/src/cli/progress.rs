//! How `apply --wait` shows a rollout while it follows it: on a terminal,
//! one progress bar per wave (its clusters done out of those taking part);
//! otherwise, for logs and CI, a timestamped summary line each time the
//! standing changes.

use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::printer::Style;
use crate::plan::rollout::{ClusterStanding, Phase, Standing};

/// What one wave's bar shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveBar {
    pub wave: String,
    /// The wave's clusters taking part: done, or with something to do.
    pub len: u64,
    /// Those done.
    pub pos: u64,
    /// How many are in progress, waiting for ready nodes, failed and
    /// waiting (empty when none).
    pub message: String,
}

/// A bar per wave that has a cluster taking part, in wave order.
pub fn bars(s: &Standing) -> Vec<WaveBar> {
    s.waves
        .iter()
        .filter(|w| w.done + w.clusters.len() > 0)
        .map(|w| {
            let count = |f: &dyn Fn(&ClusterStanding) -> bool| w.clusters.iter().filter(|c| f(c)).count();
            let nodes = count(&|c| c.waiting_for.is_some());
            let running = count(&|c| {
                matches!(c.phase, Phase::Starting | Phase::ControlPlane | Phase::NodePools) && c.waiting_for.is_none()
            });
            let failed = count(&|c| matches!(c.phase, Phase::Failed { .. }));
            let waiting = count(&|c| c.phase == Phase::Waiting);
            let mut bits = Vec::new();
            for (n, what) in
                [(running, "in progress"), (nodes, "waiting for ready nodes"), (failed, "failed"), (waiting, "waiting")]
            {
                if n > 0 {
                    bits.push(format!("{n} {what}"));
                }
            }
            WaveBar {
                wave: w.name.clone(),
                len: (w.done + w.clusters.len()) as u64,
                pos: w.done as u64,
                message: bits.join(", "),
            }
        })
        .collect()
}

/// The rollout's progress as shown while following it.
pub struct RolloutProgress {
    shown: Shown,
}

enum Shown {
    /// `--quiet`: nothing.
    Nothing,
    /// Not a terminal: a line when the summary changes (`last` was shown).
    Lines { last: String },
    /// A terminal: the bars, by wave name.
    Bars { multi: MultiProgress, bars: Vec<(String, ProgressBar)> },
}

impl RolloutProgress {
    /// Bars when stdout is a terminal (and not quiet), lines otherwise;
    /// `start` is the standing already printed.
    pub fn new(style: Style, terminal: bool, start: &Standing) -> RolloutProgress {
        if style.quiet {
            return RolloutProgress { shown: Shown::Nothing };
        }
        if !terminal {
            return RolloutProgress { shown: Shown::Lines { last: start.summary() } };
        }
        RolloutProgress::drawn_to(ProgressDrawTarget::stdout(), start)
    }

    /// Bars drawn to `target`.
    fn drawn_to(target: ProgressDrawTarget, start: &Standing) -> RolloutProgress {
        let mut p =
            RolloutProgress { shown: Shown::Bars { multi: MultiProgress::with_draw_target(target), bars: vec![] } };
        p.update(start);
        p
    }

    /// Shows `s`: moves the bars, or prints `HH:MM:SS <summary>` to stdout
    /// if the summary changed.
    pub fn update(&mut self, s: &Standing) {
        self.update_to(s, &mut std::io::stdout());
    }

    fn update_to(&mut self, s: &Standing, out: &mut dyn Write) {
        match &mut self.shown {
            Shown::Nothing => {}
            Shown::Lines { last } => {
                let line = s.summary();
                if line != *last {
                    let _ = writeln!(out, "{} {line}", k8s_openapi::jiff::Timestamp::now().strftime("%H:%M:%S"));
                    *last = line;
                }
            }
            Shown::Bars { multi, bars } => {
                let wanted = self::bars(s);
                let width = wanted.iter().map(|b| b.wave.chars().count()).max().unwrap_or(0);
                for b in wanted {
                    let prefix = format!("wave {:<width$}", b.wave);
                    if let Some((_, bar)) = bars.iter().find(|(name, _)| *name == b.wave) {
                        bar.set_prefix(prefix);
                        bar.set_message(tail(&b.message));
                        bar.set_length(b.len);
                        bar.set_position(b.pos);
                        continue;
                    }
                    // Complete before it is first drawn; the tick redraws
                    // it (each setter draws, at most 20 times a second).
                    let bar = ProgressBar::with_draw_target(Some(b.len), ProgressDrawTarget::hidden())
                        .with_style(bar_style())
                        .with_prefix(prefix)
                        .with_message(tail(&b.message))
                        .with_position(b.pos);
                    let bar = multi.add(bar);
                    if !multi.is_hidden() {
                        bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    }
                    bars.push((b.wave.clone(), bar));
                }
            }
        }
    }

    /// Prints `line` to stderr, above the bars on a terminal (said even
    /// with `--quiet`: it is a warning).
    pub fn warn(&self, line: &str) {
        match &self.shown {
            Shown::Bars { multi, .. } => multi.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }

    /// Takes the bars off the terminal (what follows prints the standing).
    pub fn finish(&mut self) {
        if let Shown::Bars { multi, bars } = &mut self.shown {
            for (_, bar) in bars.drain(..) {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}

impl Drop for RolloutProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What follows `N/M clusters done` on a bar.
fn tail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(", {message}") }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} clusters done{msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::rollout::WaveStanding;

    fn cluster(name: &str, phase: Phase) -> ClusterStanding {
        ClusterStanding {
            cluster: name.to_string(),
            target: None,
            phase,
            control_plane: Some("quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64".to_string()),
            node_pools: 1,
            nodes: 1,
            waiting_for: None,
        }
    }

    fn wave(name: &str, size: usize, done: usize, clusters: Vec<ClusterStanding>) -> WaveStanding {
        WaveStanding { name: name.to_string(), max_parallel: "1".to_string(), size, done, clusters, new: Vec::new() }
    }

    /// Canary: one done, one upgrading; prod: three waiting, none taking part in `quiet`.
    fn standing() -> Standing {
        Standing {
            waves: vec![
                wave("canary", 2, 1, vec![cluster("c2", Phase::ControlPlane)]),
                wave("prod", 3, 0, ["p1", "p2", "p3"].iter().map(|n| cluster(n, Phase::Waiting)).collect()),
                wave("quiet", 4, 0, vec![]),
            ],
            ..Standing::default()
        }
    }

    #[test]
    fn a_bar_per_wave_taking_part_counts_its_clusters_done() {
        let first = bars(&standing());
        let shown: Vec<(&str, u64, u64, &str)> =
            first.iter().map(|b| (b.wave.as_str(), b.pos, b.len, b.message.as_str())).collect();
        assert_eq!(shown, [("canary", 1, 2, "1 in progress"), ("prod", 0, 3, "3 waiting")]);

        // c2 done, p1 starting, p2 failed, p3's pools upgraded but not ready.
        let mut s = standing();
        s.waves[0] = wave("canary", 2, 2, vec![]);
        s.waves[1].clusters[0].phase = Phase::Starting;
        s.waves[1].clusters[1].phase = Phase::Failed { reason: "Degraded: X".into(), message: "m".into() };
        s.waves[1].clusters[2].phase = Phase::NodePools;
        s.waves[1].clusters[2].waiting_for = Some("0 of 1 nodes ready in pool workers".into());
        let shown: Vec<(u64, u64, String)> = bars(&s).into_iter().map(|b| (b.pos, b.len, b.message)).collect();
        assert_eq!(
            shown,
            [(2, 2, String::new()), (0, 3, "1 in progress, 1 waiting for ready nodes, 1 failed".to_string())]
        );
    }

    #[test]
    fn the_bars_follow_the_standing() {
        let mut p = RolloutProgress::drawn_to(ProgressDrawTarget::hidden(), &standing());
        let mut s = standing();
        s.waves[0] = wave("canary", 2, 2, vec![]);
        p.update(&s);
        let Shown::Bars { bars, .. } = &p.shown else { panic!("bars expected") };
        let state: Vec<(&str, u64, Option<u64>, String)> =
            bars.iter().map(|(w, b)| (w.as_str(), b.position(), b.length(), b.message())).collect();
        assert_eq!(state, [("canary", 2, Some(2), String::new()), ("prod", 0, Some(3), ", 3 waiting".to_string())]);
        assert_eq!(bars[0].1.prefix(), "wave canary");
        assert_eq!(bars[1].1.prefix(), "wave prod  ", "names aligned");
    }

    #[test]
    fn without_a_terminal_a_timestamped_line_only_when_the_summary_changes() {
        let style = Style { color: false, quiet: false, verbose: false };
        let start = standing();
        let mut p = RolloutProgress::new(style, false, &start);
        let mut out = Vec::new();
        p.update_to(&start, &mut out);
        assert!(out.is_empty(), "the standing already printed is not printed again");
        let mut s = standing();
        s.waves[0] = wave("canary", 2, 2, vec![]);
        p.update_to(&s, &mut out);
        p.update_to(&s, &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let (time, summary) = lines[0].split_once(' ').unwrap();
        assert!(time.len() == 8 && time.chars().filter(|c| *c == ':').count() == 2, "{time}");
        assert_eq!(summary, "rollout: wave prod: 3 waiting");

        let mut quiet = RolloutProgress::new(Style { quiet: true, ..style }, true, &start);
        let mut out = Vec::new();
        quiet.update_to(&s, &mut out);
        assert!(out.is_empty() && matches!(quiet.shown, Shown::Nothing));
    }
}
