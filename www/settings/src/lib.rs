//! The demo page's settings (last URL, connections, block size, worker),
//! checked here and remembered in `localStorage` with gloo-storage, so that a
//! reload or a browser restart shows the form as it was left.
//!
//! A stored record is outside input: another version of the page, or a user
//! in the dev tools, may have written anything there. Each field is taken
//! only if it is valid, else its default.

use gloo_storage::{LocalStorage, Storage};
use resumable_fetch_core::options;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

/// The `localStorage` key of the record.
const KEY: &str = "resumable-fetch-demo:settings";
// The library's own defaults and limits (the core owns them).
pub use resumable_fetch_core::options::{DEFAULT_CONNECTIONS, MAX_CONNECTIONS};
pub const DEFAULT_BLOCK_SIZE_MIB: u32 = (options::DEFAULT_BLOCK_SIZE >> 20) as u32;
pub const MAX_BLOCK_SIZE_MIB: u32 = (options::MAX_BLOCK_SIZE >> 20) as u32;

/// What the form holds, valid.
#[wasm_bindgen(getter_with_clone)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub url: String,
    pub connections: u32,
    #[wasm_bindgen(js_name = blockSizeMiB)]
    #[serde(rename = "blockSizeMiB")]
    pub block_size_mib: u32,
    pub worker: bool,
}

/// The stored record as found: any field may be missing or of another type.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    url: Option<serde_json::Value>,
    connections: Option<serde_json::Value>,
    #[serde(rename = "blockSizeMiB")]
    block_size_mib: Option<serde_json::Value>,
    worker: Option<serde_json::Value>,
}

#[wasm_bindgen]
impl Settings {
    /// Checks what the form holds; throws a message for the page to show.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: String,
        connections: f64,
        block_size_mib: f64,
        worker: bool,
    ) -> Result<Settings, JsError> {
        Settings::check(url, connections, block_size_mib, worker).map_err(|m| JsError::new(&m))
    }

    /// Remembers these settings; false when the browser refuses (private mode, quota).
    pub fn save(&self) -> bool {
        LocalStorage::set(KEY, self).is_ok()
    }
}

impl Settings {
    pub fn check(
        url: String,
        connections: f64,
        block_size_mib: f64,
        worker: bool,
    ) -> Result<Settings, String> {
        let url = url.trim().to_string();
        if url.is_empty() {
            return Err("Enter the URL of a file to download.".into());
        }
        let connections = whole(connections, 1, MAX_CONNECTIONS).ok_or_else(|| {
            format!("Connections must be a whole number from 1 to {MAX_CONNECTIONS}.")
        })?;
        let block_size_mib = whole(block_size_mib, 1, MAX_BLOCK_SIZE_MIB).ok_or_else(|| {
            format!("Block size must be a whole number of MiB from 1 to {MAX_BLOCK_SIZE_MIB}.")
        })?;
        Ok(Settings {
            url,
            connections,
            block_size_mib,
            worker,
        })
    }

    /// The settings a stored record gives, field by field, over the defaults.
    fn from_stored(stored: Stored, default_url: &str) -> Settings {
        let number = |v: Option<serde_json::Value>, max: u32| {
            v.and_then(|v| v.as_f64()).and_then(|n| whole(n, 1, max))
        };
        Settings {
            url: stored
                .url
                .and_then(|v| v.as_str().map(str::trim).map(String::from))
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| default_url.to_string()),
            connections: number(stored.connections, MAX_CONNECTIONS).unwrap_or(DEFAULT_CONNECTIONS),
            block_size_mib: number(stored.block_size_mib, MAX_BLOCK_SIZE_MIB)
                .unwrap_or(DEFAULT_BLOCK_SIZE_MIB),
            worker: stored.worker.and_then(|v| v.as_bool()).unwrap_or(false),
        }
    }
}

/// The remembered settings, or the defaults (with `default_url`) for what is
/// missing or invalid.
#[wasm_bindgen(js_name = loadSettings)]
pub fn load_settings(default_url: &str) -> Settings {
    let stored = LocalStorage::get::<Stored>(KEY).unwrap_or_default();
    Settings::from_stored(stored, default_url)
}

/// `n` if it is a whole number in `min..=max`.
fn whole(n: f64, min: u32, max: u32) -> Option<u32> {
    (n.fract() == 0.0 && n >= f64::from(min) && n <= f64::from(max)).then_some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(json: &str) -> Settings {
        let stored: Stored = serde_json::from_str(json).unwrap_or_default();
        Settings::from_stored(stored, "http://d/sample.bin")
    }

    #[test]
    fn form_values_are_checked() {
        let ok = Settings::check(" http://x/a ".into(), 4.0, 16.0, true);
        assert_eq!(
            ok,
            Ok(Settings {
                url: "http://x/a".into(),
                connections: 4,
                block_size_mib: 16,
                worker: true
            })
        );
        for (connections, block) in [(0.0, 8.0), (17.0, 8.0), (2.5, 8.0), (f64::NAN, 8.0)] {
            let e = Settings::check("http://x/a".into(), connections, block, false);
            assert!(
                e.unwrap_err().starts_with("Connections must"),
                "{connections}"
            );
        }
        for block in [0.0, 1025.0, 0.5, f64::INFINITY] {
            let e = Settings::check("http://x/a".into(), 3.0, block, false);
            assert!(e.unwrap_err().starts_with("Block size must"), "{block}");
        }
        assert!(Settings::check("  ".into(), 3.0, 8.0, false).is_err());
    }

    #[test]
    fn a_stored_record_is_taken_field_by_field() {
        let s = stored(r#"{"url":"http://x/b","connections":5,"blockSizeMiB":2,"worker":true}"#);
        assert_eq!(
            (s.url.as_str(), s.connections, s.block_size_mib, s.worker),
            ("http://x/b", 5, 2, true)
        );
        // Wrong types, out of range, missing: each falls back alone.
        let s = stored(r#"{"url":7,"connections":99,"blockSizeMiB":"4","worker":"yes"}"#);
        assert_eq!(
            (s.url.as_str(), s.connections, s.block_size_mib, s.worker),
            ("http://d/sample.bin", 4, 8, false)
        );
        let s = stored(r#"{"connections":2}"#);
        assert_eq!((s.connections, s.block_size_mib), (2, 8));
        // Not an object at all: the defaults.
        assert_eq!(stored("[1,2]"), stored("{}"));
        assert_eq!(stored("{}").url, "http://d/sample.bin");
    }
}
