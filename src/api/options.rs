//! Reading the options objects of the JS API: every value is checked, and
//! every mistake is an `INVALID_ARGUMENT` naming its option.

use super::*;

pub(super) fn parse_prune(options: &JsValue) -> Result<(u64, StoreChoice), Error> {
    if !options.is_object() {
        return Err(Error::invalid(
            "options",
            "prune() needs { olderThan: milliseconds }",
        ));
    }
    only_options(options, &["olderThan", "store"])?;
    let max_age = integer(options, "olderThan")?.ok_or_else(|| {
        Error::invalid(
            "olderThan",
            "it is required: the age in milliseconds past which a partial download is removed",
        )
    })?;
    Ok((max_age, store_selection(Some(options))?))
}

pub(super) const OPTION_NAMES: [&str; 14] = [
    "id",
    "store",
    "connections",
    "blockSize",
    "headers",
    "credentials",
    "referrer",
    "retries",
    "stallTimeoutMs",
    "maxRequests",
    "integrity",
    "filename",
    "onServerChange",
    "worker",
];

/// The options of `Download.open`, checked.
pub(super) struct Parsed {
    pub(super) options: Options,
    pub(super) choice: StoreChoice,
    pub(super) transport: FetchTransport,
    /// Run the driver in the package's worker, this object a proxy.
    pub(super) worker: bool,
}

/// Reads and checks the options object; every mistake names its option.
pub(super) fn parse_options(url: &str, options: &JsValue) -> Result<Parsed, Error> {
    let mut parsed = Options::new(&absolute_url(url)?);
    let mut choice = StoreChoice::Auto;
    let mut transport = FetchTransport::default();
    if options.is_undefined() || options.is_null() {
        return Ok(Parsed {
            options: parsed,
            choice,
            transport,
            worker: false,
        });
    }
    if !options.is_object() {
        return Err(Error::invalid("options", "it must be an object"));
    }
    only_options(options, &OPTION_NAMES)?;
    if let Some(id) = string(options, "id")? {
        parsed.id = id;
    }
    let store = option(options, "store")?;
    if !store.is_undefined() {
        choice = StoreChoice::parse(store)?;
    }
    if let Some(n) = integer(options, "connections")? {
        parsed.connections = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = integer(options, "blockSize")? {
        parsed.set_block_size(n);
    }
    if let Some(n) = integer(options, "retries")? {
        parsed.retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = integer(options, "stallTimeoutMs")? {
        parsed.stall_timeout_ms = n;
    }
    if let Some(n) = integer(options, "maxRequests")? {
        // 0 stays 0 for validate() to refuse; more than u32 is no limit.
        parsed.max_requests = Some(u32::try_from(n).unwrap_or(u32::MAX));
    }
    parsed.headers = headers(&option(options, "headers")?)?;
    parsed.browser = js::is_browser();
    if let Some(credentials) = string(options, "credentials")? {
        transport.credentials = Some(match credentials.as_str() {
            "omit" => RequestCredentials::Omit,
            "same-origin" => RequestCredentials::SameOrigin,
            "include" => RequestCredentials::Include,
            other => {
                return Err(Error::invalid(
                    "credentials",
                    format!("{other:?} is not one of 'omit', 'same-origin', 'include'"),
                ))
            }
        });
    }
    transport.referrer = string(options, "referrer")?;
    if let Some(referrer) = transport.referrer.as_deref().filter(|r| !r.is_empty()) {
        absolute_url(referrer).map_err(|_| {
            Error::invalid("referrer", format!("{referrer:?} is not an http(s) URL"))
        })?;
    }
    if let Some(integrity) = string(options, "integrity")? {
        parsed.integrity = Some(
            core::integrity::parse_integrity(&integrity)
                .map_err(|why| Error::invalid("integrity", why))?,
        );
    }
    parsed.filename = string(options, "filename")?;
    if let Some(policy) = string(options, "onServerChange")? {
        parsed.on_server_change = match policy.as_str() {
            "restart" => OnServerChange::Restart,
            "fail" => OnServerChange::Fail,
            other => {
                return Err(Error::invalid(
                    "onServerChange",
                    format!("{other:?} is not 'restart' or 'fail'"),
                ))
            }
        };
    }
    let worker = match option(options, "worker")? {
        w if w.is_undefined() => false,
        w => w
            .as_bool()
            .ok_or_else(|| Error::invalid("worker", "it must be true or false"))?,
    };
    parsed.validate()?;
    Ok(Parsed {
        options: parsed,
        choice,
        transport,
        worker,
    })
}

/// The option `key`: an own property of `options` (an inherited one is not
/// the caller's), `undefined` when absent. A getter or Proxy trap that
/// throws is `INVALID_ARGUMENT` naming the option, never an exception
/// through wasm.
pub(super) fn option(options: &JsValue, key: &str) -> Result<JsValue, Error> {
    js::own(options, key)
        .map_err(|e| Error::invalid(key, format!("reading it threw: {}", js::message(&e))))
}

/// Refuses a key that is not one of `names`: a typo never goes unnoticed.
fn only_options(options: &JsValue, names: &[&str]) -> Result<(), Error> {
    let keys = js::keys(options).map_err(|e| {
        Error::invalid(
            "options",
            format!("listing its keys threw: {}", js::message(&e)),
        )
    })?;
    for key in keys.iter() {
        let key = key.as_string().unwrap_or_default();
        if !names.contains(&key.as_str()) {
            return Err(Error::invalid(
                &key,
                format!("it is not an option; the options are {}", names.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The `{ store }` of `Download.list()` and `Download.remove()`.
pub(super) fn store_selection(options: Option<&JsValue>) -> Result<StoreChoice, Error> {
    let store = match options {
        Some(o) => option(o, "store")?,
        None => JsValue::UNDEFINED,
    };
    if store.is_undefined() {
        Ok(StoreChoice::Auto)
    } else {
        StoreChoice::parse(store)
    }
}

/// The URL made absolute against the page (if any), http or https only.
pub(super) fn absolute_url(url: &str) -> Result<String, Error> {
    let base = js::get(&js::get(&js_sys::global(), "location"), "href").as_string();
    let parsed = match &base {
        Some(base) => web_sys::Url::new_with_base(url, base),
        None => web_sys::Url::new(url),
    }
    .map_err(|_| Error::invalid("url", format!("{url:?} is not a valid URL")))?;
    match parsed.protocol().as_str() {
        "http:" | "https:" => Ok(parsed.href()),
        other => Err(Error::invalid(
            "url",
            format!("{other} URLs cannot be downloaded by range; use an http: or https: URL"),
        )),
    }
}

fn string(options: &JsValue, key: &str) -> Result<Option<String>, Error> {
    let value = option(options, key)?;
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| Error::invalid(key, "it must be a string"))
}

/// A non-negative integer number (exact in a JS number: below 2^53).
fn integer(options: &JsValue, key: &str) -> Result<Option<u64>, Error> {
    let value = option(options, key)?;
    if value.is_undefined() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&n) => {
            Ok(Some(n as u64))
        }
        _ => Err(Error::invalid(
            key,
            format!("{} is not a whole number of 0 or more", js::message(&value)),
        )),
    }
}

/// `headers` as a plain object, an array of pairs, or a `Headers`.
fn headers(value: &JsValue) -> Result<Vec<(String, String)>, Error> {
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    let pairs = if js::is_array(value) || value.is_instance_of::<web_sys::Headers>() {
        js::array_from(value)
    } else if value.is_object() {
        js::entries(value)
    } else {
        return Err(bad_headers());
    }
    .map_err(|e| Error::invalid("headers", format!("reading it threw: {}", js::message(&e))))?;
    pairs
        .iter()
        .map(|pair| {
            let pair = if js::is_array(&pair) {
                js::array_from(&pair).map_err(|_| bad_headers())?
            } else {
                return Err(bad_headers());
            };
            match (
                pair.get(0).as_string(),
                pair.get(1).as_string(),
                pair.length(),
            ) {
                (Some(name), Some(value), 2) => Ok((name, value)),
                _ => Err(bad_headers()),
            }
        })
        .collect()
}

fn bad_headers() -> Error {
    Error::invalid(
        "headers",
        "it must be an object of strings, an array of [name, value] pairs, or a Headers",
    )
}
