//! The state every listener shares: the files by name, each with its
//! behaviour, log and responses in progress, behind one mutex; and the hold a
//! response keeps on its file while it is written (cuts, the in-progress set).

use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Instant;

use super::config::FileConfig;
use super::log::LogEntry;
use super::POLL;

/// One virtual file.
pub(super) struct FileState {
    pub(super) config: FileConfig,
    pub(super) log: VecDeque<LogEntry>,
    /// Bumped by every cut; responses compare it with the value they started with.
    pub(super) cut: Arc<AtomicU64>,
    /// Responses in progress, by id, with a handle on their socket so that a cut
    /// can also interrupt a blocked write or a stall.
    pub(super) active: HashMap<u64, TcpStream>,
    /// GET responses whose head has been sent and that have not ended.
    pub(super) writing: u64,
    /// Most `writing` seen since creation or the last log clear.
    pub(super) max_concurrent: u64,
    /// GETs answered since creation or the last log clear.
    pub(super) requests: u64,
    /// Responses with a smaller id arrived before the last log clear: they are
    /// not logged, even if they end after it.
    pub(super) logged_from: u64,
}

impl FileState {
    pub(super) fn new(config: FileConfig) -> Self {
        FileState {
            config,
            log: VecDeque::new(),
            cut: Arc::new(AtomicU64::new(0)),
            active: HashMap::new(),
            writing: 0,
            max_concurrent: 0,
            requests: 0,
            logged_from: 0,
        }
    }

    /// What a response starting now watches to notice a later cut.
    pub(super) fn cut_watch(&self) -> CutWatch {
        CutWatch {
            counter: self.cut.clone(),
            seen: self.cut.load(Ordering::SeqCst),
        }
    }
}

/// What all listeners share: the files by name behind one mutex, the request
/// ids and the server's start time.
pub(super) struct Shared {
    files: Mutex<HashMap<String, FileState>>,
    /// The id of the next request: ids follow admission order.
    next_id: AtomicU64,
    /// When the server started: the zero of the log's `started_ms`/`ended_ms`.
    epoch: Instant,
}

impl Shared {
    pub(super) fn new() -> Self {
        Shared {
            files: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(super) fn files(&self) -> MutexGuard<'_, HashMap<String, FileState>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on file `name` under the lock; None if there is no such file.
    pub(super) fn with_file<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut FileState) -> T,
    ) -> Option<T> {
        self.files().get_mut(name).map(f)
    }

    /// A new request's id.
    pub(super) fn take_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// The id the next request will get.
    pub(super) fn upcoming_id(&self) -> u64 {
        self.next_id.load(Ordering::SeqCst)
    }

    /// Milliseconds since the server started.
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Lets a response notice `POST /_admin/cut` for its file between writes.
pub(super) struct CutWatch {
    counter: Arc<AtomicU64>,
    seen: u64,
}

impl CutWatch {
    pub(super) fn is_cut(&self) -> bool {
        self.counter.load(Ordering::SeqCst) != self.seen
    }

    /// Sleeps until `deadline` in short steps; false if cut meanwhile.
    pub(super) fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.is_cut() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(POLL));
        }
    }
}

/// Moments of a response that the count of responses being written follows.
pub(super) enum Moment {
    /// The head is about to be sent.
    Head,
    /// The last body bytes are about to be written.
    LastWrite,
}

/// Takes a response out of its file's in-progress set (and the count of
/// responses being written) when dropped, even if writing it panicked, so cuts
/// and log reads never wait for a dead response.
pub(super) struct InProgress<'a> {
    shared: &'a Shared,
    name: &'a str,
    id: u64,
    /// Counted in the file's `writing`.
    writing: bool,
}

impl<'a> InProgress<'a> {
    /// Response `id` to file `name`, already in its file's `active` set.
    pub(super) fn new(shared: &'a Shared, name: &'a str, id: u64) -> Self {
        InProgress {
            shared,
            name,
            id,
            writing: false,
        }
    }

    /// Follows a GET response's `moment` in the count of responses being written.
    pub(super) fn reached(&mut self, moment: Moment) {
        match moment {
            Moment::Head => self.head_sent(),
            Moment::LastWrite => self.last_write(),
        }
    }

    /// The head of a GET response is going out: it now counts as being written.
    fn head_sent(&mut self) {
        if let Some(file) = self.shared.files().get_mut(self.name) {
            file.writing += 1;
            file.max_concurrent = file.max_concurrent.max(file.writing);
            self.writing = true;
        }
    }

    /// The last bytes are going out: from the client's side the response may
    /// be over before this thread runs again, so it stops counting now (a
    /// `max_concurrent` never counts a response the client already finished).
    fn last_write(&mut self) {
        if std::mem::take(&mut self.writing) {
            if let Some(file) = self.shared.files().get_mut(self.name) {
                file.writing = file.writing.saturating_sub(1);
            }
        }
    }

    /// Leaves the in-progress set of `file` (the caller holds the lock).
    pub(super) fn release(&mut self, file: &mut FileState) {
        file.active.remove(&self.id);
        if std::mem::take(&mut self.writing) {
            file.writing = file.writing.saturating_sub(1);
        }
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.shared.files().get_mut(self.name) {
            self.release(file);
        }
    }
}
