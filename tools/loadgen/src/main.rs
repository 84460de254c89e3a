//! A bounded load generator for `seqrnn serve`: `--concurrency` clients, each on its own thread
//! and connection, send the same request body until `--requests` have been sent in all (or
//! `--duration-s` has passed), and the figures are printed as one JSON line: requests, errors,
//! requests/s, tokens/s (from the answers' `tokens`), latency p50/p99 per request and per
//! generated token.
//!
//! An answer is an error unless its status is `--status` (default 200) and, with `--expect`,
//! its body is exactly that text (for a seeded request, whose answer is known).
//!
//! loadgen URL BODY --concurrency N --requests M [--duration-s S] [--status CODE] [--expect TEXT]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Args {
    url: String,
    body: String,
    concurrency: usize,
    requests: usize,
    duration: Duration,
    status: u16,
    expect: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let url = it.next().ok_or("usage: loadgen URL BODY_JSON --concurrency N --requests M [--duration-s S]")?;
    let body = it.next().ok_or("no BODY_JSON")?;
    let mut a = Args {
        url,
        body,
        concurrency: 1,
        requests: 100,
        duration: Duration::from_secs(600),
        status: 200,
        expect: None,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = format!("{flag}: not a number: {v}");
        match flag.as_str() {
            "--concurrency" => a.concurrency = v.parse().map_err(|_| bad)?,
            "--requests" => a.requests = v.parse().map_err(|_| bad)?,
            "--status" => a.status = v.parse().map_err(|_| bad)?,
            "--expect" => a.expect = Some(v),
            "--duration-s" => {
                let s: f64 = v.parse().map_err(|_| bad)?;
                a.duration = Duration::from_secs_f64(s.max(0.0));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.concurrency == 0 || a.requests == 0 {
        return Err("--concurrency and --requests must be at least 1".into());
    }
    Ok(a)
}

/// `(seconds, tokens)` of each answered request; errors counted apart.
struct Tally {
    done: Mutex<Vec<(f64, u64)>>,
    errors: AtomicUsize,
}

fn client(a: &Args, next: &AtomicUsize, tally: &Tally, start: Instant) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    while next.fetch_add(1, Ordering::Relaxed) < a.requests && start.elapsed() < a.duration {
        let t0 = Instant::now();
        let answer = agent
            .post(&a.url)
            .header("Content-Type", "application/json")
            .send(a.body.as_str());
        let ok = answer.ok().and_then(|mut r| {
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().ok()?;
            let right = status == a.status && a.expect.as_ref().is_none_or(|e| *e == text);
            right.then_some(text)
        });
        match ok {
            Some(text) => {
                let tokens = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["tokens"].as_u64())
                    .unwrap_or(0);
                let secs = t0.elapsed().as_secs_f64();
                tally.done.lock().unwrap_or_else(|p| p.into_inner()).push((secs, tokens));
            }
            None => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let next = AtomicUsize::new(0);
    let tally = Tally {
        done: Mutex::new(Vec::new()),
        errors: AtomicUsize::new(0),
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.concurrency {
            s.spawn(|| client(&a, &next, &tally, start));
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let done = tally.done.into_inner().unwrap_or_else(|p| p.into_inner());
    let tokens: u64 = done.iter().map(|d| d.1).sum();
    let mut lat: Vec<f64> = done.iter().map(|d| d.0).collect();
    lat.sort_by(f64::total_cmp);
    let mut per_token: Vec<f64> = done
        .iter()
        .filter(|d| d.1 > 0)
        .map(|d| d.0 / d.1 as f64)
        .collect();
    per_token.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "concurrency": a.concurrency,
        "requests": done.len(),
        "errors": tally.errors.load(Ordering::Relaxed),
        "seconds": wall,
        "requests_per_s": done.len() as f64 / wall,
        "tokens_per_s": tokens as f64 / wall,
        "latency_ms_p50": 1e3 * percentile(&lat, 0.5),
        "latency_ms_p99": 1e3 * percentile(&lat, 0.99),
        "token_latency_ms_p50": 1e3 * percentile(&per_token, 0.5),
        "token_latency_ms_p99": 1e3 * percentile(&per_token, 0.99),
    });
    println!("{out}");
}
