//! The downloads this thread runs, by id: one writer per download among the
//! objects of one page, worker or process, kept by the core itself (the web
//! layer adds Web Locks and a store's lock for other tabs and processes).
//! A second object's run or removal of an id that runs is `LOCKED`.

use super::error::Error;
use super::small_map::SmallMap;
use std::cell::RefCell;

thread_local! {
    static RUNNING: RefCell<SmallMap<String, ()>> = RefCell::new(SmallMap::new());
}

/// A run of `id` in this thread, until dropped.
pub struct Running {
    id: String,
}

impl Running {
    /// Claims `id`, or `LOCKED` if another object runs it.
    pub fn claim(id: &str) -> Result<Self, Error> {
        let taken = RUNNING.with(|r| r.borrow_mut().insert(id.to_string(), ()));
        match taken {
            Some(()) => Err(Error::Locked { id: id.to_string() }),
            None => Ok(Self { id: id.to_string() }),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.borrow_mut().remove(&self.id));
    }
}

/// Whether some object of this thread runs `id`.
pub fn is_running(id: &str) -> bool {
    RUNNING.with(|r| r.borrow().contains_key(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_id_until_dropped() {
        let first = Running::claim("a").ok();
        assert!(first.is_some() && is_running("a"));
        assert_eq!(Running::claim("a").err().map(|e| e.code()), Some("LOCKED"));
        assert!(Running::claim("b").is_ok(), "another id is free");
        drop(first);
        assert!(!is_running("a"));
        assert!(Running::claim("a").is_ok());
    }
}
