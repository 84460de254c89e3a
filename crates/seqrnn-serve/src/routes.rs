//! The routes: one handler each, calling what the task's `Trained` offers on the server's
//! rayon pool, through a queue of `max_queue` places and a timeout: generation through its
//! model's batch (`batcher`), the other tasks through their model's micro-batches (`gather`).

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Path as UrlPath, Request, State as Shared};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use seqrnn::lm::generate::Decoding;
use seqrnn::lm::Sampling;
use seqrnn::Loaded;
use serde_json::{json, Value};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt as _;

use crate::api::{ApiError, ApiResult, Fields};
use crate::batcher::{self, Batcher, Job, Piece};
use crate::gather::{Gather, GatherConfig};
use crate::metrics::{Metrics, Route, RouteStatus};
use crate::{ServeConfig, ServeError};

/// What every handler shares.
pub struct State {
    models: Vec<(String, Arc<Loaded>)>,
    /// The batch of each every-step language model, by name.
    batchers: Vec<(String, Batcher)>,
    /// The micro-batches of the classifiers, taggers and speech models, by name.
    gathers: Vec<(String, Gathered)>,
    api_key: Option<String>,
    pool: Arc<rayon::ThreadPool>,
    queue: Arc<Semaphore>,
    max_tokens: usize,
    timeout: Duration,
    body_limit: usize,
    wav_limit: usize,
    metrics: Metrics,
}

impl State {
    /// Loads every run of `config` once.
    pub fn load(config: &ServeConfig) -> Result<State, ServeError> {
        let models: Vec<(String, Arc<Loaded>)> = config
            .models
            .iter()
            .map(|(name, path)| {
                seqrnn::load(path)
                    .map(|m| (name.clone(), Arc::new(m)))
                    .map_err(|source| ServeError::Load {
                        name: name.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("seqrnn-serve-{i}"))
            .build()
            .map_err(|e| ServeError::Config(format!("could not start the threads: {e}")))?;
        let pool = Arc::new(pool);
        let metrics = Metrics::new();
        let mut batchers = Vec::new();
        for (name, model) in &models {
            let started = Batcher::start(
                name,
                model,
                &pool,
                config.max_batch,
                metrics.generation_batch.clone(),
            )
            .map_err(|source| ServeError::Io {
                what: format!("could not start the batch of model {name}"),
                source,
            })?;
            if let Some(b) = started {
                batchers.push((name.to_string(), b));
            }
        }
        let gather = GatherConfig {
            max_inputs: config.max_batch,
            window: config.batch_window,
            batch_size: metrics.batch_size.clone(),
        };
        let mut gathers = Vec::new();
        for (name, model) in &models {
            let started =
                Gathered::start(name, model, &pool, &gather).map_err(|source| ServeError::Io {
                    what: format!("could not start the batch of model {name}"),
                    source,
                })?;
            if let Some(g) = started {
                gathers.push((name.to_string(), g));
            }
        }
        Ok(State {
            models,
            batchers,
            gathers,
            api_key: config.api_key.clone(),
            pool,
            queue: Arc::new(Semaphore::new(config.max_queue)),
            max_tokens: config.max_tokens,
            timeout: config.timeout,
            body_limit: config.body_limit,
            wav_limit: config.wav_limit,
            metrics,
        })
    }

    fn model(&self, name: &str) -> ApiResult<Arc<Loaded>> {
        self.models
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| Arc::clone(m))
            .ok_or_else(|| {
                let names: Vec<&str> = self.models.iter().map(|(n, _)| n.as_str()).collect();
                ApiError::status(
                    StatusCode::NOT_FOUND,
                    format!("no model named `{name}` (serving: {})", names.join(", ")),
                )
            })
    }

    /// A place in the queue (counted in the queue-depth gauge while it is held), or 503.
    fn place(&self) -> ApiResult<Place> {
        let permit = Arc::clone(&self.queue).try_acquire_owned().map_err(|_| {
            ApiError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy (its queue is full): retry later",
            )
        })?;
        let gauge = self.metrics.queue_depth.clone();
        gauge.inc();
        Ok(Place {
            _permit: permit,
            gauge,
        })
    }

    /// The micro-batch of model `name`.
    fn gathered(&self, name: &str) -> Option<&Gathered> {
        self.gathers.iter().find(|(n, _)| n == name).map(|(_, g)| g)
    }

    /// Computes `inputs` in `g`'s next micro-batch with a place in the queue; 504 past the
    /// timeout.
    async fn in_batch<I: Clone + Send + 'static, O: Send + 'static>(
        &self,
        g: &Gather<I, O>,
        inputs: Vec<I>,
    ) -> ApiResult<Vec<O>> {
        let place = self.place()?;
        match tokio::time::timeout(self.timeout, g.call(inputs, Box::new(place))).await {
            Ok(out) => out,
            Err(_) => Err(ApiError::status(
                StatusCode::GATEWAY_TIMEOUT,
                format!("no answer within {} s", self.timeout.as_secs_f64()),
            )),
        }
    }

    /// Runs `f` on the pool, holding `place` until it ends; a panic ends only `f`.
    fn spawn(self: &Arc<Self>, place: Place, f: impl FnOnce() + Send + 'static) {
        self.pool.spawn(move || {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(f));
            drop(place);
        });
    }
}

/// The micro-batch of a model of a task answered in one call.
enum Gathered {
    Forecast(Gather<seqrnn::data::table::Table, Value>),
    Translate(Gather<(String, Option<usize>), String>),
    Classify(Gather<String, Value>),
    Tag(Gather<Vec<String>, Vec<String>>),
    Speech(Gather<seqrnn::data::audio::Audio, String>),
}

impl Gathered {
    /// The micro-batch thread of `model`; `None` for the other tasks.
    fn start(
        name: &str,
        model: &Arc<Loaded>,
        pool: &Arc<rayon::ThreadPool>,
        c: &GatherConfig,
    ) -> std::io::Result<Option<Gathered>> {
        let c = c.clone();
        Ok(Some(if model.as_forecast().is_some() {
            Gathered::Forecast(Gather::start(name, model, pool, c, forecast)?)
        } else if model.as_translate().is_some() {
            Gathered::Translate(Gather::start(name, model, pool, c, translate)?)
        } else if model.as_classify().is_some() {
            Gathered::Classify(Gather::start(name, model, pool, c, classify)?)
        } else if model.as_tag().is_some() {
            Gathered::Tag(Gather::start(name, model, pool, c, tag)?)
        } else if model.as_speech().is_some() {
            Gathered::Speech(Gather::start(name, model, pool, c, transcribe)?)
        } else {
            return Ok(None);
        }))
    }
}

/// A forecaster's answers for `tables`, as the route gives them.
fn forecast(model: &Loaded, tables: Vec<seqrnn::data::table::Table>) -> ApiResult<Vec<Value>> {
    let m = model
        .as_forecast()
        .ok_or_else(|| ApiError::bad(None, "not a forecaster"))?;
    let all = m
        .predict_many(&tables)
        .map_err(|e| ApiError::library(Some("rows"), e))?;
    Ok(all
        .into_iter()
        .map(|f| json!({"forecast": f.values, "columns": f.columns}))
        .collect())
}

/// A translation model's outputs for `(sentence, beam)` pairs: one call a beam width (the run's
/// own when `None`), answers in the inputs' order.
fn translate(model: &Loaded, inputs: Vec<(String, Option<usize>)>) -> ApiResult<Vec<String>> {
    let m = model
        .as_translate()
        .ok_or_else(|| ApiError::bad(None, "not a translation model"))?;
    let mut out = vec![String::new(); inputs.len()];
    let mut beams: Vec<Option<usize>> = inputs.iter().map(|i| i.1).collect();
    beams.sort_unstable();
    beams.dedup();
    for beam in beams {
        let at: Vec<usize> = (0..inputs.len()).filter(|&i| inputs[i].1 == beam).collect();
        let mut decode = m.config.train.decode;
        if let Some(b) = beam {
            decode.beam = b;
        }
        let refs: Vec<&str> = at.iter().map(|&i| inputs[i].0.as_str()).collect();
        let texts = m
            .translate(&refs, Some(decode))
            .map_err(|e| ApiError::library(Some("inputs"), e))?;
        for (i, t) in at.into_iter().zip(texts) {
            out[i] = t;
        }
    }
    Ok(out)
}

/// A classifier's predictions of `texts`, as the route answers them.
fn classify(model: &Loaded, texts: Vec<String>) -> ApiResult<Vec<Value>> {
    let m = model
        .as_classify()
        .ok_or_else(|| ApiError::bad(None, "not a classifier"))?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let labels = m.labels.tokens();
    let out = m
        .predict(&refs)
        .map_err(|e| ApiError::library(Some("inputs"), e))?;
    Ok(out
        .into_iter()
        .map(|p| {
            let probs: serde_json::Map<String, Value> = labels
                .iter()
                .zip(&p.probabilities)
                .map(|(l, q)| (l.clone(), json!(q)))
                .collect();
            json!({"label": p.label, "probabilities": probs})
        })
        .collect())
}

/// A tagger's labels of `sentences`.
fn tag(model: &Loaded, sentences: Vec<Vec<String>>) -> ApiResult<Vec<Vec<String>>> {
    let m = model
        .as_tag()
        .ok_or_else(|| ApiError::bad(None, "not a tagger"))?;
    m.tag(&sentences)
        .map_err(|e| ApiError::library(Some("inputs"), e))
}

/// A speech model's transcripts of `recordings`, each resampled to the model's rate first.
fn transcribe(
    model: &Loaded,
    recordings: Vec<seqrnn::data::audio::Audio>,
) -> ApiResult<Vec<String>> {
    let m = model
        .as_speech()
        .ok_or_else(|| ApiError::bad(None, "not a speech model"))?;
    let rate = m.config.data.features.sample_rate;
    let samples = recordings
        .into_iter()
        .map(|a| match a.rate == rate {
            true => Ok(a.samples),
            false => seqrnn::data::audio::resample(&a, rate),
        })
        .collect::<seqrnn::Result<Vec<Vec<f32>>>>()
        .map_err(|e| ApiError::library(None, e))?;
    let refs: Vec<&[f32]> = samples.iter().map(Vec::as_slice).collect();
    m.transcribe(&refs).map_err(|e| ApiError::library(None, e))
}

/// A request's place in the queue, from its start to its last token.
struct Place {
    _permit: OwnedSemaphorePermit,
    gauge: prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The server's routes over `state`.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/models/{name}/{action}", post(model_action))
        .route("/v1/completions", post(completions))
        .fallback(|body: Body| async {
            // Read (up to the limit), so that the connection is ready for the next request.
            let _ = to_bytes(body, 1 << 20).await;
            ApiError::status(StatusCode::NOT_FOUND, "no such route (see GET /v1/models)")
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// Every request: the API key (all routes but `/health`), then its count and latency.
async fn guard(Shared(s): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_string();
    let authorized = match &s.api_key {
        None => true,
        Some(key) => {
            route == "/health"
                || req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .is_some_and(|k| k == key)
        }
    };
    let response = match authorized {
        true => next.run(req).await,
        false => {
            let _ = to_bytes(req.into_body(), s.body_limit).await;
            ApiError::status(
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key: send `Authorization: Bearer KEY`",
            )
            .into_response()
        }
    };
    let status = response.status().as_u16();
    s.metrics
        .requests
        .get_or_create(&RouteStatus {
            route: route.clone(),
            status,
        })
        .inc();
    s.metrics
        .latency
        .get_or_create(&Route { route })
        .observe(t0.elapsed().as_secs_f64());
    response
}

async fn metrics(Shared(s): Shared<Arc<State>>) -> Response {
    let ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, ctype)], s.metrics.render()).into_response()
}

async fn models(Shared(s): Shared<Arc<State>>) -> Json<Value> {
    let list: Vec<Value> = s
        .models
        .iter()
        .map(|(n, m)| json!({"name": n, "task": m.task()}))
        .collect();
    Json(json!({ "models": list }))
}

/// The body, at most `limit` bytes (413 beyond).
async fn read_body(body: Body, limit: usize) -> ApiResult<axum::body::Bytes> {
    to_bytes(body, limit).await.map_err(|_| {
        ApiError::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {limit} bytes"),
        )
    })
}

const ACTIONS: [&str; 6] = [
    "generate",
    "translate",
    "tag",
    "classify",
    "forecast",
    "transcribe",
];

async fn model_action(
    Shared(s): Shared<Arc<State>>,
    UrlPath((name, action)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let out = async {
        // The body is read first, so that a refusal leaves the connection ready for the next
        // request.
        let limit = match action.as_str() {
            "transcribe" => s.wav_limit,
            _ => s.body_limit,
        };
        let bytes = read_body(body, limit).await?;
        if !ACTIONS.contains(&action.as_str()) {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                format!(
                    "no route `{action}`: the routes of a model are {}",
                    ACTIONS.join(", ")
                ),
            ));
        }
        let model = s.model(&name)?;
        let ctx = Call {
            s: Arc::clone(&s),
            model,
            name,
        };
        match action.as_str() {
            "generate" => ctx.generate(&bytes, Format::Tgi).await,
            "translate" => ctx.translate(&bytes).await,
            "tag" => ctx.tag(&bytes).await,
            "classify" => ctx.classify(&bytes).await,
            "forecast" => ctx.forecast(&headers, &bytes).await,
            _ => ctx.transcribe(&bytes).await,
        }
    };
    out.await.unwrap_or_else(IntoResponse::into_response)
}

/// OpenAI's completions route: the model is named in the body.
async fn completions(Shared(s): Shared<Arc<State>>, body: Body) -> Response {
    let out = async {
        let bytes = read_body(body, s.body_limit).await?;
        let name = Fields::parse(&bytes)?.required_string("model")?;
        let model = s.model(&name).map_err(|mut e| {
            e.field = Some("model".into());
            e
        })?;
        let ctx = Call { s, model, name };
        ctx.generate(&bytes, Format::OpenAi).await
    };
    out.await.unwrap_or_else(IntoResponse::into_response)
}

/// How a generation is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// text-generation-inference's: `{"text", "tokens"}`, its stream events.
    Tgi,
    /// OpenAI's completions.
    OpenAi,
}

/// A request to one model.
struct Call {
    s: Arc<State>,
    model: Arc<Loaded>,
    name: String,
}

/// A language model of either kind, as generation sees it.
enum Lm<'a> {
    EveryStep(&'a seqrnn::lm::Trained),
    LastToken(&'a seqrnn::last_token::Trained),
}

impl<'a> Lm<'a> {
    fn of(m: &'a Loaded) -> Option<Lm<'a>> {
        match (m.as_lm(), m.as_last_token()) {
            (Some(lm), _) => Some(Lm::EveryStep(lm)),
            (_, Some(lm)) => Some(Lm::LastToken(lm)),
            _ => None,
        }
    }

    fn encode(&self, text: &str) -> seqrnn::Result<Vec<u32>> {
        Ok(match self {
            Lm::EveryStep(m) => m.encode(text)?.ids,
            Lm::LastToken(m) => m.encode(text)?.ids,
        })
    }

    fn decode(&self, ids: &[u32]) -> String {
        match self {
            Lm::EveryStep(m) => m.decode(ids),
            Lm::LastToken(m) => m.decode(ids),
        }
    }

    fn vocab(&self) -> &seqrnn::data::Vocab {
        match self {
            Lm::EveryStep(m) => &m.vocab,
            Lm::LastToken(m) => &m.vocab,
        }
    }

    fn generate(
        &self,
        ids: &[u32],
        n: usize,
        sampling: &Sampling,
        each: impl FnMut(u32) -> bool,
    ) -> seqrnn::Result<Vec<u32>> {
        match self {
            Lm::EveryStep(m) => m.generate_ids_each(ids, n, sampling, each),
            Lm::LastToken(m) => m.generate_ids_each(ids, n, sampling, each),
        }
    }

    /// The text token `id` adds after `prev` (the one before it, if any), so that the pieces
    /// of a continuation join to its text.
    fn piece(&self, prev: Option<u32>, id: u32) -> String {
        match prev {
            None => self.decode(&[id]),
            Some(p) => {
                let both = self.decode(&[p, id]);
                let before = self.decode(&[p]).len();
                both.get(before..).unwrap_or_default().to_string()
            }
        }
    }
}

/// A generation request's settings.
struct Generation {
    prompt: String,
    tokens: usize,
    sampling: Sampling,
    stream: bool,
}

impl Call {
    fn wrong_task(&self, route: &str, needs: &str) -> ApiError {
        let is = match self.model.task() {
            "lm" | "last-token" => "language model",
            "translate" => "translation model",
            "tag" => "tagger",
            "classify" => "classifier",
            "forecast" => "forecaster",
            "speech" => "speech recogniser",
            other => other,
        };
        ApiError::bad(
            None,
            format!("model `{}` is a {is}; /{route} needs {needs}", self.name),
        )
    }

    fn generation(&self, f: &mut Fields, format: Format) -> ApiResult<Generation> {
        let prompt = match format {
            Format::Tgi => f.required_string("prompt")?,
            Format::OpenAi => f.string("prompt")?.unwrap_or_default(),
        };
        let default_tokens = match format {
            Format::Tgi => 40,
            Format::OpenAi => 16,
        };
        let tokens = f.uint("max_tokens")?.unwrap_or(default_tokens);
        if tokens as usize > self.s.max_tokens {
            return Err(ApiError::bad(
                Some("max_tokens"),
                format!(
                    "`max_tokens` is {tokens}, over this server's {}",
                    self.s.max_tokens
                ),
            ));
        }
        let temperature = f.number("temperature")?.unwrap_or(1.0);
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(ApiError::bad(
                Some("temperature"),
                "`temperature` must be ≥ 0 (0: always the most probable token)",
            ));
        }
        let top_k = match format {
            Format::Tgi => f.uint("top_k")?,
            Format::OpenAi => None,
        };
        if top_k == Some(0) {
            return Err(ApiError::bad(Some("top_k"), "`top_k` must be at least 1"));
        }
        let top_p = f.number("top_p")?;
        if top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return Err(ApiError::bad(Some("top_p"), "`top_p` must be in (0, 1]"));
        }
        let seed = f.uint("seed")?.unwrap_or_else(seqrnn::dropout::fresh_seed);
        let stream = f.boolean("stream")?;
        let decoding = match temperature == 0.0 {
            true => Decoding::Greedy,
            false => Decoding::Sample {
                temperature: temperature as f32,
                top_k: top_k.map(|k| k as usize),
                top_p: top_p.map(|p| p as f32),
            },
        };
        decoding
            .validate()
            .map_err(|e| ApiError::library(None, e))?;
        Ok(Generation {
            prompt,
            tokens: tokens as usize,
            sampling: Sampling { decoding, seed },
            stream,
        })
    }

    async fn generate(self, body: &[u8], format: Format) -> ApiResult<Response> {
        if Lm::of(&self.model).is_none() {
            return Err(self.wrong_task("generate", "a language model"));
        }
        let mut f = Fields::parse(body)?;
        if format == Format::OpenAi {
            let _ = f.string("model")?;
        }
        let g = self.generation(&mut f, format)?;
        f.done()?;
        let prompt_ids = {
            let lm = Lm::of(&self.model)
                .ok_or_else(|| self.wrong_task("generate", "a language model"))?;
            lm.encode(&g.prompt)
                .map_err(|e| ApiError::library(Some("prompt"), e))?
        };
        match g.stream {
            true => self.stream(prompt_ids, g, format),
            false => self.complete(prompt_ids, g, format).await,
        }
    }

    /// Starts a generation: in the model's running batch (an every-step language model) or
    /// alone on the pool (a last-token one). Its tokens arrive on the channel, which closes at
    /// its end; dropping the receiver stops it at the next step.
    fn start(&self, ids: Vec<u32>, g: &Generation) -> ApiResult<mpsc::Receiver<Piece>> {
        let place = self.s.place()?;
        let (out, rx) = batcher::channel();
        let batcher = self.s.batchers.iter().find(|(n, _)| *n == self.name);
        if let (Some((_, batcher)), Some(lm)) = (batcher, self.model.as_lm()) {
            let job = Job {
                prompt: lm.prompt_tokens(&ids),
                tokens: g.tokens,
                sampling: g.sampling,
                out,
                slot: Box::new(place),
            };
            return match batcher.submit(job) {
                Ok(()) => Ok(rx),
                Err(_) => Err(ApiError::status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the model's generation batch has stopped",
                )),
            };
        }
        let (model, n, sampling) = (Arc::clone(&self.model), g.tokens, g.sampling);
        self.s.spawn(place, move || {
            let Some(lm) = Lm::of(&model) else { return };
            let each = |id| out.blocking_send(Piece::Token(id)).is_ok();
            if let Err(e) = lm.generate(&ids, n, &sampling, each) {
                let _ = out.blocking_send(Piece::Failed(e.to_string()));
            }
        });
        Ok(rx)
    }

    /// A whole continuation in one answer (504 past the timeout, which also stops it).
    async fn complete(self, ids: Vec<u32>, g: Generation, format: Format) -> ApiResult<Response> {
        let n_prompt = ids.len();
        let mut rx = self.start(ids, &g)?;
        let collect = async {
            let mut out = Vec::with_capacity(g.tokens);
            while let Some(piece) = rx.recv().await {
                match piece {
                    Piece::Token(id) => out.push(id),
                    Piece::Failed(msg) => return Err(failed(msg)),
                }
            }
            match out.len() == g.tokens {
                true => Ok(out),
                false => Err(failed("it ended early".into())),
            }
        };
        let out = match tokio::time::timeout(self.s.timeout, collect).await {
            Ok(out) => out?,
            Err(_) => {
                return Err(ApiError::status(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no answer within {} s", self.s.timeout.as_secs_f64()),
                ))
            }
        };
        let lm = Lm::of(&self.model).ok_or_else(|| ApiError::bad(None, "not a language model"))?;
        let (text, tokens) = (lm.decode(&out), out.len());
        self.s.metrics.tokens.inc_by(tokens as u64);
        Ok(Json(match format {
            Format::Tgi => json!({"text": text, "tokens": tokens}),
            Format::OpenAi => openai_body(&self.name, &text, n_prompt, tokens),
        })
        .into_response())
    }

    /// A continuation as server-sent events, a token each; a client that goes away stops it
    /// at the next step.
    fn stream(self, ids: Vec<u32>, g: Generation, format: Format) -> ApiResult<Response> {
        let mut pieces = self.start(ids, &g)?;
        let (tx, rx) = mpsc::channel::<String>(64);
        tokio::spawn(async move {
            let Some(lm) = Lm::of(&self.model) else {
                return;
            };
            let (mut prev, mut done, mut text) = (None, 0usize, String::new());
            while let Some(piece) = pieces.recv().await {
                let id = match piece {
                    Piece::Token(id) => id,
                    Piece::Failed(msg) => {
                        let _ = tx.send(json!({"error": msg}).to_string()).await;
                        break;
                    }
                };
                let piece = lm.piece(prev, id);
                text.push_str(&piece);
                prev = Some(id);
                done += 1;
                self.s.metrics.tokens.inc();
                let last = done == g.tokens;
                let event = match format {
                    Format::Tgi => tgi_event(lm.vocab(), id, &piece, last.then_some((&text, done))),
                    Format::OpenAi => openai_chunk(&self.name, &piece, last),
                };
                if tx.send(event.to_string()).await.is_err() {
                    return;
                }
            }
            if g.tokens == 0 && format == Format::Tgi {
                let details = json!({"finish_reason": "length", "generated_tokens": 0});
                let end = json!({"token": null, "generated_text": "", "details": details});
                let _ = tx.send(end.to_string()).await;
            }
            if format == Format::OpenAi {
                let _ = tx.send("[DONE]".into()).await;
            }
        });
        let events = ReceiverStream::new(rx)
            .map(|data| Ok::<_, std::convert::Infallible>(Event::default().data(data)));
        Ok(Sse::new(events).into_response())
    }

    async fn translate(self, body: &[u8]) -> ApiResult<Response> {
        let Some(Gathered::Translate(g)) = self.s.gathered(&self.name) else {
            return Err(self.wrong_task("translate", "a translation model"));
        };
        let mut f = Fields::parse(body)?;
        let inputs = f.array("inputs", |v| v.as_str().map(String::from), "strings")?;
        let beam = f.uint("beam")?.map(|b| b as usize);
        f.done()?;
        let inputs = inputs.into_iter().map(|text| (text, beam)).collect();
        let outputs = self.s.in_batch(g, inputs).await?;
        Ok(Json(json!({ "outputs": outputs })).into_response())
    }

    async fn tag(self, body: &[u8]) -> ApiResult<Response> {
        let Some(Gathered::Tag(g)) = self.s.gathered(&self.name) else {
            return Err(self.wrong_task("tag", "a tagger"));
        };
        let mut f = Fields::parse(body)?;
        let sentences = f.array("inputs", words, "strings or arrays of strings")?;
        f.done()?;
        let labels = self.s.in_batch(g, sentences).await?;
        Ok(Json(json!({ "labels": labels })).into_response())
    }

    async fn classify(self, body: &[u8]) -> ApiResult<Response> {
        let Some(Gathered::Classify(g)) = self.s.gathered(&self.name) else {
            return Err(self.wrong_task("classify", "a classifier"));
        };
        let mut f = Fields::parse(body)?;
        let inputs = f.array("inputs", |v| v.as_str().map(String::from), "strings")?;
        f.done()?;
        let predictions = self.s.in_batch(g, inputs).await?;
        Ok(Json(json!({ "predictions": predictions })).into_response())
    }

    async fn forecast(self, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
        let (Some(Gathered::Forecast(g)), Some(fc)) =
            (self.s.gathered(&self.name), self.model.as_forecast())
        else {
            return Err(self.wrong_task("forecast", "a forecaster"));
        };
        let csv = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv"));
        let table = match csv {
            true => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| ApiError::bad(None, "the CSV body is not UTF-8"))?;
                seqrnn::data::table::Table::parse(text, Path::new("the request"))
                    .map_err(|e| ApiError::library(None, e))?
            }
            false => rows_table(body, &fc.config.data.columns.inputs)?,
        };
        let mut f = self.s.in_batch(g, vec![table]).await?;
        Ok(Json(f.pop().unwrap_or_default()).into_response())
    }

    async fn transcribe(self, body: &[u8]) -> ApiResult<Response> {
        let Some(Gathered::Speech(g)) = self.s.gathered(&self.name) else {
            return Err(self.wrong_task("transcribe", "a speech recogniser"));
        };
        let audio = seqrnn::data::audio::parse_wav(body, Path::new("the request"))
            .map_err(|e| ApiError::library(None, e))?;
        let mut text = self.s.in_batch(g, vec![audio]).await?;
        Ok(Json(json!({ "text": text.pop().unwrap_or_default() })).into_response())
    }
}

/// A sentence of a tagging request: a string split at white space, or an array of strings.
fn words(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(s.split_whitespace().map(String::from).collect()),
        Value::Array(a) => a.iter().map(|w| w.as_str().map(String::from)).collect(),
        _ => None,
    }
}

/// A forecasting request's `{"rows": [[number]]}` as a table of the model's input columns.
fn rows_table(body: &[u8], columns: &[String]) -> ApiResult<seqrnn::data::table::Table> {
    let mut f = Fields::parse(body)?;
    let rows = f.array(
        "rows",
        |r| {
            r.as_array()?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
        },
        &format!("arrays of {} numbers", columns.len()),
    )?;
    f.done()?;
    if let Some((i, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != columns.len())
    {
        return Err(ApiError::bad(
            Some("rows"),
            format!(
                "`rows[{i}]` has {} values; the model reads {} columns ({})",
                r.len(),
                columns.len(),
                columns.join(", ")
            ),
        ));
    }
    Ok(seqrnn::data::table::Table {
        path: "the request".into(),
        columns: columns.to_vec(),
        values: rows.concat(),
        text: Vec::new(),
        rows: rows.len(),
    })
}

/// One token's event in text-generation-inference's stream format; the last one (`end`: the
/// whole text and the token count) also carries `generated_text` and `details`.
fn tgi_event(
    vocab: &seqrnn::data::Vocab,
    id: u32,
    piece: &str,
    end: Option<(&String, usize)>,
) -> Value {
    let special = vocab
        .token(id)
        .is_some_and(|t| t == seqrnn::data::EOS || t == seqrnn::data::UNK);
    let token = json!({"id": id, "text": piece, "special": special});
    match end {
        None => json!({"token": token, "generated_text": null, "details": null}),
        Some((text, n)) => json!({
            "token": token,
            "generated_text": text,
            "details": {"finish_reason": "length", "generated_tokens": n},
        }),
    }
}

/// A generation that failed after it started.
fn failed(msg: String) -> ApiError {
    ApiError::status(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the generation failed: {msg}"),
    )
}

fn created() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn openai_body(model: &str, text: &str, prompt_tokens: usize, tokens: usize) -> Value {
    json!({
        "id": format!("cmpl-{}", seqrnn::dropout::fresh_seed()),
        "object": "text_completion",
        "created": created(),
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "length"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        },
    })
}

fn openai_chunk(model: &str, piece: &str, last: bool) -> Value {
    json!({
        "id": "cmpl-stream",
        "object": "text_completion",
        "created": created(),
        "model": model,
        "choices": [{
            "text": piece,
            "index": 0,
            "logprobs": null,
            "finish_reason": if last { json!("length") } else { Value::Null },
        }],
    })
}
