//! The simulator's store: the core's memory store (pieces, as IndexedDB) or
//! a positional file store (as OPFS and the file stores), behind a layer
//! that injects faults: failed writes, a full disk, slowness, and crashes
//! half-way through an operation.

use crate::scenario::{Layout, StoreFault};
use crate::scripted::yield_now;
use resumable_fetch::core::memory::MemoryStore;
use resumable_fetch::core::range::ByteRange;
use resumable_fetch::core::record::Record;
use resumable_fetch::core::store::{self, Store};
use resumable_fetch::core::{StoreError, StoreErrorKind};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Clone)]
pub struct SimStore {
    layout: Layout,
    pieces: MemoryStore<Vec<u8>>,
    files: Rc<RefCell<Files>>,
    /// Faults armed for the next operations of their kind.
    armed: Rc<RefCell<Vec<StoreFault>>>,
    slow: Rc<Cell<u32>>,
    /// Set when a fault crashed the process: the simulator drops the run.
    pub crashed: Rc<Cell<bool>>,
}

/// The positional layout: a data file and a record file per download.
#[derive(Default)]
struct Files {
    data: HashMap<String, Vec<u8>>,
    records: HashMap<String, Vec<u8>>,
}

impl SimStore {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            pieces: MemoryStore::new(),
            files: Rc::default(),
            armed: Rc::default(),
            slow: Rc::default(),
            crashed: Rc::default(),
        }
    }

    pub fn arm(&self, fault: StoreFault) {
        match fault {
            StoreFault::Slow => self.slow.set(self.slow.get() + 20),
            fault => self.armed.borrow_mut().push(fault),
        }
    }

    /// Deletes the data file of `id`, not its record (positional layout
    /// only: IndexedDB deletes a record and its pieces in one transaction).
    pub fn lose_data(&self, id: &str) {
        self.files.borrow_mut().data.remove(id);
    }

    /// The record as a load presents it. The positional layout trims it to
    /// the data it has, as the file stores do: a record never claims bytes
    /// whose file is gone.
    pub fn record_view(&self, id: &str) -> Option<Vec<u8>> {
        match self.layout {
            Layout::Pieces => futures::executor::block_on(self.pieces.load(id)).ok()?,
            Layout::Positional => {
                let files = self.files.borrow();
                let bytes = files.records.get(id)?;
                let size = files.data.get(id).map_or(0, |d| d.len() as u64);
                match Record::decode(bytes) {
                    Ok(mut record) if record.pieces.end() > size => {
                        record.limit_to(size);
                        Some(record.encode())
                    }
                    _ => Some(bytes.clone()),
                }
            }
        }
    }

    /// The bytes stored for `piece`, if all are there.
    pub fn stored(&self, id: &str, piece: ByteRange) -> Option<Vec<u8>> {
        match self.layout {
            Layout::Positional => {
                let files = self.files.borrow();
                let data = files.data.get(id)?;
                data.get(piece.start as usize..piece.end as usize)
                    .map(<[u8]>::to_vec)
            }
            Layout::Pieces => futures::executor::block_on(self.pieces.assemble(id, &[piece]))
                .ok()
                .map(|chunks| chunks.concat()),
        }
    }

    /// Takes an armed fault of this kind.
    fn take(&self, wanted: &[StoreFault]) -> Option<StoreFault> {
        let mut armed = self.armed.borrow_mut();
        let at = armed.iter().position(|f| wanted.contains(f))?;
        Some(armed.remove(at))
    }

    /// Every operation gives the others a turn, several when slow.
    async fn pace(&self) {
        yield_now().await;
        if self.slow.get() > 0 {
            self.slow.set(self.slow.get() - 1);
            for _ in 0..5 {
                yield_now().await;
            }
        }
    }

    /// The process dies here: nothing after this point happens.
    async fn crash(&self) -> ! {
        self.crashed.set(true);
        std::future::pending().await
    }
}

fn failed(why: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Failed, why)
}

impl Store for SimStore {
    type Chunk = Vec<u8>;
    type Assembled = Vec<u8>;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.pace().await;
        Ok(self.record_view(id))
    }

    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.pace().await;
        if self.take(&[StoreFault::CrashInRecord]).is_some() {
            self.crash().await;
        }
        match self.layout {
            Layout::Pieces => self.pieces.save_record(id, record).await,
            Layout::Positional => {
                let mut files = self.files.borrow_mut();
                files.records.insert(id.to_string(), record.to_vec());
                Ok(())
            }
        }
    }

    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.pace().await;
        match self.take(&[
            StoreFault::FailWrite,
            StoreFault::Quota,
            StoreFault::CrashInWrite,
        ]) {
            Some(StoreFault::FailWrite) => return Err(failed("an I/O error")),
            Some(StoreFault::Quota) => {
                return Err(StoreError::new(
                    StoreErrorKind::QuotaExceeded,
                    "the disk is full",
                ))
            }
            Some(_) => {
                let bytes = chunks.concat();
                let half = &bytes[..bytes.len() / 2];
                match self.layout {
                    Layout::Positional => write_at(&mut self.files.borrow_mut(), id, piece, half),
                    Layout::Pieces => {} // a transaction that never committed
                }
                self.crash().await;
            }
            None => {}
        }
        match self.layout {
            Layout::Pieces => self.pieces.write(id, piece, chunks).await,
            Layout::Positional => {
                write_at(&mut self.files.borrow_mut(), id, piece, &chunks.concat());
                Ok(())
            }
        }
    }

    fn concurrent_writes(&self) -> bool {
        self.layout == Layout::Pieces
    }

    /// The positional layout writes the empty record and leaves the old
    /// bytes, as the custom-store adapter does: they are overwritten later.
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.pace().await;
        match self.layout {
            Layout::Positional => self.save_record(id, record).await,
            Layout::Pieces => {
                self.pieces.save_record(id, record).await?;
                if self.take(&[StoreFault::CrashInRemoval]).is_some() {
                    self.crash().await;
                }
                self.pieces.reset(id, record).await
            }
        }
    }

    /// The record first, then the data: a crash between leaves unclaimed
    /// bytes, never a claim without bytes.
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.pace().await;
        match self.layout {
            Layout::Positional => {
                self.files.borrow_mut().records.remove(id);
                if self.take(&[StoreFault::CrashInRemoval]).is_some() {
                    self.crash().await;
                }
                self.files.borrow_mut().data.remove(id);
                Ok(())
            }
            Layout::Pieces => self.pieces.remove(id).await,
        }
    }

    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.pace().await;
        match self.layout {
            Layout::Pieces => self.pieces.list().await,
            Layout::Positional => Ok(self.files.borrow().records.values().cloned().collect()),
        }
    }

    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        self.pace().await;
        match self.layout {
            Layout::Pieces => self.pieces.read(id, piece, part).await,
            Layout::Positional => {
                let files = self.files.borrow();
                let data = files.data.get(id).map_or(&[][..], Vec::as_slice);
                let end = (part.end as usize).min(data.len());
                let start = (part.start as usize).min(end);
                Ok(data[start..end].to_vec())
            }
        }
    }

    /// The positional layout hands out the file's first bytes, exactly the
    /// download's length: what lies past it is an older file's.
    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Vec<u8>, StoreError> {
        self.pace().await;
        match self.layout {
            Layout::Pieces => Ok(self.pieces.assemble(id, pieces).await?.concat()),
            Layout::Positional => {
                let size = store::contiguous_length(pieces)?;
                let files = self.files.borrow();
                let data = files.data.get(id).map_or(&[][..], Vec::as_slice);
                data.get(..size as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        StoreError::new(
                            StoreErrorKind::Corrupt,
                            format!("the file holds {} bytes, not {size}", data.len()),
                        )
                    })
            }
        }
    }
}

/// Writes `bytes` at `piece.start` of the data file, growing it with zeros
/// as a file system does.
fn write_at(files: &mut Files, id: &str, piece: ByteRange, bytes: &[u8]) {
    let data = files.data.entry(id.to_string()).or_default();
    let start = piece.start as usize;
    if data.len() < start + bytes.len() {
        data.resize(start + bytes.len(), 0);
    }
    data[start..start + bytes.len()].copy_from_slice(bytes);
}
