//! A small HTTP/1.1 client for tests.

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::api::escape_uri;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// An HTTP client bound to a base URL (`http://127.0.0.1:port`).
#[derive(Clone)]
pub struct Client {
    base: String,
    inner: HyperClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// An `application/x-www-form-urlencoded` body: `k=v` pairs (keys may repeat), each side
/// encoded by [`escape_uri`], joined by `&`.
pub fn form_urlencode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape_uri(k), escape_uri(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A `multipart/form-data` body with `boundary`; each part is (name, content-type or "",
/// value).
pub fn multipart_body(boundary: &str, parts: &[(&str, &str, &str)]) -> String {
    let mut body = String::new();
    for (name, ct, value) in parts {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n"
        ));
        if !ct.is_empty() {
            body.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        body.push_str("\r\n");
        body.push_str(value);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with raw headers and body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let method = Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut req = Request::builder().method(method).uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).expect("valid request");
        let res = self.inner.request(req).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("response body").to_bytes();
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], Bytes::new()).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, &[], Bytes::new()).await
    }

    /// Sends `body` as JSON with `method`.
    pub async fn send_json(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.request(
            method,
            path,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send_json("POST", path, body).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send_json("PUT", path, body).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Resp {
        self.send_json("PATCH", path, body).await
    }

    /// Sends `application/x-www-form-urlencoded` pairs (keys may repeat) with `method`.
    pub async fn send_form(&self, method: &str, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.request(
            method,
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            form_urlencode(pairs),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send_form("POST", path, pairs).await
    }

    pub async fn patch_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send_form("PATCH", path, pairs).await
    }

    pub async fn put_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send_form("PUT", path, pairs).await
    }

    /// Sends `multipart/form-data`; each part is (name, content-type or "", value).
    pub async fn send_multipart(
        &self,
        method: &str,
        path: &str,
        parts: &[(&str, &str, &str)],
    ) -> Resp {
        let boundary = "turnpike-test-boundary-7MA4YWxkTrZu0gW";
        let body = multipart_body(boundary, parts);
        let ct = format!("multipart/form-data; boundary={boundary}");
        self.request(method, path, &[("content-type", ct.as_str())], body).await
    }
}
