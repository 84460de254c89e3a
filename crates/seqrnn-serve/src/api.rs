//! The API's one error format, `{"error": {"message": str, "field": str or null}}` with its
//! status code, and the reading of JSON bodies field by field, so that each refusal names the
//! field it is about.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// A refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    /// 400: the request is wrong, about `field` if there is one.
    pub fn bad(field: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: field.map(String::from),
        }
    }

    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// The library refused the input: 400 (about `field`), its message.
    pub fn library(field: Option<&str>, e: seqrnn::Error) -> Self {
        ApiError::bad(field, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "field": self.field}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON object body, read field by field; [`Fields::done`] refuses fields nobody read.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// The body as a JSON object.
    pub fn parse(body: &[u8]) -> ApiResult<Fields> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Fields(m)),
            Ok(_) => Err(ApiError::bad(None, "the body must be a JSON object")),
            Err(e) => Err(ApiError::bad(
                None,
                format!("the body is not valid JSON: {e}"),
            )),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    fn wrong(name: &str, what: &str) -> ApiError {
        ApiError::bad(Some(name), format!("`{name}` must be {what}"))
    }

    pub fn string(&mut self, name: &str) -> ApiResult<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Self::wrong(name, "a string")),
        }
    }

    pub fn required_string(&mut self, name: &str) -> ApiResult<String> {
        self.string(name)?
            .ok_or_else(|| ApiError::bad(Some(name), format!("`{name}` is missing")))
    }

    pub fn uint(&mut self, name: &str) -> ApiResult<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| Self::wrong(name, "a non-negative integer")),
        }
    }

    pub fn number(&mut self, name: &str) -> ApiResult<Option<f64>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Self::wrong(name, "a number")),
        }
    }

    pub fn boolean(&mut self, name: &str) -> ApiResult<bool> {
        match self.take(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(Self::wrong(name, "true or false")),
        }
    }

    /// A required array, each item converted by `item` (given its index).
    pub fn array<T>(
        &mut self,
        name: &str,
        mut item: impl FnMut(&Value) -> Option<T>,
        what: &str,
    ) -> ApiResult<Vec<T>> {
        let Some(Value::Array(items)) = self.take(name) else {
            return Err(Self::wrong(name, &format!("an array of {what}")));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                item(v).ok_or_else(|| {
                    ApiError::bad(Some(name), format!("`{name}[{i}]` must be {what}"))
                })
            })
            .collect()
    }

    /// Refuses the fields no handler read.
    pub fn done(self) -> ApiResult<()> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::bad(Some(k), format!("unknown field `{k}`"))),
        }
    }
}
