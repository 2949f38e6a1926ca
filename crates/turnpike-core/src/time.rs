//! Timestamps as Kong stores them: integer seconds, or float seconds with millisecond precision.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Unix time in whole seconds (`auto_timestamp_s`).
pub fn now_s() -> i64 {
    since_epoch().as_secs() as i64
}

/// Unix time in seconds with millisecond precision (`auto_timestamp_ms`, used by targets).
pub fn now_ms() -> f64 {
    let ms = since_epoch().as_millis() as f64;
    ms / 1000.0
}
