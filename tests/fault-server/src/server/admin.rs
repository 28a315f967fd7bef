//! The admin API under `/_admin/`: configure files, cut their responses, read
//! their log, statistics and SHA-256, and set a cookie. Every answer is JSON.

use std::net::Shutdown;
use std::sync::atomic::Ordering;

use super::body::content_sha256;
use super::file_name;
use super::log::settled_log_json;
use super::response::{json_opt_string, json_string, Headers};
use super::state::{FileState, Shared};
use crate::http::{self, Request};
use crate::sha256;

/// An admin request that failed: answered with `status` and `{"error":message}`.
pub(super) struct AdminError {
    pub(super) status: u16,
    pub(super) message: String,
}

impl AdminError {
    fn bad_request(message: impl Into<String>) -> Self {
        AdminError {
            status: 400,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        AdminError {
            status: 404,
            message: message.into(),
        }
    }

    fn no_such_file(name: &str) -> Self {
        AdminError::not_found(format!("no such file: {name}"))
    }
}

/// The JSON body of a successful admin answer, or why it failed.
type AdminResult = Result<String, AdminError>;

/// Answers an admin route; `extra` collects additional response headers.
pub(super) fn admin(
    shared: &Shared,
    req: &Request,
    route: &str,
    extra: &mut Headers,
) -> AdminResult {
    let name_of = |raw: &str| {
        file_name(raw).ok_or_else(|| AdminError::bad_request("missing or badly encoded file name"))
    };
    match req.method.as_str() {
        "POST" => {
            if let Some(raw) = route.strip_prefix("files/") {
                return update_file(shared, &name_of(raw)?, &req.query);
            }
            if let Some(raw) = route.strip_prefix("cut/") {
                return cut_file(shared, &name_of(raw)?);
            }
            if let Some(raw) = route
                .strip_prefix("log/")
                .and_then(|r| r.strip_suffix("/clear"))
            {
                return with_file(shared, &name_of(raw)?, |file| {
                    // Ids are taken under the same lock: none can slip in between.
                    file.clear_log(shared.upcoming_id());
                    "{\"cleared\":true}".to_string()
                });
            }
        }
        "GET" => {
            if let Some(raw) = route.strip_prefix("log/") {
                let name = name_of(raw)?;
                return settled_log_json(shared, &name)
                    .ok_or_else(|| AdminError::no_such_file(&name));
            }
            if let Some(raw) = route.strip_prefix("sha256/") {
                return sha256_json(shared, &name_of(raw)?);
            }
            if let Some(raw) = route.strip_prefix("stats/") {
                return with_file(shared, &name_of(raw)?, |file| file.stats_json());
            }
            if route == "set-cookie" {
                return set_cookie(req, extra);
            }
        }
        _ => {}
    }
    Err(AdminError::not_found("not found"))
}

/// `GET /_admin/set-cookie?name=N&value=V`: `Set-Cookie: N=V; Path=/; SameSite=Lax`.
fn set_cookie(req: &Request, extra: &mut Headers) -> AdminResult {
    let params = http::parse_query(&req.query).map_err(AdminError::bad_request)?;
    let name = http::query_param(&params, "name").unwrap_or_default();
    let value = http::query_param(&params, "value").unwrap_or_default();
    if !http::is_token(name) {
        return Err(AdminError::bad_request("name must be a non-empty token"));
    }
    // RFC 6265 cookie-octet: no controls, whitespace, DQUOTE, comma, semicolon or backslash.
    if !value
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && !b"\",;\\".contains(&b))
    {
        return Err(AdminError::bad_request(
            "value has characters a cookie cannot carry",
        ));
    }
    extra.push((
        "Set-Cookie",
        format!("{name}={value}; Path=/; SameSite=Lax"),
    ));
    Ok(format!(
        "{{\"name\":{},\"value\":{}}}",
        json_string(name),
        json_string(value)
    ))
}

/// Runs `f` on file `name` under the lock; 404 if there is no such file.
fn with_file<T>(
    shared: &Shared,
    name: &str,
    f: impl FnOnce(&mut FileState) -> T,
) -> Result<T, AdminError> {
    shared
        .with_file(name, f)
        .ok_or_else(|| AdminError::no_such_file(name))
}

/// `POST /_admin/files/{name}?...`: creates or changes the file; a bad
/// parameter changes nothing.
fn update_file(shared: &Shared, name: &str, query: &str) -> AdminResult {
    let params = http::parse_query(query).map_err(AdminError::bad_request)?;
    let mut files = shared.files();
    let existing = files.get(name).map(|f| f.config.clone());
    let creating = existing.is_none();
    // Validate everything on a copy: a bad request changes nothing.
    let mut config = existing.unwrap_or_default();
    let applied = config
        .apply_params(&params)
        .map_err(AdminError::bad_request)?;
    if creating && !applied.size_given {
        return Err(AdminError::bad_request(format!(
            "size is required when creating file {name:?}"
        )));
    }
    let file = files
        .entry(name.to_string())
        .or_insert_with(|| FileState::new(config.clone()));
    file.config = config;
    if applied.clear_log {
        file.clear_log(shared.upcoming_id());
    }
    Ok(format!(
        "{{\"name\":{},\"size\":{},\"seed\":{},\"etag\":{}}}",
        json_string(name),
        file.config.size,
        file.config.seed,
        json_opt_string(file.config.etag().as_deref())
    ))
}

/// Ends every response of the file in progress: bumps its cut counter (seen
/// between writes) and shuts their sockets (ends blocked writes and stalls).
fn cut_file(shared: &Shared, name: &str) -> AdminResult {
    with_file(shared, name, |file| {
        file.cut.fetch_add(1, Ordering::SeqCst);
        for socket in file.active.values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        format!("{{\"cut\":{}}}", file.active.len())
    })
}

/// `{"sha256":"HEX"}` of the file's content.
fn sha256_json(shared: &Shared, name: &str) -> AdminResult {
    let (seed, size) = with_file(shared, name, |f| (f.config.seed, f.config.size))?;
    Ok(format!(
        "{{\"sha256\":\"{}\"}}",
        sha256::hex(&content_sha256(seed, size))
    ))
}
