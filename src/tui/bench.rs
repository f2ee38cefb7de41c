//! Load figures for the dashboard (ignored by default; they take a while and print numbers):
//!
//! ```text
//! cargo test --release --lib tui::bench -- --ignored --nocapture
//! ```
//!
//! They drive the real reducer and views with a TestBackend: 5 million log lines in the batches the
//! engine's worker sends (up to 2000 lines per 100 ms), a frame drawn for every batch, key presses in
//! between, and the resident memory read from `/proc/self/status`. The end-to-end flood through a
//! real container is in `tests/tui_e2e.rs` (`log_flood_keeps_the_dashboard_responsive`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::msg::UiMsg;
use super::update::update;
use super::views::{self, fixtures};
use crate::core::ids::{IterationNo, RunId};
use crate::core::model::LogLine;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn batch(start: usize, n: usize) -> Vec<LogLine> {
    (start..start + n)
        .map(|i| LogLine {
            stderr: i % 7 == 0,
            text: format!(
                "step {i} loss={:.6} lr=0.050000 batch=32 grad_norm={:.4}",
                1.0 / (i as f64 + 1.0),
                (i % 100) as f64 / 7.0
            ),
        })
        .collect()
}

#[test]
#[ignore = "load figures; run with --release --ignored --nocapture"]
fn flood_of_five_million_lines() {
    const TOTAL: usize = 5_000_000;
    const BATCH: usize = 2000;
    let mut s = fixtures::training_state();
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let rss_start = rss_kib();
    let mut worst_frame = Duration::ZERO;
    let mut worst_key = Duration::ZERO;
    let mut rss_at_1m = 0;
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < TOTAL {
        let lines = batch(sent, BATCH);
        sent += BATCH;
        let f = Instant::now();
        let _ = update(
            &mut s,
            UiMsg::Logs {
                run: RunId(3),
                no: IterationNo(2),
                lines,
                at_ms: fixtures::NOW,
            },
        );
        term.draw(|fr| views::draw(&s, fr)).unwrap();
        worst_frame = worst_frame.max(f.elapsed());
        if sent % 100_000 == 0 {
            // A key press between two batches: from the key to the frame that shows it.
            let k = Instant::now();
            let code = if (sent / 100_000) % 2 == 0 {
                KeyCode::Char('k')
            } else {
                KeyCode::Char('G')
            };
            let _ = update(
                &mut s,
                UiMsg::Key(KeyEvent::new_with_kind(
                    code,
                    KeyModifiers::NONE,
                    KeyEventKind::Press,
                )),
            );
            term.draw(|fr| views::draw(&s, fr)).unwrap();
            worst_key = worst_key.max(k.elapsed());
        }
        if sent == 1_000_000 {
            rss_at_1m = rss_kib();
        }
    }
    let took = t0.elapsed();
    let rss_end = rss_kib();
    let buf = &s.logs.buffers[&(RunId(3), IterationNo(2))];
    println!("lines:               {TOTAL} in batches of {BATCH}, one frame per batch (160x48)");
    println!(
        "throughput:          {:.0} lines/s (reducer + frame)",
        TOTAL as f64 / took.as_secs_f64()
    );
    println!(
        "worst batch+frame:   {:.1} ms",
        worst_frame.as_secs_f64() * 1000.0
    );
    println!(
        "worst key-to-frame:  {:.2} ms",
        worst_key.as_secs_f64() * 1000.0
    );
    println!(
        "scrollback kept:     {} lines, {} dropped",
        buf.len(),
        buf.dropped()
    );
    println!(
        "resident memory:     start {} MiB, after 1M lines {} MiB, after 5M lines {} MiB",
        rss_start / 1024,
        rss_at_1m / 1024,
        rss_end / 1024
    );
    assert_eq!(buf.len(), 10_000);
    assert!(worst_key < Duration::from_millis(100));
    assert!(
        rss_end < rss_at_1m + 16 * 1024,
        "memory stays flat after the cap is reached"
    );
}

#[test]
#[ignore = "load figures; run with --release --ignored --nocapture"]
fn one_line_of_100k_characters() {
    let mut s = fixtures::training_state();
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let long: String = "0123456789".repeat(10_000);
    let t = Instant::now();
    let _ = update(
        &mut s,
        UiMsg::Logs {
            run: RunId(3),
            no: IterationNo(2),
            lines: vec![LogLine {
                stderr: false,
                text: long,
            }],
            at_ms: fixtures::NOW,
        },
    );
    term.draw(|fr| views::draw(&s, fr)).unwrap();
    let plain = t.elapsed();
    s.logs.wrap = true;
    let t = Instant::now();
    term.draw(|fr| views::draw(&s, fr)).unwrap();
    let wrapped = t.elapsed();
    println!(
        "100k-char line: arrival + frame {:.2} ms, wrapped frame {:.2} ms",
        plain.as_secs_f64() * 1000.0,
        wrapped.as_secs_f64() * 1000.0
    );
    assert!(plain < Duration::from_millis(100) && wrapped < Duration::from_millis(100));
}
