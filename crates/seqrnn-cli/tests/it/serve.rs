//! `seqrnn serve`: the real server on an ephemeral loopback port, a real HTTP client (ureq),
//! a tiny run of every task; answers equal to the library's, the stream formats, the
//! refusals, the API key and a graceful stop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use seqrnn::lm::generate::Decoding;
use seqrnn::lm::Sampling;
use serde_json::{json, Value};

use crate::common::{bin, scratch};

/// A running `seqrnn serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    runs: Vec<(&'static str, PathBuf)>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves a tiny run of every task, each under its task's name, with `extra` flags.
fn start(name: &str, extra: &[&str]) -> Server {
    let dir = scratch(name);
    let runs = seqrnn::tasks::tiny::all(&dir).expect("tiny runs");
    let mut cmd = bin();
    cmd.args(["serve", "--port", "0"]);
    if !extra.contains(&"--threads") {
        cmd.args(["--threads", "1"]);
    }
    for (task, path) in &runs {
        cmd.arg("--model").arg(format!("{task}={}", path.display()));
    }
    let mut child = cmd
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start seqrnn serve");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, url, runs }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `(status, body)` of a request; `body` JSON when it parses.
fn call(req: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut r = req.expect("an answer");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().expect("a body"))
}

impl Server {
    fn get(&self, path: &str) -> (u16, String) {
        call(agent().get(format!("{}{path}", self.url)).call())
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, text) = self.post_raw(path, "application/json", body.to_string().into_bytes());
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn post_raw(&self, path: &str, ctype: &str, body: Vec<u8>) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        call(agent().post(url).header("Content-Type", ctype).send(body))
    }

    fn run(&self, task: &str) -> &Path {
        &self.runs.iter().find(|(t, _)| *t == task).expect("a run").1
    }
}

/// The events of a server-sent-event stream, as their `data` lines.
fn events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(String::from)
        .collect()
}

#[test]
fn every_route_answers_what_the_library_answers() {
    let s = start("serve-routes", &[]);
    assert_eq!(s.get("/health"), (200, r#"{"status":"ok"}"#.into()));
    let (status, models) = s.get("/v1/models");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["models"].as_array().unwrap().len(), 7);
    assert_eq!(models["models"][0], json!({"name": "lm", "task": "lm"}));

    // Generation: the library's continuation for the same seed.
    let lm = seqrnn::lm::Trained::load(s.run("lm")).unwrap();
    let sampling = Sampling {
        decoding: Decoding::default(),
        seed: 7,
    };
    let ids = lm.encode("the company").unwrap().ids;
    let want = lm.decode(&lm.generate_ids(&ids, 12, &sampling).unwrap());
    let req = json!({"prompt": "the company", "max_tokens": 12, "seed": 7});
    let (status, got) = s.post("/v1/models/lm/generate", &req);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, json!({"text": want, "tokens": 12}));
    // Streamed: one event a token, pieces joining to the same text, details at the end.
    let mut streamed = req.clone();
    streamed["stream"] = json!(true);
    let (status, text) = s.post_raw(
        "/v1/models/lm/generate",
        "application/json",
        streamed.to_string().into_bytes(),
    );
    assert_eq!(status, 200);
    let evs: Vec<Value> = events(&text)
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(evs.len(), 12);
    let joined: String = evs
        .iter()
        .map(|e| e["token"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, want);
    assert!(evs[..11].iter().all(|e| e["generated_text"].is_null()));
    assert_eq!(evs[11]["generated_text"], json!(want));
    assert_eq!(
        evs[11]["details"],
        json!({"finish_reason": "length", "generated_tokens": 12})
    );
    // OpenAI's completions, whole and streamed.
    let oa = json!({"model": "lm", "prompt": "the company", "max_tokens": 12, "seed": 7});
    let (status, got) = s.post("/v1/completions", &oa);
    assert_eq!(status, 200);
    assert_eq!(got["choices"][0]["text"], json!(want));
    assert_eq!(got["usage"]["completion_tokens"], json!(12));
    let mut oa_stream = oa.clone();
    oa_stream["stream"] = json!(true);
    let (_, text) = s.post_raw(
        "/v1/completions",
        "application/json",
        oa_stream.to_string().into_bytes(),
    );
    let evs = events(&text);
    assert_eq!(evs.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let joined: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, want);
    assert_eq!(chunks[11]["choices"][0]["finish_reason"], json!("length"));
    // The last-token model generates too.
    let (status, got) = s.post(
        "/v1/models/last-token/generate",
        &json!({"prompt": "the", "max_tokens": 3, "seed": 1}),
    );
    assert_eq!((status, got["tokens"].clone()), (200, json!(3)));

    // Translation, tagging, classification.
    let tr = seqrnn::translate::Trained::load(s.run("translate")).unwrap();
    let mut decode = tr.config.train.decode;
    decode.beam = 2;
    let want = tr
        .translate(&["ein hund", "eine katze"], Some(decode))
        .unwrap();
    let (status, got) = s.post(
        "/v1/models/translate/translate",
        &json!({"inputs": ["ein hund", "eine katze"], "beam": 2}),
    );
    assert_eq!((status, got), (200, json!({ "outputs": want })));
    let tagger = seqrnn::tag::Trained::load(s.run("tag")).unwrap();
    let want = tagger
        .tag(&["John lives in Paris", "Mary saw John"])
        .unwrap();
    let inputs = json!({"inputs": ["John lives in Paris", ["Mary", "saw", "John"]]});
    assert_eq!(
        s.post("/v1/models/tag/tag", &inputs),
        (200, json!({ "labels": want }))
    );
    let clf = seqrnn::classify::Trained::load(s.run("classify")).unwrap();
    let want = clf.predict(&["a gripping film"]).unwrap();
    let (status, got) = s.post(
        "/v1/models/classify/classify",
        &json!({"inputs": ["a gripping film"]}),
    );
    assert_eq!(status, 200);
    let p = &got["predictions"][0];
    assert_eq!(p["label"], json!(want[0].label));
    for (label, q) in clf.labels.tokens().iter().zip(&want[0].probabilities) {
        assert_eq!(p["probabilities"][label].as_f64(), Some(f64::from(*q)));
    }

    // Forecasting: rows as JSON, or the CSV itself.
    let fc = seqrnn::forecast::Trained::load(s.run("forecast")).unwrap();
    let table = seqrnn::tasks::tiny::load_table().unwrap();
    let want = fc.predict(&table).unwrap();
    let rows: Vec<Value> = table.values.iter().map(|v| json!([v])).collect();
    let (status, got) = s.post("/v1/models/forecast/forecast", &json!({ "rows": rows }));
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["forecast"], json!(want.values));
    assert_eq!(got["columns"], json!(["load"]));
    let mut csv = String::from("date,load\n");
    for (r, v) in table.values.iter().enumerate() {
        csv += &format!("d{r},{v}\n");
    }
    let (status, got) = s.post_raw("/v1/models/forecast/forecast", "text/csv", csv.into_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&got).unwrap()["forecast"],
        json!(want.values)
    );

    // Speech: a WAV body.
    let rec = seqrnn::speech::Trained::load(s.run("speech")).unwrap();
    let rate = rec.config.data.features.sample_rate;
    let samples = seqrnn::tasks::tiny::tones(&["lo", "hi"], 3);
    let want = rec.transcribe(&[&samples]).unwrap();
    let (status, got) = s.post_raw(
        "/v1/models/speech/transcribe",
        "audio/wav",
        wav(&samples, rate),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        serde_json::from_str::<Value>(&got).unwrap(),
        json!({"text": want[0]})
    );

    // The metrics count what was served.
    let (status, metrics) = s.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics
        .contains("seqrnn_requests_total{route=\"/v1/models/{name}/{action}\",status=\"200\"}"));
    assert!(metrics.contains("seqrnn_generated_tokens_total"));
}

/// 32-bit float mono WAV bytes.
fn wav(samples: &[f32], rate: u32) -> Vec<u8> {
    let data = (samples.len() * 4) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 4).to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Concurrent generations share the model's batch, and each one's text is the library's for
/// its seed alone: whoever else was in the batch changes nothing.
#[test]
fn batched_generations_equal_each_one_alone() {
    let s = start("serve-batch", &["--max-batch", "5", "--threads", "2"]);
    let lm = seqrnn::lm::Trained::load(s.run("lm")).unwrap();
    let requests: Vec<(String, usize, Decoding, u64)> = (0..12u64)
        .map(|i| {
            let prompt = ["the", "the company", "", "a new"][i as usize % 4].to_string();
            let decoding = match i % 3 {
                0 => Decoding::Greedy,
                1 => Decoding::default(),
                _ => Decoding::Sample {
                    temperature: 0.7,
                    top_k: Some(5),
                    top_p: Some(0.9),
                },
            };
            (prompt, 150 + 37 * i as usize, decoding, 100 + i)
        })
        .collect();
    let start = std::sync::Barrier::new(requests.len());
    let answers: Vec<Value> = std::thread::scope(|sc| {
        let handles: Vec<_> = requests
            .iter()
            .map(|(prompt, n, d, seed)| {
                let (s, start) = (&s, &start);
                sc.spawn(move || {
                    let mut req = json!({"prompt": prompt, "max_tokens": n, "seed": seed});
                    match d {
                        Decoding::Greedy => req["temperature"] = json!(0.0),
                        Decoding::Sample {
                            temperature,
                            top_k,
                            top_p,
                        } => {
                            req["temperature"] = json!(temperature);
                            req["top_k"] = json!(top_k);
                            req["top_p"] = json!(top_p);
                        }
                    }
                    start.wait();
                    let (status, got) = s.post("/v1/models/lm/generate", &req);
                    assert_eq!(status, 200, "{got}");
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((prompt, n, decoding, seed), got) in requests.iter().zip(&answers) {
        let ids = lm.encode(prompt).unwrap().ids;
        let sampling = Sampling {
            decoding: *decoding,
            seed: *seed,
        };
        let want = lm.decode(&lm.generate_ids(&ids, *n, &sampling).unwrap());
        assert_eq!(got, &json!({"text": want, "tokens": n}), "seed {seed}");
    }
    // Steps did run several generations together, never more than --max-batch.
    let (_, metrics) = s.get("/metrics");
    let bucket = |le: &str| -> f64 {
        let key = format!("seqrnn_generation_batch_size_bucket{{le=\"{le}\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&key));
        line.and_then(|l| l[key.len()..].trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {metrics}"))
    };
    assert!(
        bucket("1.0") < bucket("4.0"),
        "no step ran two or more rows"
    );
    assert_eq!(bucket("8.0"), bucket("+Inf"), "a step ran more than 8 rows");
}

/// Concurrent forecasting, translation, classification, tagging and transcription requests are
/// computed in shared micro-batches, and each answer is the library's for that request alone.
#[test]
fn micro_batched_answers_equal_each_request_alone() {
    let s = start(
        "serve-gather",
        &[
            "--max-batch",
            "16",
            "--batch-window-ms",
            "20",
            "--threads",
            "2",
        ],
    );
    let clf = seqrnn::classify::Trained::load(s.run("classify")).unwrap();
    let texts = [
        "a gripping film",
        "dull and far too long",
        "film",
        "far too gripping and dull and a film that is long , long , long",
    ];
    let tagger = seqrnn::tag::Trained::load(s.run("tag")).unwrap();
    let sentences = [
        "John lives in Paris",
        "Paris",
        "the company said John met Mary",
    ];
    let speech = seqrnn::speech::Trained::load(s.run("speech")).unwrap();
    let rate = speech.config.data.features.sample_rate;
    let good = seqrnn::tasks::tiny::tones(&["lo", "hi"], 3);
    let want = speech.transcribe(&[&good]).unwrap().pop().unwrap();
    let good = wav(&good, rate);
    let tr = seqrnn::translate::Trained::load(s.run("translate")).unwrap();
    let fc = seqrnn::forecast::Trained::load(s.run("forecast")).unwrap();
    let table = seqrnn::tasks::tiny::load_table().unwrap();
    let n = 12;
    let start = std::sync::Barrier::new(2 * n + 8);
    std::thread::scope(|sc| {
        let mut handles = Vec::new();
        for i in 0..n {
            let (s, start, clf, tagger) = (&s, &start, &clf, &tagger);
            handles.push(sc.spawn(move || {
                let text = texts[i % texts.len()];
                start.wait();
                let (status, got) =
                    s.post("/v1/models/classify/classify", &json!({"inputs": [text]}));
                assert_eq!(status, 200, "{got}");
                let p = &clf.predict(&[text]).unwrap()[0];
                assert_eq!(got["predictions"][0]["label"], json!(p.label), "{text}");
                for (label, q) in clf.labels.tokens().iter().zip(&p.probabilities) {
                    let served = got["predictions"][0]["probabilities"][label].as_f64();
                    assert_eq!(served, Some(f64::from(*q)), "{text}: {label}");
                }
            }));
            handles.push(sc.spawn(move || {
                let sentence = sentences[i % sentences.len()];
                start.wait();
                let (status, got) = s.post("/v1/models/tag/tag", &json!({"inputs": [sentence]}));
                assert_eq!(status, 200, "{got}");
                assert_eq!(got["labels"][0], json!(tagger.tag(&[sentence]).unwrap()[0]));
            }));
        }
        // Translations, with the run's beam and with beam 1, in the same moment.
        for (i, src) in ["ein haus", "das haus ist klein", "ein"].iter().enumerate() {
            let (s, start, tr) = (&s, &start, &tr);
            handles.push(sc.spawn(move || {
                start.wait();
                let beam = (i == 1).then_some(1);
                let body = match beam {
                    Some(b) => json!({"inputs": [src], "beam": b}),
                    None => json!({"inputs": [src]}),
                };
                let (status, got) = s.post("/v1/models/translate/translate", &body);
                assert_eq!(status, 200, "{got}");
                let mut decode = tr.config.train.decode;
                if let Some(b) = beam {
                    decode.beam = b;
                }
                let want = tr.translate(&[src], Some(decode)).unwrap();
                assert_eq!(got["outputs"], json!(want), "{src}");
            }));
        }
        // Forecasts from tables of different lengths, in the same moment.
        for cut in [0usize, 3, 7, 11] {
            let (s, start, fc, table) = (&s, &start, &fc, &table);
            handles.push(sc.spawn(move || {
                let n = (table.rows - cut).max(fc.model.config().lookback);
                let mut csv = String::from("load\n");
                for v in &table.values[..n] {
                    csv += &format!("{v}\n");
                }
                let part = seqrnn::data::table::Table::parse(&csv, Path::new("t")).unwrap();
                let want = fc.predict(&part).unwrap();
                let rows: Vec<Value> = table.values[..n].iter().map(|v| json!([v])).collect();
                start.wait();
                let (status, got) =
                    s.post("/v1/models/forecast/forecast", &json!({ "rows": rows }));
                assert_eq!(status, 200, "{got}");
                assert_eq!(got["forecast"], json!(want.values), "{n} rows");
            }));
        }
        // A recording, in the same moment.
        let (good, want, s, start) = (&good, &want, &s, &start);
        let said = sc.spawn(move || {
            start.wait();
            s.post_raw("/v1/models/speech/transcribe", "audio/wav", good.clone())
        });
        for h in handles {
            h.join().unwrap();
        }
        let (status, got) = said.join().unwrap();
        assert_eq!((status, got), (200, json!({ "text": want }).to_string()));
    });
    let (_, metrics) = s.get("/metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("seqrnn_batch_size_bucket{le=\"1.0\"}"))
        .expect("the batch-size histogram");
    let ones: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let count: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("seqrnn_batch_size_count "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        ones < count,
        "no micro-batch held two or more inputs:\n{metrics}"
    );
}

#[test]
fn refusals_are_json_errors_with_their_status() {
    let s = start("serve-refusals", &["--max-tokens", "50"]);
    let err = |body: &Value| body["error"].clone();
    let gen = "/v1/models/lm/generate";
    let (st, body) = s.post_raw(gen, "application/json", b"{\"prompt\": ".to_vec());
    assert_eq!(st, 400);
    assert!(body.contains("not valid JSON"), "{body}");
    let cases = [
        (gen, json!({"prompt": 3}), 400, Some("prompt")),
        (gen, json!({"prompt": "a", "bogus": 1}), 400, Some("bogus")),
        (gen, json!({"max_tokens": 3}), 400, Some("prompt")),
        (
            gen,
            json!({"prompt": "a", "max_tokens": 51}),
            400,
            Some("max_tokens"),
        ),
        (
            gen,
            json!({"prompt": "a", "temperature": -1}),
            400,
            Some("temperature"),
        ),
        (
            gen,
            json!({"prompt": "a", "top_p": 1.5}),
            400,
            Some("top_p"),
        ),
        (gen, json!({"prompt": "a", "top_k": 0}), 400, Some("top_k")),
        ("/v1/models/nope/generate", json!({}), 404, None),
        ("/v1/models/lm/fly", json!({}), 404, None),
        ("/v2/anything", json!({}), 404, None),
        (
            "/v1/models/lm/classify",
            json!({"inputs": ["a"]}),
            400,
            None,
        ),
        (
            "/v1/models/classify/classify",
            json!({"inputs": "a"}),
            400,
            Some("inputs"),
        ),
        (
            "/v1/models/tag/tag",
            json!({"inputs": [3]}),
            400,
            Some("inputs"),
        ),
        (
            "/v1/models/forecast/forecast",
            json!({"rows": [[1.0, 2.0]]}),
            400,
            Some("rows"),
        ),
        (
            "/v1/models/forecast/forecast",
            json!({"rows": [[1.0]]}),
            400,
            Some("rows"),
        ),
        (
            "/v1/completions",
            json!({"model": "nope"}),
            404,
            Some("model"),
        ),
    ];
    for (path, body, status, field) in cases {
        let (st, got) = s.post(path, &body);
        assert_eq!(st, status, "{path} {body}: {got}");
        let e = err(&got);
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{got}"
        );
        assert_eq!(e["field"], json!(field), "{path} {body}: {got}");
    }
    // A body over 1 MiB.
    let big = format!("{{\"prompt\": \"{}\"}}", "a ".repeat(600_000));
    let (st, got) = s.post_raw(gen, "application/json", big.into_bytes());
    assert_eq!(st, 413, "{got}");
    // Not a WAV file.
    let (st, got) = s.post_raw(
        "/v1/models/speech/transcribe",
        "audio/wav",
        b"RIFF....".to_vec(),
    );
    assert_eq!(st, 400, "{got}");
    // The server is still up.
    assert_eq!(s.get("/health").0, 200);
}

#[test]
fn the_api_key_guards_every_route_but_health() {
    let s = start("serve-key", &["--api-key", "sesame"]);
    assert_eq!(s.get("/health").0, 200);
    assert_eq!(s.get("/v1/models").0, 401);
    assert_eq!(s.get("/metrics").0, 401);
    let url = format!("{}/v1/models", s.url);
    let with = |key: &str| call(agent().get(&url).header("Authorization", key).call()).0;
    assert_eq!(with("Bearer wrong"), 401);
    assert_eq!(with("sesame"), 401);
    assert_eq!(with("Bearer sesame"), 200);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut s = start("serve-stop", &[]);
    assert_eq!(s.get("/health").0, 200);
    let pid = s.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = s.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_settings_are_refused_before_serving() {
    let out = bin()
        .args(["serve", "--model", "lm", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected NAME=RUN"));
    let out = bin()
        .args(["serve", "--model", "a=/no/such/run", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model a:") && err.contains("/no/such/run"),
        "{err}"
    );
    let dir = scratch("serve-twice");
    let run = seqrnn::tasks::tiny::lm(&dir).unwrap();
    let m = format!("x={}", run.display());
    let out = bin()
        .args(["serve", "--model", &m, "--model", &m, "--port", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"));
}

#[test]
fn a_full_queue_is_503_a_slow_answer_504_and_a_client_gone_frees_its_place() {
    let s = start(
        "serve-busy",
        &[
            "--max-queue",
            "1",
            "--max-tokens",
            "2000000",
            "--timeout-s",
            "0.05",
        ],
    );
    let gen = format!("{}/v1/models/lm/generate", s.url);
    // A long stream whose reader does not read: the generation waits on it, holding the one
    // place of the queue.
    let long = json!({"prompt": "the", "max_tokens": 2_000_000, "seed": 1, "stream": true});
    let held = agent()
        .post(&gen)
        .header("Content-Type", "application/json")
        .send(long.to_string())
        .expect("the stream starts");
    assert_eq!(held.status().as_u16(), 200);
    let short = json!({"prompt": "the", "max_tokens": 2, "seed": 1});
    let mut busy = agent()
        .post(&gen)
        .header("Content-Type", "application/json")
        .send(short.to_string())
        .expect("an answer");
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(
        busy.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = serde_json::from_str(&busy.body_mut().read_to_string().unwrap()).unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("busy"));
    // The reader goes away: the generation stops at its next token and frees the place.
    drop(held);
    let freed = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(25));
        s.post("/v1/models/lm/generate", &short).0 == 200
    });
    assert!(freed, "the place was not freed");
    // A generation longer than --timeout-s: 504.
    let (st, got) = s.post(
        "/v1/models/lm/generate",
        &json!({"prompt": "the", "max_tokens": 2_000_000, "seed": 1}),
    );
    assert_eq!(st, 504, "{got}");
    assert!(got["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no answer within"));
}
